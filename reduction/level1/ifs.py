"""Master cube of one IFS sequence from the cubes of ESO's ``sph_ifs_science_dr``.

The ESO recipe has already turned each raw IFS exposure into a calibrated,
background-subtracted cube of 39 (YJ) or 39 (YJH) wavelengths x 291 x 291
pixels in ADU per DIT: no calibration is applied here. `build_ifs_master_cube`
normalises the cubes to ADU/s without ND, finds the star behind the
coronagraph from the waffle spots of the CENTER cubes (fitted on a few bands
of channels and fitted linearly in wavelength, so a residual atmospheric
dispersion is followed), puts it on the central pixel of every channel with
the IFS anamorphism corrected, computes the derotation angles with the IFS
instrument offset, flags outlier frames on the broadband (channel-averaged)
images and measures the off-axis PSF of every channel on the FLUX cubes.

The result is a `~reduction.level1.cube.MasterCube` whose first axis is the
wavelength (39 channels) instead of the two IRDIS fields.
"""
from dataclasses import dataclass, field

import numpy as np

from .angles import INSTRUMENT_OFFSET_DEG
from .centring import centre_from_waffle
from .cube import (MasterCube, _averaged_psf, _continuous, _file_angles, _flag,
                   _science_files_by_type, _start_end)
from .exceptions import SequenceError
from .geometry import ANAMORPHISM_XY, PIXSCALE_ARCSEC, recentre
from .normalise import normalise_flux
from .params import CentringParams, PSFParams, SelectionParams
from .psf import measure_psf
from .selection import select_frames

__all__ = ["IFS_MODES_UM", "IfsCubeParams", "ifs_wavelengths_um", "load_ifs_frames",
           "build_ifs_master_cube"]

#: Nominal wavelength range (um) and channels of the IFS modes (``INS2 COMB IFS``),
#: used when a cube's header has no wavelength axis.
IFS_MODES_UM = {"OBS_YJ": (0.957, 1.329, 39), "OBS_H": (0.957, 1.636, 39)}


@dataclass(frozen=True)
class IfsCubeParams:
    """Options of `build_ifs_master_cube`.

    Attributes
    ----------
    crop_px : int
        Odd side of the master cube frames (the ``sph_ifs_science_dr`` cubes are
        291 pixels wide); the star is on the central pixel.
    spline_order : int
        Order of the spline interpolation of the recentring.
    parang_tolerance_deg : float
        Header versus computed parallactic angle disagreement that raises a flag.
    centre_bands : int
        Bands of adjacent channels averaged before fitting the waffle spots
        (the spots move by ~0.5 pixel per channel, so a band of 8 channels
        still gives round spots); the star position is then fitted linearly in
        wavelength over the bands.
    centring, selection, psf : dataclass
        Options of the sub-steps. The PSF flux aperture (80 pixels, 0.6 arcsec)
        holds the core and the AO halo inside the control radius at YJ; the
        background annulus stays inside the 291-pixel cube.
    """
    crop_px: int = 291
    spline_order: int = 3
    parang_tolerance_deg: float = 0.1
    centre_bands: int = 5
    centring: CentringParams = CentringParams()
    selection: SelectionParams = SelectionParams()
    psf: PSFParams = field(default_factory=lambda: PSFParams(
        size_px=41, aperture_radius_px=80.0, annulus_px=(90.0, 120.0)))


def ifs_wavelengths_um(header, n_channels, ins_mode=None):
    """Wavelength of every channel of a ``sph_ifs_science_dr`` cube.

    Parameters
    ----------
    header : mapping
        Header of the cube (``CTYPE3``/``CRVAL3``/``CDELT3``/``CRPIX3``/``CUNIT3``
        describe the wavelength axis when present).
    n_channels : int
    ins_mode : str, optional
        ``ESO INS2 COMB IFS`` ('OBS_YJ', 'OBS_H'): nominal grid when the header
        has no wavelength axis.

    Returns
    -------
    wavelengths_um : `numpy.ndarray`, shape (n_channels,)
    from_header : bool
        False when the nominal grid of the mode was used.

    Raises
    ------
    SequenceError
        Without a wavelength axis in the header and with an unknown mode.
    """
    get = header.get
    if str(get("CTYPE3", "")).upper().startswith(("WAVE", "AWAV")) and \
            get("CRVAL3") is not None and get("CDELT3") is not None:
        scale = {"um": 1.0, "micron": 1.0, "nm": 1e-3, "angstrom": 1e-4, "m": 1e6}.get(
            str(get("CUNIT3", "um")).strip().lower(), 1.0)
        pix = np.arange(1, n_channels + 1) - float(get("CRPIX3", 1.0))
        return (float(get("CRVAL3")) + pix * float(get("CDELT3"))) * scale, True
    if ins_mode not in IFS_MODES_UM:
        raise SequenceError(f"no wavelength axis in the cube header and unknown IFS mode "
                            f"{ins_mode!r}")
    lo, hi, n = IFS_MODES_UM[ins_mode]
    if n != n_channels:
        raise SequenceError(f"{n_channels} channels for the {ins_mode} mode ({n} expected)")
    return np.linspace(lo, hi, n), False


