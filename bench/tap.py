"""TAP, Cone Search and loading speed on 1,000,000 rows (issue 4 protocol).

1. A fresh archive (temporary SPHEREDC_HOME unless --home) gets 1,000,000
   rows in ``sphere.candidates`` from numpy ``default_rng(42)``: ra uniform in
   [0, 360), dec = degrees(arcsin(uniform(-1, 1))), mag (contrast_mag) uniform
   in [10, 22) float32, sep_arcsec exponential of mean 1, obs_date (epoch_mjd)
   uniform over 2015-2025. Loading time includes every index (see `load`).
2. ``spheredc serve`` runs on a free port; each request opens a new HTTP
   connection; median of 30 after 3 warm-up requests, beside the same SQL
   run by ``psql`` (its ``\\timing``: server time plus transfer, the floor; psql
   connects as the owner, so the floor pays no row-level security).
3. Queries: q1 TOP 100 * in a 0.5 degree circle (TABLEDATA), q2 COUNT(*) of
   mag < 15, q3 TOP 100000 id, ra, dec, mag with MAXREC=100000 in BINARY2,
   q4 cone search RA=180 DEC=0 SR=0.5, and q1 throughput with 4 concurrent
   clients for 20 s.

Run: ``.venv/bin/python bench/tap.py [--rows 1000000] [--workers 2]``; ``--home H
--skip-load`` measures the queries again on rows already loaded in ``H``.
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


#: The columns the benchmark writes; pos and healpix_nest are computed by PostgreSQL.
COLUMNS = ('candidate_id', 'sequence_id', 'ra', 'dec', 'contrast_mag', 'sep_arcsec', 'epoch_mjd')


def copy_binary(ids, values, step=100_000):
    """PostgreSQL binary COPY data of the rows, in pieces (numpy, no per-row Python).

    Parameters
    ----------
    ids : numpy array of str
        candidate_id of each row (sequence_id is ``bench``).
    values : sequence of numpy arrays
        The float8 columns, in `COLUMNS` order.
    """
    import numpy as np

    yield b'PGCOPY\n\xff\r\n\x00' + bytes(8)  # signature, flags, header extension
    for i in range(0, len(ids), step):
        part = ids[i:i + step].astype(bytes)
        width = part.dtype.itemsize
        names = ['n', 'id_len', 'id', 'seq_len', 'seq']
        formats = ['>i2', '>i4', f'S{width}', '>i4', 'S5']
        for k in range(len(values)):
            names += [f'len{k}', f'v{k}']
            formats += ['>i4', '>f8']
        rows = np.empty(len(part), dtype={'names': names, 'formats': formats})
        lengths = np.char.str_len(part)
        rows['n'], rows['id_len'], rows['id'] = 2 + len(values), lengths, part
        rows['seq_len'], rows['seq'] = 5, b'bench'
        for k, v in enumerate(values):
            rows[f'len{k}'], rows[f'v{k}'] = 8, v[i:i + step]
        # the ids are padded to the longest: keep only their own bytes
        keep = np.ones((len(part), rows.dtype.itemsize), bool)
        offset = rows.dtype.fields['id'][1]
        keep[:, offset:offset + width] = np.arange(width) < lengths[:, None]
        yield rows.view(np.uint8).reshape(len(part), -1)[keep].tobytes()
    yield b'\xff\xff'


def _insert(conninfo, ids, values):
    """Load rows through a binary COPY into a temporary table.

    ``sphere.candidates`` has no binary COPY (pg_sphere's spoint, a generated
    column, has no binary input), and formatting 5,000,000 floats as text in
    Python takes longer than the whole load should.
    """
    import psycopg

    names = ', '.join(f'"{c}"' for c in COLUMNS)
    with psycopg.connect(conninfo) as conn:
        conn.execute('CREATE TEMPORARY TABLE bench_rows (candidate_id text, sequence_id text, '
                     'ra float8, "dec" float8, contrast_mag float8, sep_arcsec float8, '
                     'epoch_mjd float8) ON COMMIT DROP')
        with conn.cursor().copy('COPY bench_rows FROM STDIN (FORMAT binary)') as copy:
            for piece in copy_binary(ids, values):
                copy.write(piece)
        conn.execute(f'INSERT INTO sphere.candidates ({names}) SELECT {names} FROM bench_rows')


def _parallel(jobs):
    errors = []

    def run(job):
        try:
            job()
        except Exception as exc:  # reported in the main thread
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def load(conn, n, conninfo, lanes=2):
    """Load n rows into sphere.candidates with all its indexes; seconds taken.

    The indexes are dropped, the rows go in through ``lanes`` connections at once
    (binary COPY into a temporary table, then INSERT: `_insert`), and the indexes
    are built again two at a time, a GiST index first if the table has one (since
    migration 0005 it has none: cones read the HEALPix B-tree; the GiST index of
    ``pos`` alone took 9-13 s, pg_sphere 1.1 having no sorted GiST build).
    """
    import numpy as np
    import psycopg

    ra, dec, mag, sep, mjd = make_rows(n)
    ids = np.char.add('c', np.arange(n).astype(str))
    values = [ra, dec, mag.astype(np.float64), sep, mjd]
    t0 = time.perf_counter()
    conn.execute('TRUNCATE sphere.candidates')
    indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = "
                           "'sphere' AND tablename = 'candidates' AND indexname <> "
                           "'candidates_pkey'").fetchall()
    rebuilt = [d for _, d in indexes]
    for name, _ in indexes:
        conn.execute(f'DROP INDEX sphere.{name}')
    conn.execute('ALTER TABLE sphere.candidates DROP CONSTRAINT candidates_pkey')
    conn.commit()
    bounds = np.linspace(0, n, lanes + 1).astype(int)
    _parallel([lambda a=a, b=b: _insert(conninfo, ids[a:b], [v[a:b] for v in values])
               for a, b in zip(bounds[:-1], bounds[1:])])
    steps = {f'insert ({lanes} lanes)': time.perf_counter() - t0}
    # The slowest first, each lane taking the next statement when it is free. The
    # primary key is built as a plain unique index: ADD PRIMARY KEY would wait for the
    # lock of every other index build (it takes an exclusive lock, they a shared one).
    statements = sorted(rebuilt, key=lambda d: 'USING gist' not in d)
    statements.insert(1, 'CREATE UNIQUE INDEX candidates_pkey ON sphere.candidates '
                         '(candidate_id)')

    def build(todo):
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute("SET maintenance_work_mem = '512MB'")
            while True:
                try:
                    d = todo.pop(0)  # atomic under the GIL
                except IndexError:
                    return
                t1 = time.perf_counter()
                c.execute(d)
                words = d.split()
                steps[words[words.index('ON') - 1]] = time.perf_counter() - t1
    t1 = time.perf_counter()
    _parallel([lambda: build(statements)] * 2)
    conn.execute('ALTER TABLE sphere.candidates ADD CONSTRAINT candidates_pkey '
                 'PRIMARY KEY USING INDEX candidates_pkey')
    steps['indexes'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    conn.execute('ANALYZE sphere.candidates')
    conn.commit()
    steps['analyze'] = time.perf_counter() - t1
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


def median_times(fns, runs=30, warm=3):
    """(median seconds, size of the first answer) of each function, called in turn."""
    samples = [[] for _ in fns]
    for i in range(warm + runs):
        for fn, out in zip(fns, samples):
            result = fn()
            if i >= warm:
                out.append(result if isinstance(result, tuple) else (result, 0))
    return [(statistics.median(t for t, _ in out), out[0][1]) for out in samples]


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


def _cone_floor_sql():
    """The SQL the Cone Search runs for q4, with its parameters written in."""
    from vo.scs import ConeRequest, cone_sql

    sql, params = cone_sql('candidates', ConeRequest(180.0, 0.0, 0.5, 2, 20000))
    return sql % tuple(params)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=1_000_000)
    p.add_argument('--workers', type=int, default=2, help='gunicorn worker processes')
    p.add_argument('--home', help='SPHEREDC_HOME to use (default: a temporary one)')
    p.add_argument('--runs', type=int, default=30)
    p.add_argument('--skip-load', action='store_true',
                   help='keep the rows already loaded in --home')
    p.add_argument('--load-lanes', type=int, default=2,
                   help='connections inserting at once (default 2)')
    args = p.parse_args(argv)
    home = Path(args.home or tempfile.mkdtemp(prefix='spheredc_bench_tap_'))
    os.environ['SPHEREDC_HOME'] = str(home)
    os.environ.pop('SPHEREDC_DATABASE_URL', None)
    from archive.db import Database
    from vo.tap import translate_query

    db = Database()
    db.ensure_ready()
    load_s = float('nan')
    print('load average at start: %.1f %.1f %.1f' % os.getloadavg(), flush=True)
    if not args.skip_load:
        with db.connect() as conn:
            load_s = load(conn, args.rows, db.conninfo, args.load_lanes)
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
                 ('q4', {'RA': 180, 'DEC': 0, 'SR': 0.5}, _cone_floor_sql(), '/scs/candidates')]
        print('load average before: %.1f %.1f %.1f' % os.getloadavg(), flush=True)
        for name, params, sql, path in cases:
            # interleaved, so that both see the same load from other work on the machine
            (ours, size), (floor, _) = median_times(
                [lambda: http_get(port, path, params), lambda: psql_time(db.conninfo, sql)],
                args.runs)
            extra = f' ({size / ours / 1e6:.1f} MB/s)' if name == 'q3' else ''
            rows.append((name, f'{ours * 1e3:.1f} ms{extra}', f'{floor * 1e3:.1f} ms',
                         f'{ours / floor:.2f}', DACHS[name]))
            print(rows[-1], flush=True)
        rps = throughput(port, dict(tap, QUERY=Q1))
        rows.append(('q1 x4 clients', f'{rps:.0f} req/s', '', '', DACHS['q1 x4 clients']))
        print('load average after: %.1f %.1f %.1f' % os.getloadavg())
        print('\n| query | spheredc | psql floor | ratio | DaCHS 2.7 |\n|---|---|---|---|---|')
        for row in rows:
            print('| ' + ' | '.join(row) + ' |')
        print(f'\nloading {args.rows} rows with their indexes: {load_s:.2f} s')
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.home:
            db.cluster.stop()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == '__main__':
    main()
