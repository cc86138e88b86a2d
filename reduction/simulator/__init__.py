"""A simulated SPHERE night: raw IRDIS files, IFS reduced cubes and the truth.

`simulate_night` writes one night that follows SPHERE-DATA.md: an IRDIS DBI
coronagraphic sequence in pupil tracking (FLUX, CENTER, OBJECT, SKY) with its
calibrations, a second IRDIS Ks sequence with deliberately missing
calibrations, an acquisition frame, and the IFS YJ cubes (as produced by
``sph_ifs_science_dr``) taken simultaneously with the first sequence.

Model, in short:

- optics (`optics`): VLT pupil, static aberrations with an f**-2 power
  spectrum (40 nm rms, plus 8 nm differential per path and 2 nm of
  frame-to-frame evolution), AO residual halo from a von Karman spectrum
  reduced inside the 40 x 40 actuator control region, ideal coronagraph,
  waffle spots; images by matrix Fourier transform at each wavelength and
  the detector pixel scale, with the anamorphism;
- geometry (`scene`): companions placed with the derotation angle of each
  frame, theta = parang + 135.99 - 1.75 (- 100.48 for IFS), parallactic
  angles from `reduction.paranal`;
- detector (`detector`): flat field, vignetted zones, bad pixels, bias,
  dark, background, Poisson and read noise, 16-bit saturation;
- files (`headers`, `writer`): ESO keywords, archive names, one gzip and
  one tile-compressed file, ``truth.json``.

``truth.json`` lists, per sequence, every frame of its OBJECT, OBJECT,CENTER
and OBJECT,FLUX files (``dpr_type`` tells which) with its mid-exposure time,
parallactic and derotation angles.

Same seed, same bytes: every random draw comes from a generator keyed by the
seed and its purpose, and no wall-clock time is written.
"""
from .night import simulate_night

__all__ = ["simulate_night"]