def load_ifs_frames(raw):
    """Frames of an IFS `~reduction.level1.RawFile` as float32 (ndit, channel, y, x)."""
    d = raw.data() if callable(raw.data) else raw.data
    d = np.asarray(d, dtype=np.float32)
    if d.ndim == 3:
        d = d[None]
    if d.ndim != 4:
        raise SequenceError(f"{raw.meta.get('arcfile', '?')}: an IFS cube must be "
                            f"(channel, y, x) or (ndit, channel, y, x), got {d.shape}")
    return d


def _ifs_angles(meta, params, flags):
    """Frame middles, parallactic and derotation angles of one OBJECT cube (IFS offset)."""
    mid, parang, computed, theta = _file_angles(meta, params, flags)
    # `_file_angles` applies the IRDIS offset; theta is additive in the offset
    return mid, parang, computed, theta + INSTRUMENT_OFFSET_DEG["IFS"] - \
        INSTRUMENT_OFFSET_DEG["IRDIS"]


def _check_shape(frames, shape, name):
    if frames.shape[1:] != shape:
        raise SequenceError(f"{name}: cube of shape {frames.shape[1:]}, the sequence's "
                            f"first OBJECT cube is {shape}")


def _centre_of_cube(cube, wavelengths_um, guess_xy, orientation, params, flags, name):
    """Star position per channel from one CENTER cube.

    Returns
    -------
    xy : `numpy.ndarray`, shape (channel, 2) or None
        None when no band gave a symmetric waffle pattern.
    results : list of `~reduction.level1.centring.WaffleCentre`
        One per band.
    """
    n_chan = cube.shape[0]
    edges = np.linspace(0, n_chan, min(params.centre_bands, n_chan) + 1).round().astype(int)
    lam, xy, results = [], [], []
    for a, b in zip(edges[:-1], edges[1:]):
        res = centre_from_waffle(np.nanmean(cube[a:b], axis=0), guess_xy,
                                 orientation=orientation, params=params.centring)
        results.append(res)
        if res.success:
            lam.append(float(np.mean(wavelengths_um[a:b])))
            xy.append(res.centre_xy)
    if not xy:
        _flag(flags, f"{name}: {results[0].reason}; default centre used")
        return None, results
    if len(xy) < len(results):
        _flag(flags, f"{name}: waffle spots fitted in {len(xy)} of {len(results)} bands")
    xy = np.array(xy)
    if len(xy) == 1:
        return np.repeat(xy, n_chan, axis=0), results
    # linear in wavelength: a residual atmospheric dispersion moves the star along a line
    fits_ = [np.polyfit(lam, xy[:, j], 1) for j in range(2)]
    per_channel = np.stack([np.polyval(f, wavelengths_um) for f in fits_], axis=1)
    scatter = np.hypot(*(xy - np.stack([np.polyval(f, lam) for f in fits_], axis=1)).T)
    if scatter.max() > params.centring.max_residual_px:
        _flag(flags, f"{name}: waffle centres of the bands scatter by {scatter.max():.2f} px "
              "about a linear chromatic drift")
    return per_channel, results


