"""Synthetic coronagraphic ADI sequences for tests and benchmarks.

Speckles are the residual of a coronagraph on an aberrated pupil:
``|FT(P (exp(i phi) - 1))|^2`` with a static phase screen plus a small
slowly-drifting one, so they stay fixed on the detector while the sky turns
(pupil tracking). The companion PSF is the aberration-free ``|FT(P)|^2``.
"""
import numpy as np

__all__ = ["airy_psf", "speckle_cube"]


def _pupil(n_grid, lambda_over_d_px):
    yy, xx = np.indices((n_grid, n_grid)) - n_grid // 2
    return (np.hypot(yy, xx) < n_grid / lambda_over_d_px / 2).astype(float)


def _phase_screen(rng, n_grid, rms_rad, power=-2.5):
    fy, fx = np.meshgrid(np.fft.fftfreq(n_grid), np.fft.fftfreq(n_grid), indexing="ij")
    f = np.hypot(fy, fx)
    f[0, 0] = np.inf
    screen = np.fft.ifft2(f ** (power / 2) * (rng.normal(size=f.shape)
                                              + 1j * rng.normal(size=f.shape))).real
    return screen * rms_rad / screen.std()


def _image(field, size):
    img = np.abs(np.fft.fftshift(np.fft.fft2(field))) ** 2
    c = field.shape[0] // 2
    h = size // 2
    return img[c - h:c - h + size, c - h:c - h + size]


def airy_psf(size, lambda_over_d_px=4.0):
    """Aberration-free PSF, peak on pixel (size // 2, size // 2), unit peak.

    Parameters
    ----------
    size : int
    lambda_over_d_px : float

    Returns
    -------
    ndarray, shape (size, size), float32
    """
    n_grid = int(2 ** np.ceil(np.log2(max(size, 64) * 2)))
    img = _image(_pupil(n_grid, lambda_over_d_px), size)
    return (img / img.max()).astype(np.float32)


def speckle_cube(n_frames, size, angles_deg, *, lambda_over_d_px=4.0, speckle_level=1e-3,
                 drift=0.1, noise_level=2e-6, rng=None):
    """ADI cube of coronagraphic speckles (star flux unit = PSF peak 1).

    Parameters
    ----------
    n_frames : int
    size : int
        Frame side (odd recommended).
    angles_deg : ndarray, shape (n_frames,)
        Not used for the speckles (they do not rotate); kept for symmetry with
        companion injection.
    lambda_over_d_px : float
    speckle_level : float
        Typical speckle intensity relative to the PSF peak.
    drift : float
        Relative amplitude of the time-varying phase.
    noise_level : float
        White (photon/read) noise sigma per pixel, relative to the PSF peak.
    rng : numpy.random.Generator, optional

    Returns
    -------
    ndarray, shape (n_frames, size, size), float32
    """
    rng = np.random.default_rng(rng)
    n_grid = int(2 ** np.ceil(np.log2(max(size, 64) * 2)))
    pupil = _pupil(n_grid, lambda_over_d_px)
    peak = _image(pupil, size).max()
    rms = np.sqrt(speckle_level)  # speckle halo ~ phase variance (small aberrations)
    static = _phase_screen(rng, n_grid, rms)
    d1, d2 = _phase_screen(rng, n_grid, rms * drift), _phase_screen(rng, n_grid, rms * drift)
    t = np.linspace(0, np.pi / 2, n_frames)
    cube = np.empty((n_frames, size, size), dtype=np.float32)
    for i in range(n_frames):
        phase = static + np.cos(t[i]) * d1 + np.sin(t[i]) * d2
        cube[i] = _image(pupil * (np.exp(1j * phase) - 1.0), size) / peak
    cube += rng.normal(scale=noise_level, size=cube.shape).astype(np.float32)
    return cube
