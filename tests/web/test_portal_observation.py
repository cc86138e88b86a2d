"""The observation page of a real server: summary, calibration words, pictures, tables,
provenance and the streamed zip; and the zip stream itself (pure)."""
import csv
import hashlib
import html
import io
import re
import zipfile

import pytest
import requests

from web.portal import pictures
from web.portal.zipstream import stream_zip


# --- the zip stream, without a server
def test_stream_zip_round_trip(tmp_path):
    big = tmp_path / 'big.fits'
    big.write_bytes(bytes(range(256)) * 20_000)  # 5 MB, several chunks
    small = tmp_path / 'small.png'
    small.write_bytes(b'\x89PNG small')
    chunks = list(stream_zip([('obs/big.fits', big), ('obs/small.png', small),
                              ('obs/MANIFEST', b'made here\n')], chunk_bytes=1 << 20))
    # Streamed: no chunk holds the whole archive.
    assert max(len(c) for c in chunks) < 2 * (1 << 20)
    with zipfile.ZipFile(io.BytesIO(b''.join(chunks))) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ['obs/big.fits', 'obs/small.png', 'obs/MANIFEST']
        assert zf.read('obs/big.fits') == big.read_bytes()
        assert zf.read('obs/MANIFEST') == b'made here\n'


def test_read_image_and_spectrum(tmp_path):
    import numpy as np
    from astropy.io import fits
    from astropy.table import Table

    from web.portal.productfiles import read_image, read_spectrum

    cube = np.arange(2 * 3 * 4, dtype='>f8').reshape(2, 3, 4)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube, name='SCI')]).writeto(
        tmp_path / 'cube.fits')
    data, header = read_image(tmp_path / 'cube.fits')
    assert data.dtype == np.float32 and data.shape == (3, 4)
    assert (data == cube[0]).all() and header['EXTNAME'] == 'SCI'
    Table({'WAVELENGTH_UM': [1.0, 1.1], 'CONTRAST': [1e-5, 2e-5]}).write(
        tmp_path / 'spec.fits')
    wl, contrast, err = read_spectrum(tmp_path / 'spec.fits')
    assert list(wl) == [1.0, 1.1] and list(contrast) == [1e-5, 2e-5] and err is None
    Table({'flux': [1.0]}).write(tmp_path / 'bad.fits')
    with pytest.raises(ValueError):
        read_spectrum(tmp_path / 'bad.fits')
    fits.PrimaryHDU().writeto(tmp_path / 'empty.fits')
    with pytest.raises(ValueError):
        read_image(tmp_path / 'empty.fits')


# --- the pages
def _text(html_text):
    """The visible text of a page, whitespace collapsed, entities decoded."""
    return re.sub(r'\s+', ' ', html.unescape(re.sub(r'<[^>]+>', ' ', html_text)))


@pytest.fixture(scope='module')
def seq_id(portal_archive):
    """A public IRDIS sequence that has candidates and detection limits.

    IRDIS: its master cube is made from our own calibration products, which the
    provenance must list (IFS cubes come calibrated by the ESO pipeline).
    """
    rows = portal_archive.query(
        "SELECT s.sequence_id FROM sphere.sequences s WHERE s.arm = 'IRDIS' "
        'AND s.sequence_id = ANY(%s) '
        'AND EXISTS (SELECT 1 FROM sphere.candidates c WHERE c.sequence_id = s.sequence_id) '
        'AND EXISTS (SELECT 1 FROM sphere.detection_limits d '
        '            WHERE d.sequence_id = s.sequence_id) ORDER BY 1',
        (portal_archive.public_sequence_ids,))
    assert rows, 'the small night should have a public sequence with candidates'
    return rows[0][0]


@pytest.fixture(scope='module')
def page(portal_server, seq_id):
    resp = requests.get(f'{portal_server}/observation/{seq_id}', timeout=60)
    assert resp.status_code == 200
    return resp.text