def _measure_centres(centre_files, shape, wavelengths_um, params, flags):
    """Per CENTER cube: start MJD and (channel, 2) star positions; WaffleCentre results."""
    guess = (float(shape[-1] // 2), float(shape[-2] // 2))
    mjds, xys, results = [], [], []
    for raw in centre_files:
        name = raw.meta.get("arcfile", "?")
        frames = load_ifs_frames(raw)
        _check_shape(frames, shape, name)
        xy, res = _centre_of_cube(np.median(frames, axis=0), wavelengths_um, guess,
                                  raw.meta.get("waffle_orient"), params, flags, name)
        results.append(res)
        if xy is not None:
            mjds.append(_start_end(raw.meta)[0])
            xys.append(xy)
    return np.array(mjds), np.array(xys).reshape(-1, shape[0], 2), results


def _centres_at(mjd, centre_mjds, centre_xys, shape):
    """Star position (time, channel, xy): linear in time between CENTER cubes, else
    the cube centre."""
    out = np.empty((mjd.size, shape[0], 2))
    if not len(centre_mjds):
        out[..., 0], out[..., 1] = shape[-1] // 2, shape[-2] // 2
        return out
    for k in range(shape[0]):
        for j in range(2):
            out[:, k, j] = np.interp(mjd, centre_mjds, centre_xys[:, k, j])
    return out


def _measure_psf(flux_files, shape, params, flags):
    """PSF stamp, flux and FWHM per channel, averaged over the FLUX cubes."""
    n_chan = shape[0]
    if not flux_files:
        _flag(flags, "no FLUX frame: no PSF")
        return None, np.full(n_chan, np.nan), np.full(n_chan, np.nan)
    guess = (float(shape[-1] // 2), float(shape[-2] // 2))
    measured = []
    for raw in flux_files:
        frames = load_ifs_frames(raw)
        _check_shape(frames, shape, raw.meta.get("arcfile", "?"))
        per = [measure_psf(frames[:, k], float(raw.meta["dit"]),
                           raw.meta.get("nd_filter", "OPEN"), guess_xy=guess, search_px=40,
                           scale_xy=ANAMORPHISM_XY["IFS"], params=params.psf)
               for k in range(n_chan)]
        measured.append(per)
    return _averaged_psf(measured, flags)


def build_ifs_master_cube(files, wavelengths_um, *, params=IfsCubeParams()):
    """Chain the level-1 steps on one IFS sequence.

    Parameters
    ----------
    files : sequence of `~reduction.level1.RawFile`
        The sequence's OBJECT, OBJECT,CENTER and OBJECT,FLUX cubes as written by
        ``sph_ifs_science_dr`` (frames (channel, y, x) or (ndit, channel, y, x),
        ADU per DIT, background subtracted); any order.
    wavelengths_um : array_like, shape (channel,)
        Wavelength of each channel (`ifs_wavelengths_um`).
    params : `IfsCubeParams`, optional

    Returns
    -------
    cube : `~reduction.level1.cube.MasterCube`
        ``science`` of shape (channel, time, crop, crop) in ADU/s without ND, star
        on the central pixel, anamorphism corrected; ``psf`` (channel, s, s);
        the frame table's ``centre_x``/``centre_y`` give the star position in
        the middle channel of the input cubes. Degraded steps are in
        ``cube.flags`` and emitted as `~reduction.level1.exceptions.Level1Warning`.

    Raises
    ------
    SequenceError
        If there is no OBJECT cube, the cubes disagree in shape, the crop is
        not odd, or the wavelengths do not match the channels.
    """
    from astropy.table import Table

    by_type = _science_files_by_type(files, params.crop_px)
    wavelengths_um = np.asarray(wavelengths_um, dtype=np.float64).ravel()
    flags = []

    rows = []
    for raw in by_type["OBJECT"]:
        mid, parang, computed, theta = _ifs_angles(raw.meta, params, flags)
        for i in range(mid.size):
            rows.append((raw.meta.get("arcfile", ""), i, mid[i], parang[i], computed[i],
                         theta[i]))
    mjd = np.array([r[2] for r in rows])
    derot = _continuous([r[5] for r in rows])

    crop, scale = params.crop_px, ANAMORPHISM_XY["IFS"]
    science, frame_xy, shape, t = None, None, None, 0
    for raw in by_type["OBJECT"]:
        frames = load_ifs_frames(raw)
        if shape is None:  # the first cube fixes the geometry of the sequence
            shape = frames.shape[1:]
            if shape[0] != wavelengths_um.size:
                raise SequenceError(f"{shape[0]} channels but {wavelengths_um.size} "
                                    "wavelengths")
            if not by_type["OBJECT,CENTER"]:
                _flag(flags, "no CENTER frame: star assumed on the cube centre")
            c_mjd, c_xy, centres = _measure_centres(by_type["OBJECT,CENTER"], shape,
                                                    wavelengths_um, params, flags)
            frame_xy = _centres_at(mjd, c_mjd, c_xy, shape)
            science = np.empty((shape[0], len(rows), crop, crop), np.float32)
        _check_shape(frames, shape, raw.meta.get("arcfile", "?"))
        if frames.shape[0] != int(raw.meta.get("ndit") or 1):
            raise SequenceError(f"{raw.meta.get('arcfile', '?')}: {frames.shape[0]} frames "
                                f"for NDIT {raw.meta.get('ndit')}")
        frames = normalise_flux(frames, float(raw.meta["dit"]),
                                raw.meta.get("nd_filter", "OPEN"))
        for i in range(frames.shape[0]):
            for k in range(shape[0]):
                science[k, t] = recentre(np.nan_to_num(frames[i, k]), frame_xy[t, k], crop,
                                         scale_xy=scale, order=params.spline_order)
            t += 1
        del frames

    broadband = np.nanmean(science, axis=0)
    sel = select_frames(broadband, params=params.selection)
    psf, psf_flux, psf_fwhm = _measure_psf(by_type["OBJECT,FLUX"], shape, params, flags)
    mid_chan = shape[0] // 2
    table = Table({"file": [r[0] for r in rows], "index": [r[1] for r in rows],
                   "mjd_mid": mjd, "parang_deg": [r[3] for r in rows],
                   "parang_computed_deg": [r[4] for r in rows], "derot_deg": derot,
                   "selected": sel.selected, "reason": np.asarray(sel.reason).astype(str),
                   "centre_x": frame_xy[:, mid_chan, 0], "centre_y": frame_xy[:, mid_chan, 1]})
    return MasterCube(science=science, derot_deg=derot, psf=psf, psf_flux_adu_s=psf_flux,
                      psf_fwhm_px=psf_fwhm, frames=table, centres={"cube": centres},
                      wavelengths_um=wavelengths_um, pixscale_arcsec=PIXSCALE_ARCSEC["IFS"],
                      flags=flags)
