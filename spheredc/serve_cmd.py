"""``spheredc serve``: the web application (VO services, later the portal) under gunicorn.

Register with ``serve_cmd.register(subparsers)``; also runnable as
``python -m spheredc.serve_cmd [--host H] [--port P] [--workers N]``.
"""
import argparse
import sys


def register(subparsers):
    """Add the ``serve`` subcommand to an argparse subparsers object."""
    s = subparsers.add_parser('serve', help='serve the VO services and the portal (gunicorn)')
    add_arguments(s)
    s.set_defaults(func=cmd_serve)
    return s


def add_arguments(parser):
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on')
    parser.add_argument('--port', type=int, default=8000)
    parser.add_argument('--workers', type=int, default=2, help='gunicorn worker processes')
    parser.add_argument('--threads', type=int, default=8, help='threads per worker')
    parser.add_argument('--async-workers', type=int, default=2,
                        help='async TAP job threads per worker process')


def cmd_serve(args):
    """Run gunicorn until interrupted; returns the exit status."""
    from gunicorn.app.base import BaseApplication

    from web.app import create_app

    # healpy (cone searches' HEALPix ranges) takes about a second to import: once here,
    # shared by the forked workers, rather than in the first cone search of each.
    import healpy  # noqa: F401

    # Over plain HTTP on loopback a Secure cookie would never come back: the site is
    # only reachable from this machine there, so the cookie may go without it.
    loopback = args.host in ('127.0.0.1', 'localhost', '::1')
    app = create_app(async_workers=args.async_workers,
                     cookie_secure=False if loopback else None)

    def post_fork(server, worker):
        # Each worker process runs its own async job and reduction request threads
        # (and recovers what a dead process left running).
        app.extensions['spheredc'].jobs.ensure_started()
        app.extensions['spheredc'].requests.ensure_started()

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set('bind', f'{args.host}:{args.port}')
            self.cfg.set('workers', args.workers)
            self.cfg.set('threads', args.threads)
            self.cfg.set('worker_class', 'gthread')
            self.cfg.set('timeout', 3700)  # long synchronous downloads are legitimate
            self.cfg.set('keepalive', 5)
            self.cfg.set('post_fork', post_fork)
            self.cfg.set('accesslog', None)

        def load(self):
            return app

    _Server().run()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='spheredc serve', description=__doc__.splitlines()[0])
    add_arguments(parser)
    return cmd_serve(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
