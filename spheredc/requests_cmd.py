"""``spheredc requests``: the reduction-request queue for staff, on the command line.

``list`` shows the requests; ``accept`` and ``reject`` decide on a submitted
one as a staff account (``--as``); ``work`` runs queued requests in this
process (as a server's worker threads would) until none is left. Exit
status: 0 success, 1 error (or a request that failed), 2 usage.
"""
import argparse
import json
import sys

EXIT_OK, EXIT_ERROR = 0, 1


def register(subparsers):
    """Add the ``requests`` subcommand to the ``spheredc`` parser."""
    from archive.requests import STATES

    s = subparsers.add_parser('requests', help='the reduction requests of PIs (staff)',
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = s.add_subparsers(dest='action', required=True)
    p = sub.add_parser('list', help='list requests, newest first')
    p.add_argument('--state', action='append', choices=STATES, help='only these states')
    p.add_argument('--json', action='store_true')
    for name, what in (('accept', 'accept a submitted request and queue it'),
                       ('reject', 'reject a submitted request')):
        p = sub.add_parser(name, help=what)
        p.add_argument('request_id', type=int)
        p.add_argument('--as', dest='staff', required=True, metavar='USER',
                       help='the staff account deciding')
        if name == 'reject':
            p.add_argument('--reason', required=True, help='told to the requester')
        else:
            p.add_argument('--note', help='told to the requester')
        p.add_argument('--json', action='store_true')
    p = sub.add_parser('work', help='run queued requests in this process until none is left')
    p.add_argument('--once', action='store_true', help='run at most one request')
    p.add_argument('--no-dask', action='store_true', help='reduce in this process')
    p.add_argument('--workers', type=int, help='workers of the local Dask cluster')
    p.add_argument('--json', action='store_true')
    s.set_defaults(func=cmd_requests)
    return s


def _line(r):
    return (f"#{r.request_id:<5d} {r.state:9s} {r.requester:12s} {r.prog_id:16s} "
            f"{','.join(r.nights) or 'all nights':12s} {','.join(r.modes) or 'all modes'}"
            + (f"  ({r.reason})" if r.reason else ''))


def _print(reqs, as_json):
    if as_json:
        json.dump([r.as_json() for r in reqs], sys.stdout, indent=1)
        sys.stdout.write('\n')
    else:
        for r in reqs:
            print(_line(r))


def _staff(conn, name):
    from archive.accounts import get_user
    from archive.requests import RequestForbidden

    user = get_user(conn, name)
    if user is None or not user.is_staff:
        raise RequestForbidden(f'{name!r} is not an enabled staff account')
    return user


def _decide(database, args):
    from archive import requests as rq
    from vo.query import QueryPool, as_viewer

    with database.connect() as conn:
        staff = _staff(conn, args.staff)
        if args.action == 'reject':
            req = rq.reject(conn, args.request_id, staff, args.reason)
        else:
            req = rq.get_request(conn, args.request_id)
            rq.check_transition(req.state, 'accepted')
            pool = QueryPool(database, size=1)
            try:
                # Only what the requester may see (row-level security), as on the portal.
                with as_viewer(req.requester):
                    sequences = rq.covered_sequences(req, pool.fetch)
            finally:
                pool.close()
            req = rq.accept(conn, args.request_id, staff, sequences, args.note)
        conn.commit()
    return [req]


def _work(database, args):
    from web.requests_worker import RequestWorker

    worker = RequestWorker(database, workers=0, n_dask_workers=args.workers,
                           use_dask=not args.no_dask)
    worker.recover()
    done = []
    while (req := worker.run_one()) is not None:
        done.append(req)
        if not args.json:
            print(_line(req))
        if args.once:
            break
    if not done and not args.json:
        print('no queued request')
    return done


def cmd_requests(args):
    """Handler of ``spheredc requests``; returns the exit status."""
    from archive.db import Database
    from archive.requests import RequestError, list_requests

    database = Database()
    try:
        if args.action == 'list':
            with database.connect() as conn:
                reqs = list_requests(conn, states=args.state)
            _print(reqs, args.json)
            return EXIT_OK
        if args.action in ('accept', 'reject'):
            reqs = _decide(database, args)
            _print(reqs, args.json)
            return EXIT_OK
        reqs = _work(database, args)
        if args.json:
            _print(reqs, True)
        return EXIT_ERROR if any(r.state == 'failed' for r in reqs) else EXIT_OK
    except RequestError as exc:
        print(f'spheredc requests: {exc}', file=sys.stderr)
        return EXIT_ERROR


def main(argv=None):
    """``python -m spheredc.requests_cmd ...`` until the lead wires `register` in."""
    parser = argparse.ArgumentParser(prog='spheredc')
    register(parser.add_subparsers(dest='command', required=True))
    args = parser.parse_args(['requests', *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
