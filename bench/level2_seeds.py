"""Benchmark: level-2 science checks of issue #5 over several simulator seeds.

For each seed, the small simulated night is written, ingested and reduced to
level 1 (``spheredc simulate/ingest/reduce --level 1``) in a temporary
``SPHEREDC_HOME`` with its own embedded database; level 2 then runs in this
process on the IRDIS master cubes (DBI main sequence per field, Ks sequence
without CENTER frame both fields together), with the production recipe
(`reduction.recipes.LEVEL2`). Per seed and sequence it prints the largest
separation (px), PA (deg, candidates at S/N >= 10) and contrast (mag) errors,
companions brighter than the measured 5-sigma limit that were missed, and
false candidates (S/N >= 5 outside the star residual zone).
Limits of the issue: 0.5 px, 0.3 deg, 0.2 mag, none missed, no false one.
The Ks sequence has no CENTER frame: its astrometry depends on level 1's
fallback centre (`reduction.level1.centring.centre_from_symmetry` when
`reduction.level1.cube` uses it, else the default position).

Run: ``python bench/level2_seeds.py [--seeds 1 2 3 4 5] [--keep DIR]``
(about 3 minutes per seed on 2 cores).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LABEL_OF_FILTER = {"DB_H23": "irdis_dbi_main", "BB_Ks": "irdis_ci_missing"}


def level1(seed, home):
    """Simulate, ingest and reduce to level 1 in ``home``; returns truth.json's content."""
    env = dict(os.environ, SPHEREDC_HOME=str(home))
    env.pop("SPHEREDC_DATABASE_URL", None)
    raw = home / "raw"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "spheredc", *map(str, args)], cwd=REPO,
                              env=env, capture_output=True, text=True, check=False)

    cli("simulate", "--seed", seed, "--small", raw)
    truth = json.loads((raw / "truth.json").read_text())
    cli("ingest", *sorted(raw.glob("SPHER.*")))
    cli("reduce", "--night", truth["night"], "--level", "1", "--no-dask")
    cli("db", "stop")
    return truth


def master_cubes(home):
    """``{label: (header, cube, derot_deg, wavelengths_um, psf)}`` of the IRDIS cubes."""
    from astropy.io import fits

    out = {}
    for path in sorted((home / "products" / "level1").glob("IRDIS.*/v*/*_master_cube.fits")):
        with fits.open(path) as hdul:
            header = hdul[0].header.copy()
            arrays = (np.asarray(hdul[0].data, np.float32),
                      np.asarray(hdul["DEROT"].data, float),
                      np.asarray(hdul["WAVELENGTHS"].data, float))
        psf = np.asarray(fits.getdata(str(path).replace("_master_cube", "_psf")), float)
        label = LABEL_OF_FILTER.get(header.get("ESO INS COMB IFLT"))
        if label:
            out[label] = (header, *arrays, psf)
    return out


def check(result, companions, channel, pixscale_arcsec, zone_px):
    """Worst errors, missed companions and false candidates of one level-2 result."""
    cands, matched = result.candidates, set()
    worst = {"sep_px": 0.0, "pa_deg": 0.0, "mag": 0.0, "missed": 0}
    curve = result.contrast
    for comp in companions:
        sep_px = comp["sep_arcsec"] / pixscale_arcsec
        limit = np.interp(sep_px, curve["sep_px"], curve["contrast_mag_5sigma"])
        tx = comp["sep_arcsec"] * np.sin(np.radians(comp["pa_deg"]))
        ty = comp["sep_arcsec"] * np.cos(np.radians(comp["pa_deg"]))
        dist = [np.hypot(c["dra_arcsec"] - tx, c["ddec_arcsec"] - ty) / pixscale_arcsec
                for c in cands]
        if not dist or min(dist) > 2.0:
            worst["missed"] += int(comp["delta_mag"][channel] <= limit)
            continue
        k = int(np.argmin(dist))
        matched.add(k)
        c = cands[k]
        worst["sep_px"] = max(worst["sep_px"], abs(c["sep_px"] - sep_px))
        if c["snr"] >= 10:
            dpa = (c["pa_deg"] - comp["pa_deg"] + 180.0) % 360.0 - 180.0
            worst["pa_deg"] = max(worst["pa_deg"], abs(dpa))
        worst["mag"] = max(worst["mag"], abs(c["contrast_mag"] - comp["delta_mag"][channel]))
    worst["false"] = sum(1 for k, c in enumerate(cands)
                         if k not in matched and c["sep_px"] > zone_px)
    return worst


def level2(truth, cubes):
    """Rows (label, filter, worst) for every IRDIS sequence of one seed."""
    from reduction.level2 import run_postprocess
    from reduction.level2_run import field_filters
    from reduction.recipes import LEVEL2

    params = LEVEL2.params
    rows = []
    for label, (header, cube, derot, wavelengths, psf) in sorted(cubes.items()):
        pix = float(header["PIXSCAL"])
        filters = field_filters(header.get("ESO INS COMB IFLT"), cube.shape[0])
        if len(filters) == cube.shape[0]:
            results = [run_postprocess(cube[k], derot, psf[k], pix, params=params)
                       for k in range(len(filters))]
        else:
            results = [run_postprocess(cube, derot, psf, pix, wavelengths_um=wavelengths,
                                       params=params)]
        for k, (filt, result) in enumerate(zip(filters, results)):
            zone_px = params.residual_zone_fwhm * result.fwhm_px
            rows.append((label, filt, check(result, truth["sequences"][label]["companions"],
                                            k, pix, zone_px)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--keep", type=Path, help="keep the level-1 homes under this folder")
    args = parser.parse_args(argv)
    top = args.keep or Path(tempfile.mkdtemp(prefix="spheredc-seeds-"))
    print(f"{'seed':>4} {'sequence':<17} {'filter':<6} {'dsep_px':>7} {'dpa_deg':>7} "
          f"{'dmag':>5} {'missed':>6} {'false':>5}")
    for seed in args.seeds:
        home = top / f"seed{seed}"
        home.mkdir(parents=True, exist_ok=True)
        truth = level1(seed, home)
        for label, filt, w in level2(truth, master_cubes(home)):
            print(f"{seed:>4} {label:<17} {filt:<6} {w['sep_px']:7.2f} {w['pa_deg']:7.2f} "
                  f"{w['mag']:5.2f} {w['missed']:6d} {w['false']:5d}", flush=True)


if __name__ == "__main__":
    main()
