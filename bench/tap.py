"""TAP, Cone Search and loading speed on 1,000,000 rows (issue 4 protocol).

1. A fresh archive (temporary SPHEREDC_HOME unless --home) gets 1,000,000
   rows in ``sphere.candidates`` from numpy ``default_rng(42)``: ra uniform in
   [0, 360), dec = degrees(arcsin(uniform(-1, 1))), mag (contrast_mag) uniform
   in [10, 22) float32, sep_arcsec exponential of mean 1, obs_date (epoch_mjd)
   uniform over 2015-2025. Loading time includes rebuilding every index.
2. ``spheredc serve`` runs on a free port; each request opens a new HTTP
   connection; median of 30 after 3 warm-up requests, beside the same SQL
   run by ``psql`` (its ``\\timing``: server time plus transfer, the floor).
3. Queries: q1 TOP 100 * in a 0.5 degree circle (TABLEDATA), q2 COUNT(*) of
   mag < 15, q3 TOP 100000 id, ra, dec, mag with MAXREC=100000 in BINARY2,
   q4 cone search RA=180 DEC=0 SR=0.5, and q1 throughput with 4 concurrent
   clients for 20 s.

Run: ``.venv/bin/python bench/tap.py [--rows 1000000] [--workers 2]``.
"""
import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

Q1 = ("SELECT TOP 100 * FROM sphere.candidates "
      "WHERE 1=CONTAINS(POINT('ICRS',ra,dec),CIRCLE('ICRS',180,0,0.5))")
Q2 = 'SELECT COUNT(*) FROM sphere.candidates WHERE contrast_mag < 15'
Q3 = 'SELECT TOP 100000 candidate_id, ra, dec, contrast_mag FROM sphere.candidates'
DACHS = {'q1': '46 ms', 'q2': '102 ms', 'q3': '452 ms (8.3 MB/s)', 'q4': '9.5 ms',
         'q1 x4 clients': '23 req/s'}


def make_rows(n):
    """The benchmark columns (numpy arrays) from default_rng(42)."""
    import numpy as np

    rng = np.random.default_rng(42)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    mag = rng.uniform(10, 22, n).astype(np.float32)
    sep = rng.exponential(1.0, n)
    mjd = rng.uniform(57023.0, 60676.0, n)  # 2015-01-01 to 2025-01-01
    return ra, dec, mag, sep, mjd


