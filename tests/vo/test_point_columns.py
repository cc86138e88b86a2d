"""POINT('ICRS', t.ra, t.dec) written as t.pos (migration 0004 dropped the expression indexes).

Translations without a database, then against the VO archive: the same rows with
and without the rewriting, and the GiST index on ``pos`` used by the read-only
role under row-level security (pg_sphere's point tests are LEAKPROOF).
"""
import pytest

from tests.vo.conftest import private_candidate
from vo.adql import translate
from vo.query import QueryPool, as_viewer
from vo.tap import point_columns
from vo.tapschema import adql_metadata

CONE = "CIRCLE('ICRS', 10, 20, 1)"


def _sql(adql, points=True):
    return translate(adql, adql_metadata(), maxrec=100,
                     points=point_columns() if points else None).sql


def test_point_columns_come_from_the_schema_files():
    points = point_columns()
    assert points['sphere.candidates'] == ('ra', 'dec', 'pos', 'healpix_nest')
    assert {'sphere.sequences', 'sphere.raw_files'} <= set(points)
    assert 'ivoa.obscore' not in points and 'sphere.detection_limits' not in points


@pytest.mark.parametrize('adql, expected', [
    (f"SELECT ra FROM sphere.candidates WHERE 1=CONTAINS(POINT('ICRS', ra, dec), {CONE})",
     'WHERE (pos @ scircle('),
    (f"SELECT POINT('ICRS', c.ra, c.dec) AS p FROM sphere.candidates AS c "
     f"WHERE CONTAINS(POINT(c.ra, c.dec), {CONE}) = 1", 'SELECT c.pos AS p FROM'),
    ("SELECT c.ra FROM sphere.candidates AS c JOIN sphere.sequences AS s "
     "ON 1=CONTAINS(POINT('ICRS', c.ra, c.dec), CIRCLE('ICRS', s.ra, s.dec, 0.1))",
     'ON (c.pos @ scircle(spoint(radians(s.ra), radians(s."dec"))'),
    ("SELECT TOP 5 ra FROM sphere.sequences "
     "ORDER BY DISTANCE(POINT(NULL, ra, dec), POINT('ICRS', 1, 2))",
     'ORDER BY degrees((pos <-> spoint(radians(1), radians(2))))'),
    ("WITH w AS (SELECT * FROM sphere.raw_files WHERE 1=INTERSECTS(POINT(ra, dec), "
     f"{CONE})) SELECT arcfile FROM w", 'WHERE (pos @ scircle('),
])
def test_points_of_stored_positions_become_pos(adql, expected):
    sql = _sql(adql)
    assert expected in sql
    assert 'spoint(radians(ra)' not in sql and 'spoint(radians(c.ra)' not in sql
    assert 'pos' not in _sql(adql, points=False)


@pytest.mark.parametrize('adql', [
    # another frame (its warning stays), expressions, swapped or mixed columns
    f"SELECT ra FROM sphere.candidates WHERE 1=CONTAINS(POINT('GALACTIC', ra, dec), {CONE})",
    f"SELECT ra FROM sphere.candidates WHERE 1=CONTAINS(POINT(ra + 1, dec), {CONE})",
    f"SELECT ra FROM sphere.candidates WHERE 1=CONTAINS(POINT(dec, ra), {CONE})",
    "SELECT c.ra FROM sphere.candidates AS c, sphere.sequences AS s "
    f"WHERE 1=CONTAINS(POINT(c.ra, s.dec), {CONE})",
    # columns of a derived table, of a table without a stored point, correlated ones
    f"SELECT * FROM (SELECT ra, dec FROM sphere.candidates) AS d "
    f"WHERE 1=CONTAINS(POINT(d.ra, d.dec), {CONE})",
    f"SELECT s_ra FROM ivoa.obscore WHERE 1=CONTAINS(POINT(s_ra, s_dec), {CONE})",
    "SELECT s.ra FROM sphere.sequences AS s WHERE EXISTS (SELECT 1 FROM sphere.candidates "
    "AS c WHERE 1=CONTAINS(POINT(s.ra, s.dec), CIRCLE(c.ra, c.dec, 1)))",
])
def test_other_points_are_left_alone(adql):
    assert _sql(adql) == _sql(adql, points=False)


