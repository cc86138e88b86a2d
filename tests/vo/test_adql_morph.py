"""Passes 4-5: (ADQL, expected SQL) pairs, with no database."""
import pytest

from vo.adql import ADQLTranslationError, to_sql, translate

PAIRS = [
    ('SELECT TOP 10 ra FROM t', 'SELECT ra FROM t LIMIT 10'),
    ('SELECT DISTINCT a FROM t OFFSET 5', 'SELECT DISTINCT a FROM t OFFSET 5'),
    ('SELECT ALL a FROM t', 'SELECT a FROM t'),
    ('SELECT dec, "Select", "distance" FROM t', 'SELECT "dec", "Select", "distance" FROM t'),
    ('SELECT t.*, x AS "My X" FROM s.t', 'SELECT t.*, x AS "My X" FROM s.t'),
    ("SELECT * FROM t WHERE 1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 20, 1))",
     'SELECT * FROM t WHERE (spoint(radians(ra), radians("dec")) @ '
     'scircle(spoint(radians(10), radians(20)), radians(1)))'),
    ("SELECT * FROM t WHERE CONTAINS(POINT(ra, dec), CIRCLE(ra2, dec2, 1)) = 1",
     'SELECT * FROM t WHERE (spoint(radians(ra), radians("dec")) @ '
     'scircle(spoint(radians(ra2), radians(dec2)), radians(1)))'),
    ("SELECT * FROM t WHERE 0=CONTAINS(p, CIRCLE(POINT(1, 2), 3))",
     'SELECT * FROM t WHERE NOT (p @ scircle(spoint(radians(1), radians(2)), radians(3)))'),
    ("SELECT CONTAINS(p, c) AS inside FROM t", 'SELECT CAST((p @ c) AS integer) AS inside FROM t'),
    ("SELECT * FROM t WHERE 1=INTERSECTS(s_region, CIRCLE('', 1, 2, 3))",
     'SELECT * FROM t WHERE (s_region && scircle(spoint(radians(1), radians(2)), radians(3)))'),
    ("SELECT * FROM t WHERE 1=INTERSECTS(CIRCLE('', 1, 2, 3), POINT('', ra, dec))",
     'SELECT * FROM t WHERE (spoint(radians(ra), radians("dec")) @ '
     'scircle(spoint(radians(1), radians(2)), radians(3)))'),
    ("SELECT DISTANCE(POINT('', 1, 2), p), DISTANCE(1, 2, 3, 4) FROM t",
     'SELECT degrees((spoint(radians(1), radians(2)) <-> p)), '
     'degrees((spoint(radians(1), radians(2)) <-> spoint(radians(3), radians(4)))) FROM t'),
    ("SELECT AREA(c), COORD1(p), COORD2(p), CENTROID(c), COORDSYS(p) FROM t",
     "SELECT degrees(degrees(area(c))), degrees(long(p)), degrees(lat(p)), center(c), "
     "'ICRS' FROM t"),
    ("SELECT POLYGON('', 0, 80, 90, 80, 180, 80) FROM t",
     "SELECT spoly '{(0.0d,80.0d),(90.0d,80.0d),(180.0d,80.0d)}' FROM t"),
    ("SELECT BOX('', 10, 20, 2, 4) FROM t",
     "SELECT spoly '{(9.0d,18.0d),(9.0d,22.0d),(11.0d,22.0d),(11.0d,18.0d)}' FROM t"),
    ("SELECT REGION('Circle ICRS 10 20 1') FROM t",
     "SELECT scircle '<(10.0d, 20.0d), 1.0d>' FROM t"),
    ("SELECT CAST('12.3 45.6' AS POINT), CAST(a AS DOUBLE PRECISION), CAST(b AS VARCHAR(3)) "
     "FROM t", "SELECT spoint '(12.3d, 45.6d)', CAST(a AS double precision), "
     "CAST(b AS varchar(3)) FROM t"),
    ('SELECT LOG(x), LOG10(x), TRUNCATE(x), TRUNCATE(x, 2), ROUND(x, 1), MOD(a, 3), RAND() '
     'FROM t', 'SELECT ln(x), log(x), trunc(x), trunc(CAST(x AS numeric), 2), '
     'round(CAST(x AS numeric), 1), mod(CAST(a AS numeric), CAST(3 AS numeric)), random() '
     'FROM t'),
    ('SELECT ATAN2(y, x), CEILING(x), POWER(x, 2), PI(), ABS(-x) FROM t',
     'SELECT atan2(y, x), ceiling(x), power(x, 2), pi(), abs(-x) FROM t'),
    ("SELECT a || 'b', 0xFF, 1e-5, a & 3, a ^ b, ~a FROM t",
     "SELECT a || 'b', 255, 1e-5, a & 3, a # b, ~a FROM t"),
    ('SELECT (a + b) * c, a - (b - c), - -1 FROM t',
     'SELECT (a + b) * c, a - (b - c), -(-1) FROM t'),
    ("SELECT * FROM t WHERE name ILIKE 'ngc%' AND x NOT BETWEEN 1 AND 2 "
     "AND y NOT IN (1, 2) AND z IS NOT NULL",
     "SELECT * FROM t WHERE name ILIKE 'ngc%' AND x NOT BETWEEN 1 AND 2 AND y NOT IN (1, 2) "
     "AND z IS NOT NULL"),
    ('SELECT * FROM a NATURAL JOIN b LEFT JOIN c USING (x) RIGHT OUTER JOIN d ON a.x = d.x',
     'SELECT * FROM a NATURAL INNER JOIN b LEFT OUTER JOIN c USING (x) '
     'RIGHT OUTER JOIN d ON a.x = d.x'),
    ('SELECT * FROM a JOIN b', 'SELECT * FROM a CROSS JOIN b'),
    ('SELECT * FROM a CROSS JOIN b FULL JOIN c', 'SELECT * FROM a CROSS JOIN b FULL OUTER JOIN c '
     'ON TRUE'),
    ('SELECT * FROM a INNER JOIN (b JOIN c USING (x)) USING (y)',
     'SELECT * FROM a INNER JOIN (b INNER JOIN c USING (x)) USING (y)'),
    ('SELECT x FROM a WHERE x IN (SELECT y FROM b) AND EXISTS (SELECT 1 FROM c)',
     'SELECT x FROM a WHERE x IN (SELECT y FROM b) AND EXISTS (SELECT 1 FROM c)'),
    ('SELECT (SELECT MAX(y) FROM b) AS m FROM (SELECT * FROM a) AS q',
     'SELECT (SELECT max(y) FROM b) AS m FROM (SELECT * FROM a) AS q'),
    ('SELECT a, COUNT(DISTINCT b) FROM t GROUP BY a HAVING COUNT(*) > 1 ORDER BY 2 DESC, a',
     'SELECT a, count(DISTINCT b) FROM t GROUP BY a HAVING count(*) > 1 ORDER BY 2 DESC, a'),
    ('SELECT a FROM t UNION ALL SELECT a FROM u ORDER BY a',
     '(SELECT a FROM t) UNION ALL (SELECT a FROM u) ORDER BY a'),
    ('SELECT TOP 3 a FROM t EXCEPT SELECT a FROM u INTERSECT SELECT a FROM v',
     '(SELECT a FROM t LIMIT 3) EXCEPT ((SELECT a FROM u) INTERSECT (SELECT a FROM v))'),
    ('WITH c (x) AS (SELECT a FROM t) SELECT x FROM c',
     'WITH c (x) AS (SELECT a FROM t) SELECT x FROM c'),
    ("SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END, COALESCE(a, 0), NULLIF(a, 1) FROM t",
     "SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END, coalesce(a, 0), nullif(a, 1) FROM t"),
    ('SELECT ivo_healpix_index(6, ra, dec) FROM t',
     'SELECT ivo_healpix_index(6, ra, "dec") FROM t'),
    ('SELECT ivo_string_agg(name, \',\') FROM t', "SELECT string_agg(name, ',') FROM t"),
    ("SELECT 'it''s' FROM t", "SELECT 'it''s' FROM t"),
]


