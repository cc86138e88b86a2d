"""VO fixtures: a loaded archive and a real server (gunicorn) on a free loopback port.

The archive is the small simulated night ingested through the command line,
plus synthetic products, candidates, spectra and detection limits written
here (the reduction engine that makes the real ones is another issue).
"""
import hashlib
import json
import os

import numpy as np
import pytest

from tests.conftest import run_cli, served

#: Synthetic products per sequence: (suffix, product_type, level, content type, frames).
PRODUCT_KINDS = (('cube', 'master_cube', 1, 'application/fits', 32),
                 ('image', 'final_image', 2, 'application/fits', 1),
                 ('snr', 'snr_map', 2, 'application/fits', 1),
                 ('contrast', 'contrast_curve', 2, 'application/fits', 1),
                 ('preview', 'preview', 2, 'image/png', 1))




def _write_file(folder, name, data):
    path = folder / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


def _fits_bytes(array):
    import io

    from astropy.io import fits

    buf = io.BytesIO()
    fits.PrimaryHDU(np.asarray(array, dtype=np.float32)).writeto(buf)
    return buf.getvalue()


def _spectrum_bytes(wl_um, flux):
    import io

    from astropy.table import Table

    buf = io.BytesIO()
    table = Table({'wavelength': wl_um, 'flux': flux})
    table['wavelength'].unit = 'um'
    table.write(buf, format='votable')
    return buf.getvalue()


def load_synthetic(database, products_dir):
    """Insert products, candidates, spectra and limits for every ingested sequence.

    Returns
    -------
    dict
        ``{'products': [...], 'candidates': [...], 'sequences': [...]}`` ids.
    """
    products_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    out = {'products': [], 'candidates': [], 'sequences': [], 'spectra': []}
    with database.connect() as conn:
        seqs = conn.execute("SELECT sequence_id, target_name, ra, dec, arm, ins_mode, filter, "
                            "mjd_start, mjd_end, prog_id FROM sphere.sequences "
                            "WHERE ra IS NOT NULL ORDER BY sequence_id").fetchall()
        raws = conn.execute('SELECT sequence_id, arcfile, checksum FROM sphere.raw_files '
                            'WHERE sequence_id IS NOT NULL').fetchall()
        calibs = conn.execute('SELECT sequence_id, role, arcfile, checksum '
                              'FROM sphere.calib_associations').fetchall()
        for i, (seq, target, ra, dec, arm, mode, filt, t0, t1, prog) in enumerate(seqs):
            out['sequences'].append(seq)
            ids = {}
            for suffix, ptype, level, ctype, frames in PRODUCT_KINDS:
                pid = f'{seq}_{suffix}_v1'
                ids[suffix] = pid
                data = (b'\x89PNG\r\n\x1a\n' + bytes(64)) if ctype == 'image/png' else \
                    _fits_bytes(rng.normal(size=(frames, 8, 8) if frames > 1 else (8, 8)))
                ext = 'png' if ctype == 'image/png' else 'fits'
                path, checksum, size = _write_file(products_dir, f'{pid}.{ext}', data)
                conn.execute(
                    'INSERT INTO sphere.products (product_id, product_type, level, sequence_id, '
                    'version, is_current, file_name, path, content_type, checksum, size_bytes, '
                    'target_name, ra, dec, arm, ins_mode, filter, '
                    'wavelength_min_um, wavelength_max_um, mjd_start, mjd_end, exptime_s, '
                    'fov_deg, pixscale_arcsec, n_frames, prog_id, release_date, parameters) '
                    "VALUES (%s, %s, %s, %s, 1, true, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "%s, %s, 1.5, 1.8, %s, %s, 640.0, 0.003, 0.01225, %s, %s, "
                    "'2020-01-01', %s)",
                    (pid, ptype, level, seq, path.name, path.name, ctype, checksum, size,
                     target, ra, dec, arm, mode, filt, t0, t1, frames, prog,
                     json.dumps({'ncomp': 5})))
                out['products'].append(pid)
            for raw_seq, arcfile, checksum in raws:
                if raw_seq == seq:
                    conn.execute("INSERT INTO sphere.product_inputs (product_id, input_kind, "
                                 "input_checksum, input_id, role) VALUES (%s, 'raw', %s, %s, "
                                 "'science')", (ids['cube'], checksum, arcfile))
            for cal_seq, role, arcfile, checksum in calibs:
                if cal_seq == seq:
                    conn.execute("INSERT INTO sphere.product_inputs (product_id, input_kind, "
                                 "input_checksum, input_id, role) VALUES (%s, 'raw', %s, %s, "
                                 "%s) ON CONFLICT DO NOTHING",
                                 (ids['cube'], checksum, arcfile, role))
            conn.execute("INSERT INTO sphere.product_inputs (product_id, input_kind, "
                         "input_checksum, input_id, role) VALUES (%s, 'product', 'x', %s, "
                         "'master_cube')", (ids['image'], ids['cube']))
            for k in range(2):
                cid = f'{seq}_c{k + 1}'
                sep, pa = 0.3 + 0.4 * k, 40.0 + 100 * k
                dra, ddec = sep * np.sin(np.radians(pa)), sep * np.cos(np.radians(pa))
                c_ra = ra + dra / 3600 / np.cos(np.radians(dec))
                c_dec = dec + ddec / 3600
                conn.execute(
                    'INSERT INTO sphere.candidates (candidate_id, sequence_id, product_id, '
                    'target_name, epoch_mjd, filter, algorithm, sep_arcsec, sep_err_arcsec, '
                    'pa_deg, pa_err_deg, dra_arcsec, ddec_arcsec, contrast_mag, '
                    'contrast_err_mag, snr, ra, dec, prog_id, release_date) '
                    "VALUES (%s, %s, %s, %s, %s, %s, 'pca_adi', %s, 0.004, %s, 0.3, %s, %s, "
                    "%s, 0.1, %s, %s, %s, %s, '2020-01-01')",
                    (cid, seq, ids['image'], target, t0, filt, sep, pa, dra, ddec,
                     11.0 + k, 9.0 - k, c_ra, c_dec, prog))
                out['candidates'].append(cid)
                # One spectrum per candidate (what SSA serves).
                spid = f'{cid}_spectrum_v1'
                wl = np.linspace(0.95, 1.65, 39)
                path, checksum, size = _write_file(
                    products_dir, f'{spid}.xml', _spectrum_bytes(wl, np.exp(-wl)))
                conn.execute(
                    'INSERT INTO sphere.products (product_id, product_type, level, sequence_id, '
                    'version, is_current, file_name, path, content_type, checksum, size_bytes, '
                    'target_name, ra, dec, arm, filter, wavelength_min_um, wavelength_max_um, '
                    'mjd_start, mjd_end, exptime_s, n_frames, prog_id, release_date) '
                    "VALUES (%s, 'spectrum', 2, %s, 1, true, %s, %s, "
                    "'application/x-votable+xml', %s, %s, %s, %s, %s, %s, %s, 0.95, 1.65, "
                    "%s, %s, 640.0, 1, %s, '2020-01-01')",
                    (spid, seq, path.name, path.name, checksum, size, target, c_ra, c_dec, arm,
                     filt, t0, t1, prog))
                out['spectra'].append(spid)
            for sep in (0.2, 0.5, 1.0):
                conn.execute(
                    'INSERT INTO sphere.detection_limits (sequence_id, filter, algorithm, '
                    'product_id, target_name, sep_arcsec, contrast_5sigma, contrast_mag_5sigma, '
                    "throughput, prog_id, release_date) VALUES (%s, %s, 'pca_adi', %s, %s, %s, "
                    "%s, %s, 0.5, %s, '2020-01-01')",
                    (seq, filt or 'none', ids['contrast'], target, sep, 10 ** (-4 - sep),
                     2.5 * (4 + sep), prog))
        conn.commit()
    return out