def test_grouped_select_list_keeps_the_expression():
    sql = _sql("SELECT ra, dec, COUNT(*) AS n FROM sphere.candidates "
               f"WHERE 1=CONTAINS(POINT(ra, dec), {CONE}) GROUP BY ra, dec "
               "HAVING MAX(DISTANCE(POINT(ra, dec), POINT(1, 2))) > 0")
    assert 'WHERE (pos @' in sql and 'max(degrees((spoint(radians(ra)' in sql


QUERIES = [
    "SELECT candidate_id, POINT('ICRS', ra, dec) AS p FROM sphere.candidates "
    "WHERE 1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, 2))",
    "SELECT s.sequence_id, c.candidate_id, DISTANCE(POINT(c.ra, c.dec), POINT(s.ra, s.dec)) "
    "AS d FROM sphere.candidates AS c JOIN sphere.sequences AS s "
    "ON 1=CONTAINS(POINT('ICRS', c.ra, c.dec), CIRCLE('ICRS', s.ra, s.dec, 0.01))",
    "SELECT arcfile FROM sphere.raw_files WHERE 1=INTERSECTS(POINT(ra, dec), "
    "CIRCLE('ICRS', {ra}, {dec}, 1))",
    "SELECT TOP 3 sequence_id FROM sphere.sequences "
    "ORDER BY DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {ra}, {dec})), sequence_id",
]


@pytest.fixture(scope='module')
def pool(database):
    pool = QueryPool(database, size=2)
    yield pool
    pool.close()


@pytest.fixture(scope='module')
def target(database, vo_archive):
    with database.connect() as conn:
        return conn.execute('SELECT ra, dec FROM sphere.sequences WHERE ra IS NOT NULL '
                            'ORDER BY sequence_id LIMIT 1').fetchone()


@pytest.mark.parametrize('adql', QUERIES)
def test_same_rows_with_pos(pool, target, adql):
    adql = adql.format(ra=target[0], dec=target[1])
    rows = []
    for points in (True, False):
        result = translate(adql, adql_metadata(), maxrec=1000,
                           points=point_columns() if points else None)
        rows.append(sorted(map(repr, pool.execute(result.sql, columns=result.columns,
                                                  maxrec=1000))))
    assert rows[0] == rows[1] and rows[0]


def _no_seqscan(conn):
    # Too few rows for the planner to want an index: sequential scans are discouraged,
    # so the plan shows whether an index can serve the query at all.
    conn.execute('SET LOCAL enable_seqscan = off')


def test_cone_search_uses_an_index_under_row_level_security(pool, target):
    for table in ('candidates', 'sequences', 'raw_files'):
        adql = (f"SELECT * FROM sphere.{table} WHERE 1=CONTAINS(POINT('ICRS', ra, dec), "
                f"CIRCLE('ICRS', {target[0]}, {target[1]}, 0.5))")
        plan = '\n'.join(row[0] for row in pool.execute(
            'EXPLAIN ' + _sql(adql), setup=_no_seqscan))
        # candidates: the HEALPix B-tree only (migration 0005); the others either
        assert f'ix_{table}_healpix_nest' in plan or (
            table != 'candidates' and f'ix_{table}_pos' in plan), plan


def test_healpix_ranges_need_no_leakproof_pg_sphere(pool, target, database):
    # The B-tree serves the cone even where pg_sphere's tests are not LEAKPROOF (a
    # PostgreSQL where spheredc is not superuser); restored by the rollback.
    def not_leakproof(conn):
        _no_seqscan(conn)
        conn.execute("""DO $$ DECLARE r record; BEGIN
          FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
                   JOIN pg_depend d ON d.objid = p.oid
                   JOIN pg_extension e ON e.oid = d.refobjid
                   WHERE e.extname = 'pg_sphere' AND p.proleakproof LOOP
            EXECUTE format('ALTER FUNCTION %s NOT LEAKPROOF', r.fn);
          END LOOP; END $$""")

    adql = ("SELECT * FROM sphere.candidates WHERE 1=CONTAINS(POINT('ICRS', ra, dec), "
            f"CIRCLE('ICRS', {target[0]}, {target[1]}, 0.5))")
    plan = '\n'.join(row[0] for row in pool.execute('EXPLAIN ' + _sql(adql),
                                                    setup=not_leakproof))
    assert 'ix_candidates_healpix_nest' in plan, plan