def test_summary(page, portal_archive, seq_id):
    (target, night, arm, mode, filt, coro, seeing, rotation), = portal_archive.query(
        'SELECT target_name, night, arm, ins_mode, filter, coronagraph, seeing_arcsec, '
        'field_rotation_deg FROM sphere.sequences WHERE sequence_id = %s', (seq_id,))
    text = _text(page)
    for value in (target, night, arm, mode, filt, coro, f'{seeing:.2f}″', f'{rotation:.1f}°'):
        assert value in text, value
    # DIT x NDIT of the science files, from the raw files.
    for dit, ndit, n in portal_archive.query(
            "SELECT dit, ndit, count(*) FROM sphere.raw_files WHERE sequence_id = %s AND "
            "dpr_type = 'OBJECT' GROUP BY dit, ndit", (seq_id,)):
        assert f'OBJECT: {n} file{"" if n == 1 else "s"} of DIT {dit:g} s × NDIT {ndit}' in text
    airmass = portal_archive.query("SELECT min(airmass) FROM sphere.raw_files WHERE "
                                   "sequence_id = %s AND dpr_type = 'OBJECT'", (seq_id,))[0][0]
    assert f'airmass {airmass:.2f}' in text


def test_calibration_in_words(portal_server, portal_archive, seq_id, page):
    from ingest.words import describe_flag, describe_missing, describe_warning

    for sid in portal_archive.public_sequence_ids:
        (missing, warnings, flags, status), = portal_archive.query(
            'SELECT missing_calibrations, calib_warnings, quality_flags, calib_status '
            'FROM sphere.sequences WHERE sequence_id = %s', (sid,))
        text = page if sid == seq_id else requests.get(
            f'{portal_server}/observation/{sid}', timeout=60).text
        section = _text(re.search(r'<section id="calibration".*?</section>', text, re.S).group(0))
        words = [describe_missing(m) for m in missing] + [describe_warning(w) for w in warnings]
        words += [describe_flag(f) for f in flags]
        for sentence in words:
            assert sentence in section, (sid, sentence)
        if status == 'not_required':
            assert 'No calibration is needed' in section
        elif status == 'complete_with_warnings':
            assert 'with a reservation' in section


def _png(portal_server, path):
    resp = requests.get(portal_server + path, timeout=120)
    assert resp.status_code == 200, (path, resp.status_code)
    assert resp.headers['Content-Type'] == 'image/png'
    assert resp.headers['Cache-Control'].startswith('private')
    return resp.content


def test_pictures(portal_server, portal_archive, seq_id, page):
    filters = [r[0] for r in portal_archive.query(
        "SELECT filter FROM sphere.products WHERE sequence_id = %s AND "
        "product_type = 'final_image' AND is_current ORDER BY filter", (seq_id,))]
    assert filters
    for filt in filters:
        for leaf in ('image.png', 'snr.png'):
            path = f'/observation/{seq_id}/{leaf}?filter={filt}'
            assert html.escape(path) in page or path in page
            assert pictures.png_size(_png(portal_server, path)) == pictures.IMAGE_SIZE_PX
    assert pictures.png_size(_png(portal_server, f'/observation/{seq_id}/contrast.png')) == \
        pictures.CONTRAST_SIZE_PX
    # Rendered once, kept under $SPHEREDC_HOME/cache/pictures keyed on the checksum.
    pid, checksum = portal_archive.query(
        "SELECT product_id, checksum FROM sphere.products WHERE sequence_id = %s AND "
        "product_type = 'final_image' AND filter = %s AND is_current", (seq_id, filters[0]))[0]
    cache = portal_archive.database.settings.home / 'cache' / 'pictures'
    assert [p for p in cache.iterdir() if p.name.startswith(f'{pid}-{checksum}')]
    again = _png(portal_server, f'/observation/{seq_id}/image.png?filter={filters[0]}')
    assert again == _png(portal_server, f'/observation/{seq_id}/image.png?filter={filters[0]}')
    resp = requests.get(f'{portal_server}/observation/{seq_id}/image.png?filter=NOPE', timeout=30)
    assert resp.status_code == 404