@pytest.fixture(scope='session')
def database(tmp_path_factory, spheredc_home):
    """The VO tests' own archive (overrides the session one).

    They count rows (ObsCore, SIA2 ...): the reduction tests' products in a shared
    archive would change those counts.
    """
    from archive.config import Settings
    from archive.db import Database

    db = Database(Settings(home=tmp_path_factory.mktemp('vo_home')))
    db.ensure_ready()
    yield db
    db.engine.dispose()
    db.cluster.stop()


def _env(database):
    return dict(os.environ, SPHEREDC_HOME=str(database.settings.home))


@pytest.fixture(scope='session')
def vo_archive(database, small_night):
    """The database with the small night ingested and synthetic reduced data."""
    folder, truth = small_night
    proc = run_cli('ingest', folder, '--json', env=_env(database))
    assert proc.returncode in (0, 3), proc.stderr
    return load_synthetic(database, database.settings.products_dir)


@pytest.fixture(scope='session')
def vo_server(vo_archive, database):
    """Base URL of ``spheredc serve`` (gunicorn) on a free port, stopped at the end."""
    with served(_env(database), os.path.join(database.settings.home, 'serve.log'),
                '--workers', '2', '--async-workers', '2') as url:
        yield url


def private_candidate(database, member):
    """A candidate made proprietary, and ``member`` made PI of its programme, for one query.

    Returns
    -------
    hidden : str
        The candidate's id.
    setup : callable
        ``setup(conn)`` for `vo.query.QueryPool.execute`: runs inside the query's
        transaction and is rolled back with it.
    """
    with database.connect() as conn:
        hidden, = conn.execute('SELECT candidate_id FROM sphere.candidates '
                               'WHERE prog_id IS NOT NULL ORDER BY 1 LIMIT 1').fetchone()

    def setup(conn):
        conn.execute("UPDATE sphere.candidates SET release_date = now() + interval '1 year' "
                     'WHERE candidate_id = %s', (hidden,))
        conn.execute("INSERT INTO accounts.users (username, password_hash) VALUES (%s, 'x')",
                     (member,))
        conn.execute("INSERT INTO accounts.memberships (username, prog_id, role) "
                     "SELECT %s, prog_id, 'PI' FROM sphere.candidates "
                     'WHERE candidate_id = %s', (member, hidden))
    return hidden, setup
