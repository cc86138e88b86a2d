"""``spheredc postprocess``: level 2 on any pre-processed ADI/ASDI cube (no database).

Reads a centred cube, its derotation angles, an off-axis PSF and, for 4-d
cubes, the wavelengths (FITS); writes the final image, S/N map, contrast curve,
candidates, an HCI-FITS file and PNG previews into --out; prints the
candidates. Exit status: 0 done, 1 bad input or processing error, 2 usage.
"""
import argparse
import json
import pathlib
import sys

EXIT_OK, EXIT_ERROR = 0, 1


def register(subparsers):
    """Add the ``postprocess`` subcommand to the ``spheredc`` parser."""
    s = subparsers.add_parser("postprocess", help="level 2 (PCA, S/N, contrast, candidates) "
                              "on your own ADI/ASDI cube",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--cube", required=True, metavar="C.fits",
                   help="centred cube (time, y, x) or (wavelength, time, y, x), star on "
                        "pixel (ny // 2, nx // 2)")
    s.add_argument("--angles", required=True, metavar="A.fits",
                   help="derotation angle of each frame (deg; rotating by +angle puts "
                        "north up)")
    s.add_argument("--psf", required=True, metavar="P.fits",
                   help="off-axis PSF at the cube's flux scale, (y, x) or (wavelength, y, x)")
    s.add_argument("--pixscale", required=True, type=float, metavar="ARCSEC",
                   help="pixel scale, arcsec per pixel")
    s.add_argument("--wavelengths", metavar="W.fits",
                   help="wavelength of each channel (micrometres), for 4-d cubes")
    s.add_argument("--out", required=True, metavar="DIR", help="folder for the products")
    s.add_argument("--algorithm", default="pca",
                   choices=("pca", "pca_annular", "median", "stack", "pca_asdi"))
    s.add_argument("--ncomp", type=int, help="principal components (default: frames / 10, "
                   "1 to 20)")
    s.add_argument("--snr-threshold", type=float, default=5.0)
    s.add_argument("--radius", type=int, metavar="PX",
                   help="crop the frames to this radius around the star first (speed)")
    s.add_argument("--json", action="store_true", help="print the candidates as JSON")
    s.set_defaults(func=cmd_postprocess)
    return s


def _summary_text(doc):
    lines = [f"{doc['algorithm']} (ncomp {doc['ncomp']}), FWHM {doc['fwhm_px']:.2f} px: "
             f"{len(doc['candidates'])} candidate(s) above S/N {doc['snr_threshold']:g}"]
    for c in doc["candidates"]:
        mag = "n/a" if c["contrast_mag"] is None else f"{c['contrast_mag']:.2f} mag"
        lines.append(f"  x={c['x']:.2f} y={c['y']:.2f}  sep={c['sep_arcsec']:.4f}\"  "
                     f"PA={c['pa_deg']:.2f} deg  S/N={c['snr']:.1f}  contrast {mag}")
    folder = pathlib.Path(next(iter(doc["products"].values()))).parent
    lines.append(f"products in {folder}: " + ", ".join(sorted(doc["products"])))
    return "\n".join(lines)


def cmd_postprocess(args):
    """Handler: read, process, write, report; returns the exit status."""
    from reduction.level2 import Level2Params
    from reduction.level2.exceptions import Level2Error
    from reduction.postprocess_io import postprocess_files

    try:
        params = Level2Params(algorithm=args.algorithm, ncomp=args.ncomp,
                              snr_threshold=args.snr_threshold, outer_radius_px=args.radius)
        doc = postprocess_files(args.cube, args.angles, args.psf, args.pixscale, args.out,
                                wavelengths_path=args.wavelengths, params=params)
    except (Level2Error, ValueError, OSError) as exc:
        print(f"spheredc postprocess: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(_summary_text(doc))
    return EXIT_OK


def main(argv=None):
    """``python -m spheredc.postprocess_cmd ...`` until the lead wires `register` in."""
    parser = argparse.ArgumentParser(prog="spheredc")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["postprocess", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
