"""``spheredc reduce``: reduction of sequences on Dask, level 1 then level 2.

Level 1 makes the master cubes; level 2 (the default ``--level 2``) then
subtracts the speckles and writes the final images, S/N maps, contrast
curves and candidates. Exit status: 0 every sequence done, 1 some level
failed (or the engine could not run), 2 usage, 3 some refused by the
missing-calibration policy (none failed).
"""
import argparse
import json
import sys

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


def register(subparsers):
    """Add the ``reduce`` subcommand to the ``spheredc`` parser."""
    s = subparsers.add_parser("reduce", help="reduce sequences: level-1 master cubes, then "
                              "level-2 images, limits and candidates (Dask)",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--sequence", metavar="ID", help="this sequence (sequence_id)")
    what.add_argument("--night", metavar="N", help="every IRDIS and IFS sequence of night YYYY-MM-DD")
    what.add_argument("--pending", action="store_true",
                      help="sequences not reduced yet, or whose inputs, parameters or "
                           "recipe version changed, at either level (also resumes killed "
                           "runs); levels already current are not redone")
    s.add_argument("--level", type=int, choices=(1, 2), default=2,
                   help="stop after this level (default 2: level 1 then level 2)")
    s.add_argument("--no-dask", action="store_true",
                   help="run in this process, one sequence after the other")
    s.add_argument("--workers", type=int, help="workers of the local Dask cluster")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_reduce)
    return s


def cmd_reduce(args):
    """Handler: select, reduce, report; returns the exit status."""
    from archive.config import load_settings
    from archive.db import Database
    from reduction.engine import reduce_sequences, select_sequences
    from reduction.exceptions import EngineError
    from reduction.recipes import LEVEL2

    settings = load_settings()
    level2 = LEVEL2 if args.level == 2 else None
    with Database(settings).connect(autocommit=True) as conn:
        ids = select_sequences(conn, sequence=args.sequence, night=args.night,
                               pending=args.pending, level2_recipe=level2)
    if args.sequence and not ids:
        print(f"spheredc reduce: no sequence {args.sequence!r}", file=sys.stderr)
        return EXIT_ERROR
    try:
        results = reduce_sequences(ids, settings, level2_recipe=level2,
                                   n_workers=args.workers, use_dask=not args.no_dask,
                                   skip_current=args.pending)
    except EngineError as exc:
        print(f"spheredc reduce: {exc}", file=sys.stderr)
        return EXIT_ERROR
    statuses = [r["status"] for r in results]
    statuses += [r["level2"]["status"] for r in results if r.get("level2")]
    if args.json:
        json.dump({"scheduler": settings.dask_scheduler or ("local" if not args.no_dask
                                                            else "none"),
                   "sequences": results}, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        if not results:
            print("nothing to reduce")
        for r in results:
            line = f"{r['sequence_id']:32s} {r['status']:8s} {len(r['products'])} products"
            if r.get("error"):
                line += f"  ({r['error'].splitlines()[0]})"
            print(line)
            for flag in r.get("flags", []):
                print(f"    flag: {flag}")
            l2 = r.get("level2")
            if l2:
                line = f"{'':32s} level 2: {l2['status']:8s} {len(l2['products'])} products"
                if l2.get("error") and l2["status"] != "skipped":
                    line += f"  ({l2['error'].splitlines()[0]})"
                print(line)
    if "failed" in statuses:
        return EXIT_ERROR
    return EXIT_REFUSED if "refused" in statuses else EXIT_OK


def main(argv=None):
    """``python -m spheredc.reduce_cmd ...`` until the lead wires `register` in."""
    parser = argparse.ArgumentParser(prog="spheredc")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["reduce", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
