"""The ``spheredc`` command: argument parsing only.

Each subcommand imports the package doing the work inside its handler, so
``spheredc --help`` and light commands such as ``spheredc sequences`` start
fast. Exit status: 0 success, 1 error, 2 usage error, 3 some input refused
(files quarantined by ``ingest``).
"""
import argparse
import json
import sys

EXIT_REFUSED = 3
_OUR_PACKAGES = {"archive", "ingest", "reduction", "vo", "web"}


def _positive_int(text):
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def _print_json(obj):
    json.dump(obj, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


def cmd_db(args):
    from archive.db import Database

    db = Database()
    if not db.cluster:
        if args.action != "status":
            print("SPHEREDC_DATABASE_URL is set: the external database is not managed by "
                  "spheredc", file=sys.stderr)
            return 1
        db.ensure_ready()
        status = {"embedded": False, "url": db.settings.database_url, "running": True}
    elif args.action == "start":
        started = db.cluster.start(port=args.port)
        db.ensure_ready()
        status = dict(db.cluster.status(), started=started)
    elif args.action == "stop":
        status = dict(db.cluster.status(), stopped=db.cluster.stop())
        status["running"] = db.cluster.is_running()
    else:
        status = db.cluster.status()
    if args.json:
        _print_json(status)
    else:
        where = status.get("pgdata") or status.get("url")
        state = "running" if status["running"] else "stopped"
        port = f", TCP 127.0.0.1:{status['tcp_port']}" if status.get("tcp_port") else ""
        print(f"database {state} ({where}{port})")
    return 0


def cmd_simulate(args):
    from reduction.simulator import simulate_night

    truth = simulate_night(args.outdir, seed=args.seed, night=args.night, small=args.small)
    summary = {"outdir": args.outdir, "night": truth["night"], "files": len(truth["files"]),
               "sequences": sorted(truth["sequences"])}
    if args.json:
        _print_json(summary)
    else:
        print(f"simulated night {summary['night']}: {summary['files']} files in {args.outdir} "
              f"(sequences: {', '.join(summary['sequences'])}; truth in truth.json)")
    return 0


def cmd_ingest(args):
    from archive.db import Database
    from ingest.run import ingest_paths
    from ingest.report import format_ingest_report

    report = ingest_paths(args.paths, Database(), workers=args.workers,
                          progress=not args.json and sys.stderr.isatty())
    if args.json:
        _print_json(report.as_dict())
    else:
        print(format_ingest_report(report))
    return EXIT_REFUSED if report.quarantined else 0


def cmd_sequences(args):
    from archive.db import Database
    from ingest.report import count_sequences, fetch_sequences, format_sequences

    db = Database()
    rows = fetch_sequences(db.fetch, night=args.night, target=args.target,
                           limit=args.limit or None)
    if args.json:
        _print_json(rows)
        return 0
    print(format_sequences(rows, filtered=bool(args.night or args.target)))
    if args.limit and len(rows) == args.limit:
        total = count_sequences(db.fetch, night=args.night, target=args.target)
        if total > len(rows):
            print(f"(the {len(rows)} newest of {total} sequences: --limit 0 lists them all, "
                  "--night or --target narrows the list)")
    return 0


def cmd_demo(args):
    """The main job: database, a simulated night, ingest, sequences, reduction, serving."""
    import json as _json
    from pathlib import Path

    from archive.db import Database
    from ingest.report import fetch_sequences, format_ingest_report, format_sequences
    from ingest.run import ingest_paths
    from reduction.simulator import simulate_night

    db = Database()
    db.ensure_ready()
    where = db.settings.database_url or db.cluster.pgdata
    print(f"[1/4] database ready ({where})")
    night_dir = Path(db.settings.home) / "demo" / f"night-seed{args.seed}{'-small' if args.small else ''}"
    truth_path = night_dir / "truth.json"
    if truth_path.exists():
        truth = _json.loads(truth_path.read_text())
        print(f"[2/4] simulated night {truth['night']} already in {night_dir}")
    else:
        print(f"[2/4] simulating a SPHERE night in {night_dir} (seed {args.seed}) ...", flush=True)
        truth = simulate_night(str(night_dir), seed=args.seed, small=args.small)
        print(f"      {len(truth['files'])} raw files written")
    print("[3/4] ingesting it", flush=True)
    raw_files = sorted(str(p) for p in night_dir.glob("SPHER.*"))  # not truth.json
    report = ingest_paths(raw_files, db, progress=sys.stderr.isatty())
    print(format_ingest_report(report))
    print()
    print(format_sequences(fetch_sequences(db.fetch, night=truth["night"])))
    print("\n[4/4] reducing the night on Dask (level 1: calibrations and master cubes; "
          "level 2: PCA-ADI, S/N maps, contrast curves, candidates)", flush=True)
    from reduction.engine import reduce_sequences, select_sequences
    from reduction.recipes import LEVEL2

    with db.connect(autocommit=True) as conn:
        ids = select_sequences(conn, pending=True, level2_recipe=LEVEL2)
    for r in reduce_sequences(ids, db.settings, level2_recipe=LEVEL2, skip_current=True):
        line = f"{r['sequence_id']:32s} level 1 {r['status']:8s} {len(r['products'])} products"
        print(line + (f"  ({r['error'].splitlines()[0]})" if r.get("error") else ""))
        for flag in r.get("flags", []):
            print(f"    flag: {flag}")
        l2 = r.get("level2") or {}
        if l2:
            print(f"{'':32s} level 2 {l2.get('status', ''):8s} "
                  f"{len(l2.get('products', []))} products"
                  + (f"  ({l2['error'].splitlines()[0]})" if l2.get("error") else ""))
    with db.connect() as conn:
        for target, filt, sep, pa, snr, mag in conn.execute(
                "SELECT target_name, filter, sep_arcsec, pa_deg, snr, contrast_mag "
                "FROM sphere.candidates ORDER BY target_name, sep_arcsec, filter").fetchall():
            print(f"    candidate near {target} in {filt}: {sep:.3f} arcsec, PA {pa:.1f} deg, "
                  f"S/N {snr:.1f}, contrast {mag:.2f} mag")
    print(f"products are under {db.settings.products_dir}")
    demo_user, demo_password = _demo_accounts(db)
    if args.no_serve:
        return 0
    from spheredc import serve_cmd

    print("\nserving the portal on http://127.0.0.1:8000 and the VO services (TAP at /tap, "
          "e.g. TOPCAT or pyvo.dal.TAPService('http://127.0.0.1:8000/tap'))")
    print(f"demo PI account: user {demo_user}, password {demo_password} "
          f"(PI of {DEMO_PRIVATE_PROG}, whose data are proprietary); Ctrl-C stops", flush=True)
    return serve_cmd.cmd_serve(argparse.Namespace(host="127.0.0.1", port=8000, workers=2,
                                                  threads=8, async_workers=2))


#: The demo's proprietary programme (SIMSTAR-2 on the simulated night) and its PI.
DEMO_PRIVATE_PROG = "0115.C-0456"
DEMO_PI = "demo-pi"


def _demo_accounts(db):
    """Make one programme proprietary and give it a PI account; returns (user, password)."""
    import secrets

    from archive import accounts
    from archive.access import set_programme, set_proprietary_period

    password = secrets.token_urlsafe(9)
    with db.connect() as conn:
        # A three-year period (as large programmes negotiate) keeps the simulated
        # night's SIMSTAR-2 data proprietary while the rest of the night is public.
        set_proprietary_period(conn, DEMO_PRIVATE_PROG, 3 * 365, "Simulated large programme")
        # The other programme of the night stands for a survey (search the portal by it).
        set_programme(conn, "0115.C-0123", title="Simulated direct-imaging survey",
                      survey="SIM-SHINE")
        if accounts.get_user(conn, DEMO_PI) is None:
            accounts.create_user(conn, DEMO_PI, password, full_name="Demo PI",
                                 email="demo-pi@localhost")
        else:
            accounts.set_password(conn, DEMO_PI, password)
        accounts.add_membership(conn, DEMO_PI, DEMO_PRIVATE_PROG, "PI")
        rows = conn.execute(
            "SELECT sequence_id, target_name, release_date > now() AT TIME ZONE 'UTC' "
            "FROM sphere.sequences ORDER BY sequence_id").fetchall()
    for seq, target, private in rows:
        print(f"    {seq:32s} {target:12s} {'proprietary' if private else 'public'}")
    return DEMO_PI, password


def build_parser():
    p = argparse.ArgumentParser(
        prog="spheredc", description="spheredc: an open data center for VLT/SPHERE.",
        epilog="Configuration: SPHEREDC_HOME (state, default ./var), SPHEREDC_DATABASE_URL "
               "(external PostgreSQL), SPHEREDC_DASK_SCHEDULER (existing Dask cluster).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("db", help="manage the embedded PostgreSQL cluster")
    s.add_argument("action", choices=["start", "stop", "status"])
    s.add_argument("--port", type=_positive_int,
                   help="also listen on 127.0.0.1:PORT (start only)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_db)

    s = sub.add_parser("simulate", help="write a realistic simulated SPHERE night")
    s.add_argument("outdir")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--night", help="YYYY-MM-DD (evening date)")
    s.add_argument("--small", action="store_true", help="small night for tests and demos")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("ingest", help="ingest raw files and folders into the archive")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--workers", type=_positive_int,
                   help="header-reading processes (default: CPUs)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("sequences", help="list sequences with their calibration status")
    s.add_argument("--night", help="only this night (YYYY-MM-DD)")
    s.add_argument("--target", help="only this target (case-insensitive substring)")
    s.add_argument("--limit", type=lambda t: 0 if t == "0" else _positive_int(t), default=100,
                   help="at most this many, newest first (default 100; 0 for all)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sequences)
    from spheredc import accounts_cmd, postprocess_cmd, reduce_cmd, requests_cmd, serve_cmd

    accounts_cmd.register(sub)
    requests_cmd.register(sub)
    reduce_cmd.register(sub)
    postprocess_cmd.register(sub)
    serve_cmd.register(sub)

    s = sub.add_parser("demo", help="the main job: simulate a night, ingest, reduce, serve")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--small", action="store_true", help="a small night (seconds instead of minutes)")
    s.add_argument("--no-serve", action="store_true", help="stop after the reduction")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except Exception as exc:
        # Our packages raise errors whose message is meant for the user; anything
        # else is a bug and keeps its traceback.
        if type(exc).__module__.split(".")[0] not in _OUR_PACKAGES:
            raise
        print(f"spheredc: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("spheredc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
