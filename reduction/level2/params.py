"""Options of the level-2 post-processing, as one documented frozen dataclass."""
import dataclasses

__all__ = ["Level2Params", "ALGORITHMS"]

#: Speckle-subtraction algorithms `reduction.level2.psfsub.subtract` knows.
ALGORITHMS = ("stack", "median", "pca", "pca_annular", "pca_asdi")


@dataclasses.dataclass(frozen=True)
class Level2Params:
    """Options of `reduction.level2.postprocess.run_postprocess`.

    Attributes
    ----------
    algorithm : {"pca", "median", "stack", "pca_annular", "pca_asdi"}
        Speckle subtraction. "stack" derotates and averages without
        subtraction (no-ADI), "median" is the classical median ADI, "pca" the
        full-frame PCA-ADI, "pca_annular" the annular PCA-ADI of vip-hci and
        "pca_asdi" the spectral + angular PCA (4-d cubes only).
    ncomp : int or None
        Principal components; None applies `psfsub.default_ncomp`.
    imlib, interpolation : str
        Image rotation of vip-hci (`vip_hci.preproc.frame_rotate`). Default:
        scikit-image biquintic, the fast interpolation vip-hci ranks next to
        its FFT rotation for flux preservation. vip-hci's default ("vip-fft")
        is 10-30 times slower; on synthetic cubes the companions' S/N agree
        within ~1 % in the median, ~5 % one by one beyond 4 FWHM (the S/N of a
        single source moves by that much between any two interpolators).
    collapse : {"median", "mean"}
        How derotated residual frames are combined.
    mask_center_fwhm : float
        Radius (FWHM) of the central disc zeroed before the PCA and in the
        final image: the star's core otherwise dominates the principal
        components (beta Pic b, NACO, PCA-5: S/N 7.9 unmasked, 9.1 masked).
    residual_zone_fwhm : float
        Radius (FWHM) of the star residual zone where no candidate is sought.
    snr_threshold : float
        Detection threshold on the S/N map (Mawet et al. 2014 statistics).
    sigma : float
        Gaussian-equivalent confidence of the detection limit (5 for "5 sigma"),
        converted with the Student-t small-sample correction.
    n_branches : int
        Azimuthal branches of fake companions for the throughput.
    fc_rad_sep_fwhm : float
        Radial spacing (FWHM) of fake companions injected in one pass.
    fc_snr : float
        Brightness of fake companions, in units of the local 1-aperture noise.
        Kept low: PCA throughput falls for bright companions (they leak into
        the principal components), and the limit concerns faint ones.
    outer_radius_px : int or None
        Crop the frames to this radius around the star before processing
        (speed); None keeps the whole frame.
    asdi_mode : {"single", "double"}
        vip-hci's ``adimsdi`` for PCA-ASDI.
    """

    algorithm: str = "pca"
    ncomp: int | None = None
    imlib: str = "skimage"
    interpolation: str = "biquintic"
    collapse: str = "median"
    mask_center_fwhm: float = 1.0
    residual_zone_fwhm: float = 2.0
    snr_threshold: float = 5.0
    sigma: float = 5.0
    n_branches: int = 3
    fc_rad_sep_fwhm: float = 3.0
    fc_snr: float = 20.0
    outer_radius_px: int | None = None
    asdi_mode: str = "single"

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {self.algorithm!r}")
        if self.ncomp is not None and self.ncomp < 1:
            raise ValueError("ncomp must be >= 1 or None")
        if self.collapse not in ("median", "mean"):
            raise ValueError("collapse must be 'median' or 'mean'")
        if self.n_branches < 1:
            raise ValueError("n_branches must be >= 1")
