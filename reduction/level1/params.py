"""Options of the level-1 steps, as documented frozen dataclasses.

Defaults are the values the data center uses; a recipe records the instance it ran with.
"""
from dataclasses import dataclass

__all__ = ["CalibrationParams", "CentringParams", "SelectionParams", "PSFParams",
           "MasterCubeParams"]


@dataclass(frozen=True)
class CalibrationParams:
    """Options of `~reduction.level1.calibrations`.

    Attributes
    ----------
    sigma_clip : float
        Clipping threshold (in standard deviations) of the master background.
    hot_sigma : float
        A pixel whose master dark deviates from the median by more than this many
        robust standard deviations is hot (or cold).
    flat_low, flat_high : float
        Normalised flat response outside [flat_low, flat_high] marks a dead or
        over-responsive pixel.
    nonlin_sigma : float
        A pixel whose residual to the linear flat fit exceeds this many robust
        standard deviations of the residuals of all pixels is non-linear.
    """
    sigma_clip: float = 3.0
    hot_sigma: float = 8.0
    flat_low: float = 0.5
    flat_high: float = 1.5
    nonlin_sigma: float = 8.0


@dataclass(frozen=True)
class CentringParams:
    """Options of `~reduction.level1.centring.centre_from_waffle`.

    Attributes
    ----------
    r_min_px, r_max_px : float
        Annulus (pixels from the first guess) searched for the waffle spots.
    search_px : int
        Half size of the window around each expected spot position in which the
        brightest point is looked for (tolerance on the first guess).
    box_px : int
        Half size of the box in which each spot is fitted.
    smooth_px : float
        Gaussian sigma (pixels) of the smoothing used by the coarse search.
    max_residual_px : float
        The two diagonals' midpoints must agree with their intersection within this
        many pixels, otherwise the fit is rejected and the first guess is kept.
    max_radius_scatter : float
        Relative scatter allowed between the four spot distances from the centre.
    """
    r_min_px: float = 15.0
    r_max_px: float = 120.0
    search_px: int = 6
    box_px: int = 6
    smooth_px: float = 1.5
    max_residual_px: float = 1.0
    max_radius_scatter: float = 0.05


@dataclass(frozen=True)
class SelectionParams:
    """Options of `~reduction.level1.selection.select_frames`.

    Attributes
    ----------
    r_in_px, r_out_px : float
        Annulus (pixels from the star) where the residual flux and the correlation
        with the median frame are measured.
    z_max : float
        Robust z-score (median / MAD) beyond which a frame is rejected.
    """
    r_in_px: float = 10.0
    r_out_px: float = 40.0
    z_max: float = 5.0


@dataclass(frozen=True)
class PSFParams:
    """Options of `~reduction.level1.psf.measure_psf`.

    Attributes
    ----------
    size_px : int
        Odd side of the PSF stamp.
    aperture_radius_px : float
        Radius of the aperture whose flux is the star flux.
    annulus_px : tuple of float
        Inner and outer radius of the local background annulus.
    """
    size_px: int = 65
    aperture_radius_px: float = 20.0
    annulus_px: tuple = (24.0, 30.0)


@dataclass(frozen=True)
class MasterCubeParams:
    """Options of `~reduction.level1.cube.build_master_cube`.

    Attributes
    ----------
    crop_px : int
        Odd side of the master cube frames; the star is on the central pixel.
    spline_order : int
        Order of the spline interpolation of the recentring (3: cubic).
    parang_tolerance_deg : float
        Disagreement between header and computed parallactic angle that raises a flag.
    centring, selection, psf : dataclass
        Options of the sub-steps.
    """
    crop_px: int = 801
    spline_order: int = 3
    parang_tolerance_deg: float = 0.1
    centring: CentringParams = CentringParams()
    selection: SelectionParams = SelectionParams()
    psf: PSFParams = PSFParams()
