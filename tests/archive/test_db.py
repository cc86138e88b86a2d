"""The embedded cluster, the external-database path and the generated schema."""
import os
import socket

import pytest

from archive.db import SCHEMA_REVISION, Database
from archive.exceptions import SchemaError
from archive.schema import load_tables, metadata


def test_embedded_cluster_runs_unprivileged_on_a_socket(database):
    cluster = database.cluster
    assert cluster.is_running()
    pid = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
    server_uid = os.stat(f"/proc/{pid}").st_uid
    assert server_uid != 0, "the server must never run as root"
    if os.geteuid() != 0:
        assert server_uid == os.geteuid()
    assert (cluster.socket_dir / ".s.PGSQL.5432").exists()
    assert cluster.tcp_port() is None
    with socket.socket() as s:  # nothing listens on the default TCP port for us
        listening = s.connect_ex(("127.0.0.1", 5432)) == 0
    with database.connect() as conn:
        addr = conn.execute("SELECT current_setting('listen_addresses')").fetchone()[0]
    assert addr == ""
    assert not listening or addr == ""


def test_pg_sphere_and_schema_are_there(database):
    with database.connect() as conn:
        ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_sphere'"
                           ).fetchone()
        assert ext is not None
        got = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'sphere'")}
        assert {"raw_files", "sequences", "calib_associations", "quarantine"} <= got
        rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        assert rev == SCHEMA_REVISION


def test_migrations_match_the_schema_files(database):
    from alembic.script import ScriptDirectory

    from archive.migrate import alembic_config, pending_changes

    assert ScriptDirectory.from_config(alembic_config(database)).get_current_head() == \
        SCHEMA_REVISION
    assert pending_changes(database) == []


def test_every_declared_column_exists_with_its_comment(database):
    with database.connect() as conn:
        for tdef in load_tables().values():
            if tdef.kind == "view":
                continue
            rows = dict(conn.execute(
                "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                (tdef.qualified_name,)).fetchall())
            for col in tdef.columns:
                assert col.name in rows, f"{tdef.qualified_name}.{col.name}"
                assert rows[col.name] == col.description


def test_cone_search_uses_the_gist_index(database):
    with database.connect() as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT * FROM sphere.raw_files "
            "WHERE pos @ scircle(spoint(radians(10), radians(-20)), radians(0.1))"))
    assert "ix_raw_files_pos" in plan


def test_spoint_column_is_computed_from_ra_dec(database):
    with database.connect() as conn, conn.transaction(force_rollback=True):
        conn.execute("INSERT INTO sphere.quarantine (file_name, checksum, reason_code, reason) "
                     "VALUES ('x', 'c0', 'not_fits', 'test')")
        row = conn.execute(
            "INSERT INTO sphere.sequences (sequence_id, arm, night, ra, dec) "
            "VALUES ('T', 'IRDIS', '2025-01-01', 150.0, -30.0) "
            "RETURNING degrees(long(pos)), degrees(lat(pos))").fetchone()
        assert row == pytest.approx((150.0, -30.0))


def test_healpix_column_agrees_with_healpy(database):
    import healpy
    import numpy as np

    rng = np.random.default_rng(3)
    ra = rng.uniform(0, 360, 200)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 200)))
    with database.connect() as conn, conn.transaction(force_rollback=True):
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO sphere.sequences (sequence_id, arm, night, ra, dec) "
                            "VALUES (%s, 'IRDIS', '2025-01-01', %s, %s)",
                            [(f"H{i}", float(a), float(d)) for i, (a, d) in enumerate(zip(ra, dec))])
        stored = dict(conn.execute("SELECT sequence_id, healpix_nest FROM sphere.sequences "
                                   "WHERE sequence_id LIKE 'H%%'").fetchall())
    ours = healpy.ang2pix(2 ** 29, ra, dec, nest=True, lonlat=True)
    got = np.array([stored[f"H{i}"] for i in range(len(ra))])
    assert np.array_equal(got >> 20, ours >> 20)  # same cell at order 19 (0.4 arcsec)
    assert np.mean(got == ours) >= 0.98  # equal but for float rounding at cell edges


def test_external_database_by_url(external_database):
    db = external_database
    assert db.cluster is None
    db.ensure_ready()
    with db.connect() as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == \
            SCHEMA_REVISION
        assert conn.execute("SELECT inet_server_port()").fetchone()[0] is not None  # TCP


def test_bad_external_url_gives_a_clear_error(tmp_path):
    from archive.config import Settings
    from archive.exceptions import DatabaseUnavailable

    db = Database(Settings(home=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/x"))
    with pytest.raises(DatabaseUnavailable, match="cannot connect"):
        db.ensure_ready()


@pytest.mark.parametrize("text, message", [
    ("schema: s\nname: t\ncolumns:\n  - {name: a, type: varchar}\n", "type must be one of"),
    ("schema: s\nname: t\ncolumns:\n  - {name: a, type: text, colour: red}\n", "unknown keys"),
    ("schema: s\nname: t\nprimary_key: [b]\ncolumns:\n  - {name: a, type: text}\n",
     "not declared"),
    ("- just a list\n", "must be a mapping"),
])
def test_malformed_schema_files_are_refused(tmp_path, text, message):
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(SchemaError, match=message):
        load_tables.__wrapped__(tmp_path)


def test_metadata_has_spoint_and_healpix_indexes():
    md = metadata()
    for name in ("sphere.raw_files", "sphere.sequences"):
        table = md.tables[name]
        index_cols = {tuple(c.name for c in ix.columns) for ix in table.indexes}
        assert table.c.healpix_nest.computed is not None
        assert ("pos",) in index_cols and ("healpix_nest",) in index_cols