def test_contrast_tables(portal_server, portal_archive, seq_id, page):
    from astropy.io.votable import parse_single_table

    assert f'/observation/{seq_id}/contrast.csv' in page
    truth = portal_archive.query('SELECT filter, count(*) FROM sphere.detection_limits '
                                 'WHERE sequence_id = %s GROUP BY filter', (seq_id,))
    resp = requests.get(f'{portal_server}/observation/{seq_id}/contrast.csv', timeout=30)
    assert resp.status_code == 200 and resp.headers['Content-Type'].startswith('text/csv')
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert len(rows) == sum(n for _, n in truth)
    by_curve = {}
    for r in rows:
        by_curve.setdefault((r['filter'], r['algorithm']), []).append(float(r['sep_arcsec']))
        float(r['contrast_mag_5sigma'])
    assert {f for f, _ in by_curve} == {f for f, _ in truth}
    for seps in by_curve.values():
        assert all(b > a for a, b in zip(seps, seps[1:])), 'separations must increase'
    vot = requests.get(f'{portal_server}/observation/{seq_id}/contrast.vot', timeout=30)
    assert vot.status_code == 200
    table = parse_single_table(io.BytesIO(vot.content)).to_table()
    assert len(table) == len(rows)
    assert str(table['sep_arcsec'].unit) == 'arcsec'


def test_candidates_listed(portal_archive, seq_id, page):
    truth = portal_archive.query('SELECT candidate_id, sep_arcsec, pa_deg, snr FROM '
                                 'sphere.candidates WHERE sequence_id = %s', (seq_id,))
    listed = re.findall(r'<tr data-candidate-id="([^"]+)"', page)
    assert sorted(listed) == sorted(c[0] for c in truth)
    text = _text(page)
    for _, sep, pa, snr in truth:
        assert f'{sep:.4f}' in text and f'{pa:.2f}' in text and f'{snr:.1f}' in text


def test_provenance(portal_archive, seq_id, page):
    section = re.search(r'<section id="provenance".*?</section>', page, re.S).group(0)
    for (arcfile,) in portal_archive.query('SELECT arcfile FROM sphere.raw_files '
                                           'WHERE sequence_id = %s', (seq_id,)):
        assert f'/files/raw/{arcfile}' in section
    for recipe, version in portal_archive.query(
            'SELECT DISTINCT recipe, recipe_version FROM sphere.runs WHERE sequence_id = %s',
            (seq_id,)):
        assert recipe in section and version in section
    # The calibration products the master cube was made with.
    calibs = portal_archive.query(
        "SELECT i.input_id FROM sphere.product_inputs i JOIN sphere.products p "
        "ON p.product_id = i.product_id JOIN sphere.products c ON c.product_id = i.input_id "
        "WHERE p.sequence_id = %s AND p.product_type = 'master_cube' AND c.sequence_id IS NULL",
        (seq_id,))
    assert calibs
    for (pid,) in calibs:
        assert f'/files/product/{pid}"' in section


