"""Off-axis PSF: FWHM, star flux and the unit-flux template for fake companions."""
import numpy as np

from .exceptions import PSFError

__all__ = ["normalize_psf"]


def normalize_psf(psf, *, size_px=None):
    """Fit the FWHM and normalise the PSF to unit flux in a 1-FWHM aperture.

    Parameters
    ----------
    psf : ndarray, shape (y, x) or (wavelength, y, x)
        Off-axis (unsaturated) star image, at the flux scale of the science
        cube (DIT and neutral density already corrected by the caller),
        roughly centred.
    size_px : int, optional
        Crop of the template (odd); default about 4 FWHM.

    Returns
    -------
    psf_norm : ndarray, shape (s, s) or (wavelength, s, s), float32
        Centred template with unit flux in a 1-FWHM-diameter aperture.
    star_flux : float or ndarray, shape (wavelength,)
        Star flux in that aperture (same unit as the cube).
    fwhm_px : float or ndarray, shape (wavelength,)
        Gaussian-fit FWHM.

    Raises
    ------
    PSFError
        If the PSF is not 2-d or 3-d, not positive, or the fit fails.
    """
    from vip_hci.fm import normalize_psf as vip_normalize_psf
    from vip_hci.var import fit_2dgaussian

    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim not in (2, 3) or not np.isfinite(psf).all() or psf.max() <= 0:
        raise PSFError(f"the PSF must be a finite, positive 2-d or 3-d array "
                       f"(shape {psf.shape})")
    frames = psf if psf.ndim == 3 else psf[None]
    try:
        crop = min(15, psf.shape[-1] // 2 * 2 - 1)
        fwhm = np.array([np.mean(fit_2dgaussian(f, crop=True, cropsize=crop,
                                                full_output=True, debug=False)
                                 [["fwhm_y", "fwhm_x"]].values) for f in frames])
    except Exception as exc:  # vip/astropy fitting errors have no common class
        raise PSFError(f"the PSF FWHM fit failed: {exc}") from exc
    if not np.all((fwhm > 0.5) & (fwhm < min(psf.shape[-2:]) / 2)):
        raise PSFError(f"implausible PSF FWHM {fwhm} px")
    if size_px is None:
        size_px = int(np.ceil(4 * fwhm.max())) // 2 * 2 + 1
    size_px = min(size_px, min(psf.shape[-2:]) // 2 * 2 - 1)
    norm, star_flux, _ = vip_normalize_psf(psf, fwhm=fwhm if psf.ndim == 3 else float(fwhm[0]),
                                           size=size_px, full_output=True, verbose=False)
    if psf.ndim == 2:
        return norm.astype(np.float32), float(np.ravel(star_flux)[0]), float(fwhm[0])
    return norm.astype(np.float32), np.asarray(star_flux, dtype=float), fwhm