def test_migration_0004(database):
    with database.connect() as conn:
        names = [r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'sphere'")]
        leakproof = conn.execute(
            "SELECT proleakproof FROM pg_proc "
            "WHERE oid = 'spoint_contained_by_circle(spoint, scircle)'::regprocedure").fetchone()
        parallel = conn.execute("SELECT proparallel FROM pg_proc WHERE proname IN "
                                "('viewer_programmes', 'viewer_is_staff')").fetchall()
    assert not [n for n in names if n.endswith('_adql_point')]
    assert {'ix_sequences_pos', 'ix_raw_files_pos'} <= set(names)
    assert 'ix_candidates_pos' not in names  # 0005: the HEALPix B-tree serves cones
    assert leakproof == (True,)
    assert parallel == [('s',), ('s',)]  # the policies no longer forbid parallel plans


def test_policies_hold_in_parallel_plans(pool, database, vo_archive):
    # The viewer functions are PARALLEL SAFE now: with parallel plans forced, a
    # proprietary row is still hidden from others and shown to its programme.
    hidden, private = private_candidate(database, 'parallel_pi')

    def setup(conn):  # inside the query's transaction, rolled back with it
        private(conn)
        for setting in ('parallel_setup_cost = 0', 'parallel_tuple_cost = 0',
                        'min_parallel_table_scan_size = 0', 'force_parallel_mode = on'):
            conn.execute(f'SET LOCAL {setting}')

    sql = 'SELECT candidate_id FROM sphere.candidates LIMIT 1000'
    plan = '\n'.join(r[0] for r in pool.execute('EXPLAIN ' + sql, setup=setup))
    assert 'Gather' in plan, plan
    anonymous = [r[0] for r in pool.execute(sql, setup=setup)]
    with as_viewer('parallel_pi'):
        member = [r[0] for r in pool.execute(sql, setup=setup)]
    assert hidden not in anonymous and hidden in member
    assert len(member) == len(anonymous) + 1 == len(vo_archive['candidates'])


@pytest.mark.parametrize('ra, dec, radius', [(180, 0, 0.5), (0.1, 45, 2), (300, -89.5, 1),
                                             (45, 41.8, 0.05)])
def test_healpix_ranges_keep_every_row_of_the_cone(pool, ra, dec, radius):
    # 20,000 public rows (inserted in the query's transaction, rolled back), dense
    # around the cone's border, where a cover missing a pixel would lose rows.
    def rows(conn):
        conn.execute('SELECT setseed(0.42)')  # the same rows for both queries
        conn.execute(
            "INSERT INTO sphere.candidates (candidate_id, sequence_id, ra, dec) "
            "SELECT 'hp' || g, 'hp', degrees(atan2(sin(a) * sin(d) * cos(d0), "
            "  cos(d) - sin(d0) * sin(lat))) + %(ra)s, degrees(lat) "
            "FROM (SELECT g, a, d, d0, asin(sin(d0) * cos(d) + cos(d0) * sin(d) * cos(a)) AS lat"
            "      FROM (SELECT g, radians(random() * 360) AS a, "
            "                   radians(%(r)s * (0.98 + 0.04 * random())) AS d, "
            "                   radians(%(dec)s) AS d0 FROM generate_series(1, 20000) g) x) y",
            {'ra': ra, 'dec': dec, 'r': radius})

    adql = ("SELECT COUNT(*) FROM sphere.candidates WHERE candidate_id LIKE 'hp%' AND "
            f"1 = CONTAINS(POINT(ra, dec), CIRCLE({ra}, {dec}, {radius}))")
    counted = []
    for points in (True, False):
        sql = translate(adql, adql_metadata(), maxrec=10,
                        points=point_columns() if points else None).sql
        assert ('healpix_nest BETWEEN' in sql) == points
        counted.append(list(pool.execute(sql, setup=rows, maxrec=10))[0][0])
    assert counted[0] == counted[1] and 5000 < counted[0] < 15000
