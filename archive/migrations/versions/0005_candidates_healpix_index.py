"""candidates: cone searches read the HEALPix B-tree; the GiST index on pos is dropped

Cone searches (ADQL constant cones, Cone Search) now add the equivalent condition
on ``healpix_nest`` (`vo.healpix_ranges`), which its B-tree index serves under the
row-level security on any PostgreSQL (integer comparisons are LEAKPROOF). On
``sphere.candidates``, the table that grows to millions of rows, the GiST index of
``pos`` then serves nothing a reader can run: constant cones read the B-tree, and
cross-match joins could not use the GiST index under the policies anyway. It cost
most of a bulk load (about 9-13 s of the 13-17 s of 1,000,000 rows, in one process,
pg_sphere 1.1 having no sorted GiST build), so it is dropped. The smaller tables keep
theirs (their joins and polygon searches by the owner still use it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:00:00.000000
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.execute('DROP INDEX IF EXISTS sphere.ix_candidates_pos')


def downgrade():
    op.execute('CREATE INDEX IF NOT EXISTS ix_candidates_pos ON sphere.candidates '
               'USING gist (pos)')