@pytest.mark.parametrize('adql, sql', PAIRS)
def test_morph_pairs(adql, sql):
    assert to_sql(adql) == sql


@pytest.mark.parametrize('adql, maxrec, limit', [
    ('SELECT a FROM t', 100, 'LIMIT 101'),
    ('SELECT TOP 5 a FROM t', 100, 'LIMIT 5'),
    ('SELECT TOP 500 a FROM t', 100, 'LIMIT 101'),
    ('(SELECT a FROM t) UNION (SELECT a FROM u)', 9, 'LIMIT 10'),
])
def test_maxrec(adql, maxrec, limit):
    assert translate(adql, maxrec=maxrec).sql.endswith(limit)


def test_warnings_for_ignored_frames_and_seeds():
    t = translate("SELECT POINT('GALACTIC', 1, 2), RAND(3) FROM t")
    assert any('GALACTIC' in w for w in t.warnings)
    assert any('seed' in w for w in t.warnings)


def test_compound_regions_are_refused_clearly():
    with pytest.raises(ADQLTranslationError, match='STC-S'):
        to_sql("SELECT * FROM t WHERE 1=CONTAINS(p, REGION('NOT (Circle 1 2 3)'))")


def test_unknown_unit_is_refused():
    with pytest.raises(ADQLTranslationError, match='not a unit'):
        to_sql("SELECT IN_UNIT(a, 'furlongs_per_bogus') FROM t")
