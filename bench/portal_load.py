"""Portal load: 20 concurrent clients browsing and searching for 60 s on loopback (issue 6).

1. A fresh archive (temporary SPHEREDC_HOME unless --home) holds the small
   simulated night, ingested and reduced through level 2 (as ``make demo``),
   with one proprietary programme and its PI.
2. ``spheredc serve`` (gunicorn) runs on a free loopback port.
3. Each client (a thread with its own HTTP session; one in four logged in as the
   PI) loops for the duration over a browsing mix: home page, search by name,
   search by position, a result page sorted, an observation page and its
   pictures (final image, S/N map, contrast plot). Every response must be
   200 with a body; anything else counts as an error.
4. Reported: requests, errors, requests/s, median and 95th percentile page
   times per kind, beside the floor (``/health``: the same server stack doing
   one trivial database query) measured the same way in the same run.

Run: ``.venv/bin/python bench/portal_load.py [--clients 20] [--seconds 60]``.
Exit status 1 when any request failed.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def prepare(home):
    """Simulate, ingest and reduce the small night in ``home``; returns the demo PI's password."""
    env = dict(os.environ, SPHEREDC_HOME=str(home))
    env.pop('SPHEREDC_DATABASE_URL', None)
    proc = subprocess.run([sys.executable, '-m', 'spheredc', 'demo', '--small', '--no-serve'],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit('demo failed:\n' + proc.stderr[-3000:])
    password = 'load-test-password'
    subprocess.run([sys.executable, '-m', 'spheredc', 'user', 'password', 'demo-pi'],
                   input=password + '\n', cwd=REPO, env=env, check=True, capture_output=True,
                   text=True)
    return env, password


def serve(env, workers, threads):
    port = _free_port()
    log = open(Path(env['SPHEREDC_HOME']) / 'serve.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'spheredc.serve_cmd', '--port', str(port),
                             '--workers', str(workers), '--threads', str(threads)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + '/health', timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit('server did not start')
            time.sleep(0.2)


def browsing_mix(base, sequences, target, ra, dec):
    """(kind, path) pairs one client cycles through."""
    mix = [('home', '/'), ('search name', f'/search?name={target}'),
           ('search position', f'/search?ra={ra:.5f}&dec={dec:.5f}&radius=30'),
           ('search sorted', '/search?sort=night&order=desc&page=1')]
    for seq in sequences:
        mix += [('observation', f'/observation/{seq}'),
                ('picture', f'/observation/{seq}/image.png'),
                ('picture', f'/observation/{seq}/snr.png'),
                ('picture', f'/observation/{seq}/contrast.png')]
    return mix


def client(base, mix, stop, times, errors, login=None):
    import requests

    session = requests.Session()
    if login:
        page = session.get(base + '/login')
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        session.post(base + '/login', data={'username': login[0], 'password': login[1],
                                            'csrf_token': token})
    i = 0
    while not stop.is_set():
        kind, path = mix[i % len(mix)]
        i += 1
        t0 = time.perf_counter()
        try:
            resp = session.get(base + path, timeout=30)
            ok = resp.status_code == 200 and len(resp.content) > 0
        except requests.RequestException:
            ok = False
            resp = None
        dt = time.perf_counter() - t0
        times.setdefault(kind, []).append(dt)
        if not ok:
            errors.append((path, resp.status_code if resp is not None else 'no answer'))


def run_load(base, mix, clients, seconds, login=None):
    stop = threading.Event()
    per_client = [({}, []) for _ in range(clients)]
    threads = [threading.Thread(target=client, args=(base, mix, stop, t, e,
                                                      login if k % 4 == 0 else None))
               for k, (t, e) in enumerate(per_client)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    times, errors = {}, []
    for t, e in per_client:
        for kind, values in t.items():
            times.setdefault(kind, []).extend(values)
        errors.extend(e)
    return times, errors


def p95(values):
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--clients', type=int, default=20)
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--workers', type=int, default=2, help='gunicorn workers')
    ap.add_argument('--threads', type=int, default=8, help='threads per worker')
    ap.add_argument('--home', help='reuse this SPHEREDC_HOME (prepared if empty)')
    args = ap.parse_args(argv)
    tmp = None
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix='spheredc-load-'))
    if not args.home:
        tmp = home
    try:
        env, password = prepare(home)
        proc, base = serve(env, args.workers, args.threads)
        try:
            from archive.config import Settings
            from archive.db import Database

            db = Database(Settings(home=home))
            with db.connect() as conn:
                rows = conn.execute('SELECT s.sequence_id, s.target_name, s.ra, s.dec '
                                    'FROM sphere.sequences s WHERE EXISTS (SELECT 1 FROM '
                                    "sphere.products p WHERE p.sequence_id = s.sequence_id AND "
                                    "p.product_type = 'final_image' AND p.is_current) "
                                    "AND s.release_date <= now() AT TIME ZONE 'UTC' "
                                    'ORDER BY 1').fetchall()
            seqs = [r[0] for r in rows]
            mix = browsing_mix(base, seqs, rows[0][1], rows[0][2], rows[0][3])
            # warm-up: every page once (pictures are rendered then cached)
            for _, path in mix:
                urllib.request.urlopen(base + path, timeout=60).read()
            floor, floor_errors = run_load(base, [('health', '/health')], args.clients,
                                           min(10.0, args.seconds))
            times, errors = run_load(base, mix, args.clients, args.seconds,
                                     login=('demo-pi', password))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        n = sum(len(v) for v in times.values())
        everything = [x for v in times.values() for x in v]
        print(f'{args.clients} clients, {args.seconds:g} s, gunicorn {args.workers} workers x '
              f'{args.threads} threads, load average {os.getloadavg()[0]:.1f}')
        print(f'{n} requests, {len(errors)} errors, {n / args.seconds:.0f} requests/s')
        print(f'{"kind":18s} {"n":>6s} {"median ms":>10s} {"p95 ms":>8s}')
        for kind, values in sorted(times.items()):
            print(f'{kind:18s} {len(values):6d} {1e3 * statistics.median(values):10.1f} '
                  f'{1e3 * p95(values):8.1f}')
        print(f'{"all pages":18s} {n:6d} {1e3 * statistics.median(everything):10.1f} '
              f'{1e3 * p95(everything):8.1f}')
        hv = floor['health']
        print(f'{"floor: /health":18s} {len(hv):6d} {1e3 * statistics.median(hv):10.1f} '
              f'{1e3 * p95(hv):8.1f}   ({len(floor_errors)} errors)')
        print(f'p95 ratio pages / floor: {p95(everything) / p95(hv):.1f}')
        for path, status in errors[:10]:
            print(f'error: {path} -> {status}')
        return 1 if errors or floor_errors else 0
    finally:
        if tmp is not None:
            subprocess.run([sys.executable, '-m', 'spheredc', 'db', 'stop'], cwd=REPO,
                           env=dict(os.environ, SPHEREDC_HOME=str(tmp)), capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