def test_zip_has_the_products_on_the_page(portal_server, portal_archive, seq_id, page):
    listed = re.findall(r'<tr data-product-id="([^"]+)"', page)
    truth = dict(((pid, (name, checksum)) for pid, name, checksum in portal_archive.query(
        'SELECT product_id, file_name, checksum FROM sphere.products WHERE sequence_id = %s '
        'AND is_current', (seq_id,))))
    assert sorted(listed) == sorted(truth)
    link = re.search(r'id="download-zip" href="([^"]+)"', page).group(1)
    resp = requests.get(portal_server + html.unescape(link), timeout=300, stream=True)
    assert resp.status_code == 200 and resp.headers['Content-Type'] == 'application/zip'
    assert 'Content-Length' not in resp.headers  # streamed, not built in memory first
    body = resp.content
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        names = {n.rsplit('/', 1)[1]: n for n in zf.namelist()}
        assert set(names) == {name for name, _ in truth.values()} | {'MANIFEST.sha256'}
        manifest = dict(line.split('  ')[::-1] for line in
                        zf.read(names['MANIFEST.sha256']).decode().splitlines())
        for name, checksum in truth.values():
            assert manifest[name] == checksum
            assert hashlib.sha256(zf.read(names[name])).hexdigest() == checksum
    # Each product also downloads alone, through the RLS-checked file route.
    hci = next(pid for pid in listed if '.hci_fits' in pid)
    one = requests.get(f'{portal_server}/files/product/{hci}', timeout=60)
    assert one.status_code == 200
    assert hashlib.sha256(one.content).hexdigest() == truth[hci][1]


def test_private_and_unknown_are_the_same_404(portal_server, portal_archive):
    private = portal_archive.private_sequence_ids[0]
    never = 'IRDIS.2031-01-01T00:00:00.000'
    for leaf in ('', '/image.png', '/contrast.csv', '/download.zip'):
        mine = requests.get(f'{portal_server}/observation/{private}{leaf}', timeout=30)
        other = requests.get(f'{portal_server}/observation/{never}{leaf}', timeout=30)
        assert mine.status_code == other.status_code == 404, leaf
        assert mine.text.replace(private, 'X') == other.text.replace(never, 'X')
        assert 'id="error-message"' in mine.text


def test_error_pages(portal_server):
    resp = requests.get(portal_server + '/no/such/page', timeout=30)
    assert resp.status_code == 404 and 'id="error-message"' in resp.text
    assert resp.headers['Content-Type'].startswith('text/html')
    resp = requests.get(portal_server + '/no/such/page', timeout=30,
                        headers={'Accept': 'application/json'})
    assert resp.status_code == 404 and resp.json()['status'] == 404
    resp = requests.get(portal_server + '/observation/"><img src=x onerror=alert(1)>',
                        timeout=30)
    assert resp.status_code == 404
    assert '<img src=x' not in resp.text and '&lt;img src=x' in resp.text
    resp = requests.get(portal_server + '/candidate/nothing/spectrum.png', timeout=30)
    assert resp.status_code == 404


def test_strehl_from_the_psf_product(portal_archive, seq_id, page):
    from astropy.io import fits

    rel, = portal_archive.query("SELECT path FROM sphere.products WHERE sequence_id = %s AND "
                                "product_type = 'psf_cube' AND is_current", (seq_id,))[0]
    header = fits.getheader(portal_archive.database.settings.products_dir / rel)
    values = [header[k] for k in header if k.startswith('ESO QC STREHL')
              and isinstance(header[k], float)]
    strehl = re.search(r'<span id="strehl">(.*?)</span>', page, re.S).group(1)
    if values:
        assert all(f'{round(v, 2)}' in strehl for v in values), strehl
    else:
        assert 'not measured' in strehl


def test_ifs_candidate_spectrum_plot(portal_server, portal_archive):
    rows = portal_archive.query(
        "SELECT c.candidate_id, c.sequence_id FROM sphere.candidates c JOIN sphere.products p "
        "ON starts_with(p.product_id, c.candidate_id || '.') AND p.product_type = 'spectrum' "
        'AND p.is_current WHERE c.sequence_id = ANY(%s)', (portal_archive.public_sequence_ids,))
    assert rows, 'the IFS sequence of the small night should have a candidate with a spectrum'
    candidate_id, sequence_id = rows[0]
    page = requests.get(f'{portal_server}/observation/{sequence_id}', timeout=60).text
    link = f'/candidate/{candidate_id}/spectrum.png'
    assert link in page
    resp = requests.get(portal_server + link, timeout=60)
    assert resp.status_code == 200 and resp.content.startswith(b'\x89PNG')
