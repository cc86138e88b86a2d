"""pyvo end to end: TAP (sync, async, upload, tables, examples, overflow), SCS, SIA2, SSA,
DataLink from an ObsCore row."""
import numpy as np
import pytest
import pyvo
from astropy.table import Table


def test_tap_sync_tables_examples(vo_server, vo_archive):
    tap = pyvo.dal.TAPService(vo_server + '/tap')
    result = tap.run_sync('SELECT candidate_id, sep_arcsec FROM sphere.candidates')
    assert sorted(result.to_table()['candidate_id']) == sorted(vo_archive['candidates'])
    names = [t.name for t in tap.tables]
    assert 'ivoa.obscore' in names and 'sphere.candidates' in names
    assert 'sep_arcsec' in [c.name for c in tap.tables['sphere.candidates'].columns]
    examples = tap.examples
    assert len(examples) == 5 and all(ex['QUERY'] for ex in examples)
    assert tap.maxrec == 20000 and tap.hardlimit == 5_000_000
    assert 'ADQL' in [lang.name for lang in tap.capabilities[0].languages]


def test_tap_maxrec_overflow(vo_server):
    tap = pyvo.dal.TAPService(vo_server + '/tap')
    result = tap.run_sync('SELECT column_name FROM tap_schema.columns', maxrec=4)
    assert len(result) == 4 and result.status[0] == 'OVERFLOW'
    # below the service's own limit pyvo warns (hard limit 5e6 > 195 rows: no overflow)
    assert tap.run_sync('SELECT column_name FROM tap_schema.columns').status[0] == 'OK'


def test_tap_async_wait_fetch_delete(vo_server):
    tap = pyvo.dal.TAPService(vo_server + '/tap')
    job = tap.submit_job('SELECT table_name FROM tap_schema.tables')
    job.run()
    job.wait(phases=['COMPLETED', 'ERROR', 'ABORTED'], timeout=30)
    assert job.phase == 'COMPLETED'
    assert len(job.fetch_result().to_table()) == 11
    job.delete()
    result = tap.run_async('SELECT TOP 3 column_name FROM tap_schema.columns')
    assert len(result) == 3


def test_tap_upload_join(vo_server, vo_archive):
    tap = pyvo.dal.TAPService(vo_server + '/tap')
    mine = Table({'cid': vo_archive['candidates'][:2], 'w': np.array([1.0, 2.0])})
    result = tap.run_sync('SELECT c.candidate_id, u.w FROM sphere.candidates AS c '
                          'JOIN TAP_UPLOAD.mine AS u ON c.candidate_id = u.cid',
                          uploads={'mine': mine}).to_table()
    assert sorted(result['candidate_id']) == sorted(vo_archive['candidates'][:2])


def test_scs(vo_server, database):
    with database.connect() as conn:
        ra, dec = conn.execute('SELECT ra, dec FROM sphere.candidates LIMIT 1').fetchone()
    scs = pyvo.dal.SCSService(vo_server + '/scs/candidates')
    result = scs.search(pos=(ra, dec), radius=1 / 3600)
    assert len(result) >= 1
    rec = result[0]
    assert rec.pos.ra.deg == pytest.approx(ra, abs=1e-3) and rec.id
    assert len(scs.search(pos=(ra, dec), radius=1 / 3600, verbosity=1).fieldnames) == 3
    assert len(pyvo.dal.SCSService(vo_server + '/scs/sequences').search(
        pos=(ra, dec), radius=0.01)) >= 1


def test_sia2(vo_server, database):
    with database.connect() as conn:
        ra, dec = conn.execute("SELECT ra, dec FROM sphere.products "
                               "WHERE product_type = 'final_image' LIMIT 1").fetchone()
    sia = pyvo.dal.SIA2Service(vo_server + '/sia')
    result = sia.search(pos=(ra, dec, 0.01), calib_level=3)
    assert len(result) >= 1 and all(r.dataproduct_type == 'image' for r in result)
    assert all(r.calib_level == 3 for r in result)
    assert len(sia.search(pos=(ra, dec, 0.01), band=(1e-6, 1.2e-6))) == 0  # filter is 1.5-1.8


def test_ssa(vo_server, vo_archive, database):
    with database.connect() as conn:
        ra, dec = conn.execute('SELECT ra, dec FROM sphere.candidates LIMIT 1').fetchone()
    ssa = pyvo.dal.SSAService(vo_server + '/ssa')
    result = ssa.search(pos=(ra, dec), diameter=0.01)
    assert len(result) >= 1
    rec = result[0]
    assert rec.acref.startswith(vo_server + '/files/product/')
    spectrum = Table.read(rec.getdataurl(), format='votable')
    assert len(spectrum) == 39 and spectrum['wavelength'].unit == 'um'


def test_datalink_from_obscore(vo_server):
    tap = pyvo.dal.TAPService(vo_server + '/tap')
    rows = tap.run_sync("SELECT * FROM ivoa.obscore WHERE dataproduct_subtype = 'final_image'")
    assert len(rows) == 3
    links = next(rows.iter_datalinks())
    semantics = {link.semantics for link in links}
    assert {'#this', '#preview', '#auxiliary', '#progenitor'} <= semantics
    # (bysemantics would fetch the IVOA vocabulary from the network)
    this = [link for link in links if link.semantics == '#this'][0]
    assert this.content_type == 'application/fits'
    from astropy.io import fits
    with fits.open(this.getdataurl()) as hdul:
        assert hdul[0].data.shape == (8, 8)