def load(conn, n, conninfo):
    """COPY n rows into sphere.candidates, indexes dropped then rebuilt; seconds taken.

    The indexes are rebuilt by two connections at once (the two GiST indexes, the
    slowest, on different ones).
    """
    import numpy as np

    ra, dec, mag, sep, mjd = make_rows(n)
    t0 = time.perf_counter()
    conn.execute('TRUNCATE sphere.candidates')
    defs = [row[0] for row in conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'sphere' "
        "AND tablename = 'candidates' AND indexname <> 'candidates_pkey'").fetchall()]
    for (name,) in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'sphere' "
                                "AND tablename = 'candidates' "
                                "AND indexname <> 'candidates_pkey'").fetchall():
        conn.execute(f'DROP INDEX sphere.{name}')
    conn.execute('ALTER TABLE sphere.candidates DROP CONSTRAINT candidates_pkey')
    ids = np.char.add('c', np.arange(n).astype(str))
    with conn.cursor().copy('COPY sphere.candidates (candidate_id, sequence_id, ra, dec, '
                            'contrast_mag, sep_arcsec, epoch_mjd) FROM STDIN') as copy:
        step = 100_000
        for i in range(0, n, step):
            sl = slice(i, i + step)
            lines = '\n'.join(f'{a}\tbench\t{b!r}\t{c!r}\t{d!r}\t{e!r}\t{f!r}' for a, b, c, d, e, f
                              in zip(ids[sl], ra[sl].tolist(), dec[sl].tolist(),
                                     mag[sl].tolist(), sep[sl].tolist(), mjd[sl].tolist()))
            copy.write(lines + '\n')
    conn.commit()
    steps = {'copy': time.perf_counter() - t0}
    gist = [d for d in defs if 'USING gist' in d]
    lanes = [['ALTER TABLE sphere.candidates ADD CONSTRAINT candidates_pkey PRIMARY KEY '
              '(candidate_id)', *gist[1:]], [*gist[:1], *(d for d in defs if d not in gist)]]

    def build(statements):
        import psycopg

        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute("SET maintenance_work_mem = '512MB'")
            for d in statements:
                t1 = time.perf_counter()
                c.execute(d)
                steps[d.split()[2] if d.startswith('CREATE') else 'primary key'] = \
                    time.perf_counter() - t1
    t1 = time.perf_counter()
    threads = [threading.Thread(target=build, args=(lane,)) for lane in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    steps['all indexes'] = time.perf_counter() - t1
    conn.execute('ANALYZE sphere.candidates')
    conn.commit()
    print('load steps (s): ' + ', '.join(f'{k} {v:.1f}' for k, v in steps.items()), flush=True)
    return time.perf_counter() - t0


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def http_get(port, path, params):
    """One request on a new connection: (seconds, bytes of body)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    conn.request('GET', path + '?' + urllib.parse.urlencode(params))
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 200 or b'value="ERROR"' in body[-2000:]:
        raise RuntimeError(f'{path} {params}: {resp.status} {body[-500:]!r}')
    return time.perf_counter() - t0, len(body)


def median_time(fn, runs=30, warm=3):
    for _ in range(warm):
        fn()
    samples = [fn() for _ in range(runs)]
    times = [s[0] if isinstance(s, tuple) else s for s in samples]
    size = samples[0][1] if isinstance(samples[0], tuple) else 0
    return statistics.median(times), size


def psql_time(conninfo, sql):
    """psql's own \\timing of the query on a new connection (process start excluded)."""
    proc = subprocess.run(['psql', '-X', '-q', '-d', conninfo, '-c', '\\timing on', '-c', sql],
                          check=True, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith('Time: ')][-1]
    return float(line.split()[1]) / 1e3


def throughput(port, params, clients=4, seconds=20):
    count = [0] * clients
    stop = time.monotonic() + seconds

    def client(i):
        while time.monotonic() < stop:
            http_get(port, '/tap/sync', params)
            count[i] += 1
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=1_000_000)
    p.add_argument('--workers', type=int, default=2, help='gunicorn worker processes')
    p.add_argument('--home', help='SPHEREDC_HOME to use (default: a temporary one)')
    p.add_argument('--runs', type=int, default=30)
    p.add_argument('--skip-load', action='store_true',
                   help='keep the rows already loaded in --home')
    args = p.parse_args(argv)
    home = Path(args.home or tempfile.mkdtemp(prefix='spheredc_bench_tap_'))
    os.environ['SPHEREDC_HOME'] = str(home)
    os.environ.pop('SPHEREDC_DATABASE_URL', None)
    from archive.db import Database
    from vo.tap import translate_query

    db = Database()
    db.ensure_ready()
    load_s = float('nan')
    if not args.skip_load:
        with db.connect() as conn:
            load_s = load(conn, args.rows, db.conninfo)
        print(f'load {args.rows} rows with indexes: {load_s:.2f} s', flush=True)
    port = _free_port()
    server = subprocess.Popen([sys.executable, '-m', 'spheredc.serve_cmd', '--port', str(port),
                               '--workers', str(args.workers)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                http_get(port, '/health', {})
                break
            except (OSError, RuntimeError):
                time.sleep(0.2)
        rows = []
        tap = {'LANG': 'ADQL'}
        cases = [('q1', dict(tap, QUERY=Q1), translate_query(Q1, 20000).sql, '/tap/sync'),
                 ('q2', dict(tap, QUERY=Q2), translate_query(Q2, 20000).sql, '/tap/sync'),
                 ('q3', dict(tap, QUERY=Q3, MAXREC=100000, RESPONSEFORMAT='votable/b2'),
                  translate_query(Q3, 100000).sql, '/tap/sync'),
                 ('q4', {'RA': 180, 'DEC': 0, 'SR': 0.5},
                  "SELECT candidate_id, sequence_id, target_name, epoch_mjd, filter, "
                  "sep_arcsec, pa_deg, contrast_mag, snr, ra, dec FROM sphere.candidates "
                  "WHERE pos <@ scircle(spoint(radians(180), radians(0)), radians(0.5)) "
                  "LIMIT 20001", '/scs/candidates')]
        for name, params, sql, path in cases:
            ours, size = median_time(lambda: http_get(port, path, params), args.runs)
            floor, _ = median_time(lambda: psql_time(db.conninfo, sql), args.runs)
            extra = f' ({size / ours / 1e6:.1f} MB/s)' if name == 'q3' else ''
            rows.append((name, f'{ours * 1e3:.1f} ms{extra}', f'{floor * 1e3:.1f} ms',
                         f'{ours / floor:.2f}', DACHS[name]))
            print(rows[-1], flush=True)
        rps = throughput(port, dict(tap, QUERY=Q1))
        rows.append(('q1 x4 clients', f'{rps:.0f} req/s', '', '', DACHS['q1 x4 clients']))
        print('\n| query | spheredc | psql floor | ratio | DaCHS 2.7 |\n|---|---|---|---|---|')
        for row in rows:
            print('| ' + ' | '.join(row) + ' |')
        print(f'\nloading {args.rows} rows (COPY + indexes): {load_s:.2f} s')
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.home:
            db.cluster.stop()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == '__main__':
    main()
