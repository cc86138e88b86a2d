"""What each sequence looks at: star, companions and observing conditions.

Drawn once per night from the seed: sub-pixel star centres, star fluxes,
companions (two in the main IRDIS sequence, the inner one also in the IFS
cubes with a wavelength-dependent contrast, one in the Ks sequence), seeing
and coherence time.
"""
import dataclasses

import numpy as np

from . import instrument as ins
from .optics import AOConditions
from .plan import SEQ_CI, SEQ_IFS, SEQ_MAIN


@dataclasses.dataclass(frozen=True)
class Companion:
    """A point source bound to the star.

    Attributes
    ----------
    sep_arcsec, pa_deg : float
        Separation and position angle (east of north).
    contrast : tuple of float
        Flux ratio to the star, per field (IRDIS) or per channel (IFS).
    """

    sep_arcsec: float
    pa_deg: float
    contrast: tuple

    def truth(self):
        """Entry of ``truth.json``."""
        c = np.asarray(self.contrast, dtype=float)
        return {"sep_arcsec": round(self.sep_arcsec, 6), "pa_deg": round(self.pa_deg, 6),
                "contrast": [float(v) for v in c], "delta_mag": [float(v) for v in -2.5 * np.log10(c)]}


@dataclasses.dataclass(frozen=True)
class SequenceSky:
    """The star, its companions and the conditions of one sequence.

    Attributes
    ----------
    fields : tuple of str
        ('left', 'right') for IRDIS, ('cube',) for IFS.
    wavelengths_um : tuple of float
        Per field (IRDIS) or per channel (IFS).
    centers_xy : dict of str to (float, float)
        Star position per field (0-based pixels).
    star_flux_adu_s : dict of str to float or tuple
        Unocculted star flux (ADU/s, no ND) per field, or per channel for 'cube'.
    companions : tuple of `Companion`
    ao : `optics.AOConditions`
    """

    fields: tuple
    wavelengths_um: tuple
    centers_xy: dict
    star_flux_adu_s: dict
    companions: tuple
    ao: AOConditions


def ifs_wavelengths_um():
    """The 39 IFS YJ channel wavelengths (um), a linear grid."""
    return np.linspace(*ins.IFS_YJ_RANGE_UM, ins.IFS_N_CHANNELS)


def _offset(rng, xy):
    return tuple(round(float(v + rng.uniform(-0.5, 0.5)), 4) for v in xy)


def draw_skies(rng):
    """Draw every sequence's sky.

    Parameters
    ----------
    rng : `numpy.random.Generator`

    Returns
    -------
    skies : dict of str to `SequenceSky`
        Keyed by sequence label.
    """
    ao_main = AOConditions(seeing_arcsec=float(rng.uniform(0.55, 0.9)),
                           tau0_s=float(rng.uniform(0.004, 0.008)))
    ao_ci = AOConditions(seeing_arcsec=float(rng.uniform(0.6, 1.0)),
                         tau0_s=float(rng.uniform(0.003, 0.006)))
    sep_b, pa_b = float(rng.uniform(0.35, 0.55)), float(rng.uniform(0.0, 360.0))
    sep_c, pa_c = float(rng.uniform(1.0, 1.4)), float((pa_b + rng.uniform(100.0, 260.0)) % 360.0)
    c_b = 10 ** rng.uniform(-4.1, -3.9)
    c_c = 10 ** rng.uniform(-5.0, -4.7)
    h_flux = 6.0e6 * rng.uniform(0.9, 1.1)
    main = SequenceSky(
        fields=("left", "right"), wavelengths_um=ins.IRDIS_FILTERS["DB_H23"],
        centers_xy={f: _offset(rng, ins.DEFAULT_CENTERS[f]) for f in ("left", "right")},
        star_flux_adu_s={"left": round(h_flux, 1), "right": round(0.93 * h_flux, 1)},
        # methane-like absorption makes the inner companion fainter in H3
        companions=(Companion(sep_b, pa_b, (c_b, 0.7 * c_b)), Companion(sep_c, pa_c, (c_c, 0.95 * c_c))),
        ao=ao_main)
    lam = ifs_wavelengths_um()
    # a red companion with a water band near 1.14 um
    spec = c_b * (lam / 1.593) ** 1.2 * (1.0 - 0.4 * np.exp(-((lam - 1.14) / 0.04) ** 2))
    ifs = SequenceSky(
        fields=("cube",), wavelengths_um=tuple(float(v) for v in lam),
        centers_xy={"cube": _offset(rng, (145.0, 145.0))},
        star_flux_adu_s={"cube": tuple(round(float(v), 1) for v in 1.6e5 * (lam / 1.1) ** -1.5)},
        companions=(Companion(sep_b, pa_b, tuple(float(v) for v in spec)),), ao=ao_main)
    k_flux = 3.0e6 * rng.uniform(0.9, 1.1)
    c_d = 10 ** rng.uniform(-4.3, -4.0)
    ci = SequenceSky(
        fields=("left", "right"), wavelengths_um=ins.IRDIS_FILTERS["BB_Ks"],
        centers_xy={f: _offset(rng, ins.DEFAULT_CENTERS[f]) for f in ("left", "right")},
        star_flux_adu_s={"left": round(k_flux, 1), "right": round(0.97 * k_flux, 1)},
        companions=(Companion(float(rng.uniform(0.6, 0.9)), float(rng.uniform(0.0, 360.0)), (c_d, c_d)),),
        ao=ao_ci)
    return {SEQ_MAIN: main, SEQ_IFS: ifs, SEQ_CI: ci}
