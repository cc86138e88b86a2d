"""Speckle subtraction of ADI and ASDI cubes: stack, median ADI, PCA-ADI, PCA-ASDI.

Angles are derotation angles theta (deg): rotating a frame by +theta
counter-clockwise puts north up (SPHERE-DATA.md). vip-hci's ``angle_list``
has the same sign (`vip_hci.preproc.cube_derotate` calls ``frame_rotate(-theta)``,
which turns counter-clockwise), so angles are passed to it unchanged.

References: Marois et al. 2006 (ADI); Soummer, Pueyo & Larkin 2012 and
Amara & Quanz 2012 (KLIP/PCA); vip-hci, Gomez Gonzalez et al. 2017,
Christiaens et al. 2023.
"""
import numpy as np

from .exceptions import InputShapeError, TooFewFramesError

__all__ = ["default_ncomp", "default_ncomp_asdi", "derotate", "stack_adi", "median_adi", "pca_adi",
           "pca_adi_annular", "pca_asdi", "pca_residuals"]

#: Columns of the frame matrix per block when accumulating the Gram matrix:
#: bounds the float64 copy to about 50 MiB whatever the frame size.
_BLOCK_COLUMNS = 65536


def default_ncomp(n_frames):
    """Number of principal components when the user gives none.

    The rule: one component per ten frames, at least 1 and at most 20
    (e.g. 61 frames -> 6). Fewer frames leave too little field rotation per
    component (self-subtraction grows with ncomp), and beyond ~20 components
    full-frame PCA-ADI mostly removes companion flux.

    Parameters
    ----------
    n_frames : int
        Frames in the ADI sequence (per wavelength).

    Returns
    -------
    ncomp : int
    """
    return int(np.clip(n_frames // 10, 1, 20))


def default_ncomp_asdi(n_channels, n_frames):
    """Number of principal components of PCA-ASDI when the user gives none.

    The rule: one component per ten frames in time (the angular diversity, as
    `default_ncomp`) plus one per ten spectral channels (the chromatic speckle
    changes the rescaling leaves), at least 1 and at most 20: an IFS sequence
    of 39 channels gets 3 + frames // 10 (3 OBJECT cubes: 3; 100 cubes: 13),
    IRDIS DBI the PCA-ADI value. On the simulated IFS sequence (3 cubes,
    companion at 0.4 arcsec) the companion's S/N with 3 components is 69.5,
    against 65-75 for 1 to 30, and no other pixel beyond the star residual
    zone reaches S/N 4 (20 components let one reach 5.5).

    Parameters
    ----------
    n_channels : int
        Spectral channels.
    n_frames : int
        Frames per channel.

    Returns
    -------
    ncomp : int
    """
    return int(np.clip(n_frames // 10 + n_channels // 10, 1, 20))


def _check_adi(cube, angles_deg):
    cube = np.asarray(cube)
    angles_deg = np.asarray(angles_deg, dtype=float).ravel()
    if cube.ndim != 3:
        raise InputShapeError("an ADI cube must be (time, y, x)", cube.shape)
    if angles_deg.size != cube.shape[0]:
        raise InputShapeError(f"{angles_deg.size} angles for {cube.shape[0]} frames",
                              cube.shape)
    return cube.astype(np.float32, copy=False), angles_deg


def _collapse(cube, collapse):
    # NaN-aware: pixels rotated in from outside the frame are NaN
    frame = np.nanmedian(cube, axis=0) if collapse == "median" else np.nanmean(cube, axis=0)
    return np.nan_to_num(frame, nan=0.0).astype(np.float32)


def derotate(cube, angles_deg, *, imlib="skimage", interpolation="biquintic"):
    """Rotate every frame by its derotation angle (north up, east left).

    Parameters
    ----------
    cube : ndarray, shape (time, y, x)
    angles_deg : ndarray, shape (time,)
        Derotation angles theta (deg).
    imlib, interpolation : str
        vip-hci rotation method (see `vip_hci.preproc.frame_rotate`).

    Returns
    -------
    ndarray, shape (time, y, x), float32
        Pixels that rotated in from outside the frame are NaN.

    Raises
    ------
    InputShapeError
        If the cube is not 3-d or the angles do not match its frames.
    """
    from vip_hci.preproc import cube_derotate

    cube, angles_deg = _check_adi(cube, angles_deg)
    return cube_derotate(cube, angles_deg, imlib=imlib,
                         interpolation=interpolation).astype(np.float32, copy=False)


def stack_adi(cube, angles_deg, *, imlib="skimage", interpolation="biquintic",
              collapse="mean"):
    """Derotate and combine without speckle subtraction (no-ADI reference).

    Parameters
    ----------
    cube : ndarray, shape (time, y, x)
    angles_deg : ndarray, shape (time,)
    imlib, interpolation : str
    collapse : {"mean", "median"}

    Returns
    -------
    ndarray, shape (y, x), float32

    Raises
    ------
    InputShapeError
    """
    return _collapse(derotate(cube, angles_deg, imlib=imlib,
                              interpolation=interpolation), collapse)


def median_adi(cube, angles_deg, *, imlib="skimage", interpolation="biquintic",
               collapse="median"):
    """Classical ADI: subtract the temporal median frame, derotate, combine.

    Parameters
    ----------
    cube : ndarray, shape (time, y, x)
    angles_deg : ndarray, shape (time,)
    imlib, interpolation : str
    collapse : {"median", "mean"}

    Returns
    -------
    ndarray, shape (y, x), float32

    Raises
    ------
    InputShapeError
    """
    cube, angles_deg = _check_adi(cube, angles_deg)
    residuals = cube - np.median(cube, axis=0)
    return _collapse(derotate(residuals, angles_deg, imlib=imlib,
                              interpolation=interpolation), collapse)


def pca_residuals(cube, ncomp, *, mask_center_px=0):
    """Subtract the projection of each frame on the first principal components.

    Same model as vip-hci's full-frame PCA with ``scaling=None`` (no mean
    subtraction): the left singular vectors of the (time, pixels) matrix come
    from the eigenvectors of its small (time, time) Gram matrix, accumulated in
    float64 by blocks, which is faster and lighter than a full SVD of a tall
    matrix.

    Parameters
    ----------
    cube : ndarray, shape (time, y, x)
    ncomp : int
    mask_center_px : int
        Pixels within this radius of the star are zeroed before the PCA.

    Returns
    -------
    ndarray, shape (time, y, x), float32
        Residual frames (not derotated).

    Raises
    ------
    TooFewFramesError
        If ``ncomp`` is not smaller than the number of frames.
    """
    n_frames = cube.shape[0]
    if not 1 <= ncomp < n_frames:
        raise TooFewFramesError(f"ncomp={ncomp} needs more than {ncomp} frames, "
                                f"got {n_frames}")
    matrix = np.array(cube, dtype=np.float32).reshape(n_frames, -1)
    if mask_center_px:
        from .geometry import star_center

        yc, xc = star_center(cube.shape)
        yy, xx = np.indices(cube.shape[-2:])
        matrix[:, (np.hypot(yy - yc, xx - xc) < mask_center_px).ravel()] = 0.0
    gram = np.zeros((n_frames, n_frames))
    for start in range(0, matrix.shape[1], _BLOCK_COLUMNS):
        block = matrix[:, start:start + _BLOCK_COLUMNS].astype(np.float64)
        gram += block @ block.T
    _, eigvec = np.linalg.eigh(gram)  # ascending eigenvalues
    basis = eigvec[:, ::-1][:, :ncomp].astype(np.float32)
    matrix -= basis @ (basis.T @ matrix)
    return matrix.reshape(cube.shape)


def pca_adi(cube, angles_deg, ncomp, *, imlib="skimage", interpolation="biquintic",
            collapse="median", mask_center_px=0):
    """Full-frame PCA-ADI (Soummer et al. 2012; Amara & Quanz 2012).

    Parameters
    ----------
    cube : ndarray, shape (time, y, x)
    angles_deg : ndarray, shape (time,)
        Derotation angles theta (deg).
    ncomp : int
        Principal components subtracted.
    imlib, interpolation : str
        vip-hci rotation method.
    collapse : {"median", "mean"}
    mask_center_px : int
        Radius of the central disc masked before the PCA and in the result.

    Returns
    -------
    ndarray, shape (y, x), float32
        North-up, east-left residual image, star on pixel (ny // 2, nx // 2).

    Raises
    ------
    InputShapeError
    TooFewFramesError
    """
    cube, angles_deg = _check_adi(cube, angles_deg)
    residuals = pca_residuals(cube, int(ncomp), mask_center_px=mask_center_px)
    frame = _collapse(derotate(residuals, angles_deg, imlib=imlib,
                               interpolation=interpolation), collapse)
    if mask_center_px:
        from .geometry import star_center

        yc, xc = star_center(frame.shape)
        yy, xx = np.indices(frame.shape)
        frame[np.hypot(yy - yc, xx - xc) < mask_center_px] = 0.0
    return frame


def pca_adi_annular(cube, angles_deg, ncomp, fwhm_px, *, imlib="skimage",
                    interpolation="biquintic", collapse="median", delta_rot_fwhm=1.0,
                    radius_int_px=0):
    """Annular PCA-ADI with a rotation threshold, by `vip_hci.psfsub.pca_annular`.

    Parameters
    ----------
    cube : ndarray, shape (time, y, x)
    angles_deg : ndarray, shape (time,)
    ncomp : int
    fwhm_px : float
    imlib, interpolation, collapse : str
    delta_rot_fwhm : float
        Minimum field rotation (FWHM) between a frame and its references.
    radius_int_px : int
        Inner radius of the first annulus.

    Returns
    -------
    ndarray, shape (y, x), float32

    Raises
    ------
    InputShapeError
    TooFewFramesError
        If the field rotation leaves too few reference frames in an annulus
        (increase ``radius_int_px`` or lower ``delta_rot_fwhm``).
    """
    from vip_hci.psfsub import pca_annular

    cube, angles_deg = _check_adi(cube, angles_deg)
    try:
        frame = pca_annular(cube=cube, angle_list=angles_deg, fwhm=float(fwhm_px),
                            ncomp=int(ncomp), asize=float(fwhm_px),
                            delta_rot=float(delta_rot_fwhm), radius_int=int(radius_int_px),
                            imlib=imlib, interpolation=interpolation, collapse=collapse,
                            verbose=False, nproc=1)
    except RuntimeError as exc:  # vip's "Too few frames left in the PCA library"
        raise TooFewFramesError(f"annular PCA: {exc}") from exc
    return np.nan_to_num(frame).astype(np.float32)


def pca_asdi(cube, angles_deg, wavelengths_um, ncomp, *, imlib="skimage",
             interpolation="biquintic", collapse="median", mode="single"):
    """PCA-ASDI: angular and spectral differential imaging (IRDIS DBI, IFS).

    Frames are rescaled by ``max(wavelengths) / wavelength`` so speckles line
    up across channels (Sparks & Ford 2002), then vip-hci's full-frame PCA
    (``adimsdi=mode``) models them; the result is combined over channels.

    Parameters
    ----------
    cube : ndarray, shape (wavelength, time, y, x)
    angles_deg : ndarray, shape (time,)
    wavelengths_um : ndarray, shape (wavelength,)
    ncomp : int
        Components of the (single-step) spectral+angular PCA.
    imlib, interpolation, collapse : str
    mode : {"single", "double"}
        vip-hci's one-step or two-step (SDI then ADI) PCA.

    Returns
    -------
    ndarray, shape (y, x), float32

    Raises
    ------
    InputShapeError
        If shapes of cube, angles and wavelengths disagree.
    """
    from vip_hci.psfsub import pca

    cube = np.asarray(cube, dtype=np.float32)
    wavelengths_um = np.asarray(wavelengths_um, dtype=float).ravel()
    if cube.ndim != 4 or wavelengths_um.size != cube.shape[0]:
        raise InputShapeError("an ASDI cube must be (wavelength, time, y, x) with one "
                              "wavelength per channel", cube.shape)
    _check_adi(cube[0], angles_deg)
    scale_list = wavelengths_um.max() / wavelengths_um
    ncomp_arg = int(ncomp) if mode == "single" else (int(ncomp), int(ncomp))
    frame = pca(cube=cube, angle_list=np.asarray(angles_deg, dtype=float),
                scale_list=scale_list, ncomp=ncomp_arg, adimsdi=mode, imlib=imlib,
                imlib2="vip-fft", interpolation=interpolation, collapse=collapse,
                crop_ifs=False, verbose=False, nproc=1)
    return np.nan_to_num(frame).astype(np.float32)
