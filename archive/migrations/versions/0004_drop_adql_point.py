"""vo: ADQL points read the pos columns; pg_sphere point tests leakproof

The ADQL translator now writes ``POINT('ICRS', t.ra, t.dec)`` as ``t.pos`` on the
tables that store their position (``sky_position`` in ``schemas/``), so the GiST
indexes on the expression ``spoint(radians(ra), radians(dec))`` of 0002 duplicate
the ones on ``pos``: they are dropped (a 1,000,000-row load builds one GiST index
instead of two).

Under the row-level security of 0003, PostgreSQL uses an index for a condition on a
protected table only when the operator's function is LEAKPROOF (it must not be able to
reveal rows the policy hides); otherwise every cone search reads the whole table. The
pg_sphere functions behind the operators of its point GiST operator class (a point in
a circle, polygon, box, ellipse, line or path, and their commuted forms) compare two
values and return a boolean, without side effects or errors, so they are marked
LEAKPROOF. Only a superuser may do so: elsewhere a warning says what is lost.

The two functions the policies of 0003 call to know the viewer were PARALLEL UNSAFE
(the default), which kept every query of the reader role off parallel plans (a
COUNT(*) over 1,000,000 rows took twice as long as the owner's). They only read
tables and a setting that parallel workers share, and they run once per query (as
InitPlans, in the leader): they are PARALLEL SAFE.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 07:10:00.000000
"""
from alembic import op

#: The tables of 0002 that had an expression index for ADQL's POINT(ra, dec).
SKY_TABLES = ('raw_files', 'sequences', 'candidates', 'products')

# The functions of the operators of the GiST operator family of spoint, and of their
# commutators, found in the catalogue (whatever pg_sphere version is installed).
_POINT_TESTS = """
  SELECT DISTINCT p.oid::regprocedure AS fn
  FROM pg_amop a
  JOIN pg_opfamily f ON f.oid = a.amopfamily
  JOIN pg_am m ON m.oid = f.opfmethod AND m.amname = 'gist'
  JOIN pg_operator o ON o.oid = a.amopopr
  LEFT JOIN pg_operator c ON c.oid = o.oprcom
  JOIN pg_proc p ON p.oid IN (o.oprcode, c.oprcode)
  WHERE f.opfname = 'spoint' AND a.amoppurpose = 's'
"""


def _set_leakproof(flag):
    op.execute(f"""
DO $$
DECLARE r record;
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE WARNING 'spheredc: not a superuser, pg_sphere point tests not marked {flag}: '
      'under row-level security, cone searches will not use the GiST indexes';
    RETURN;
  END IF;
  FOR r IN {_POINT_TESTS} LOOP
    EXECUTE format('ALTER FUNCTION %s {flag}', r.fn);
  END LOOP;
END $$""")


#: Functions of the row-level security policies of 0003.
VIEWER_FUNCTIONS = ('sphere.viewer_programmes()', 'sphere.viewer_is_staff()')

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    for table in SKY_TABLES:
        op.execute(f'DROP INDEX IF EXISTS sphere.ix_{table}_adql_point')
    _set_leakproof('LEAKPROOF')
    for function in VIEWER_FUNCTIONS:
        op.execute(f'ALTER FUNCTION {function} PARALLEL SAFE')


def downgrade():
    for function in VIEWER_FUNCTIONS:
        op.execute(f'ALTER FUNCTION {function} PARALLEL UNSAFE')
    _set_leakproof('NOT LEAKPROOF')
    for table in SKY_TABLES:
        op.execute(f'CREATE INDEX IF NOT EXISTS ix_{table}_adql_point ON sphere.{table} '
                   'USING gist (spoint(radians(ra), radians("dec")))')
