"""DataLink 1.0 links of a product, errors, and the files they point to."""
import io

import requests
from astropy.io.votable import parse_single_table


def _links(vo_server, *ids):
    resp = requests.get(vo_server + '/datalink/links', params=[('ID', i) for i in ids],
                        timeout=30)
    assert resp.headers['Content-Type'] == 'application/x-votable+xml;content=datalink'
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def test_links_of_a_final_image(vo_server, vo_archive):
    pid = [p for p in vo_archive['products'] if p.endswith('_image_v1')][0]
    did = 'ivo://spheredc/products?' + pid
    table = _links(vo_server, did)
    by_sem = {}
    for row in table:
        assert row['ID'] == did
        by_sem.setdefault(row['semantics'], []).append(row)
    assert len(by_sem['#this']) == 1 and by_sem['#this'][0]['content_type'] == 'application/fits'
    assert len(by_sem['#preview']) == 1
    assert {r['description'] for r in by_sem['#auxiliary']} == {
        'snr map of the sequence', 'contrast curve of the sequence'}
    progenitors = [r['access_url'] for r in by_sem['#progenitor']]
    assert any(u.endswith(pid.replace('_image_', '_cube_')) for u in progenitors)
    assert any('/files/raw/' in u for u in progenitors)
    for row in by_sem.get('#calibration', []):
        assert '/files/raw/' in row['access_url']
    # every link resolves, with the announced size
    for row in table:
        got = requests.get(row['access_url'], timeout=30)
        assert got.status_code == 200, row['access_url']
        if row['content_length']:
            assert len(got.content) == row['content_length']


def test_unknown_ids_and_errors(vo_server, vo_archive):
    table = _links(vo_server, 'ivo://spheredc/products?nope', vo_archive['products'][0])
    first = [r for r in table if r['ID'] == 'ivo://spheredc/products?nope']
    assert len(first) == 1 and first[0]['error_message'].startswith('NotFoundFault')
    assert any(r['semantics'] == '#this' for r in table if r['ID'] != first[0]['ID'])
    missing = requests.get(vo_server + '/datalink/links', timeout=30)
    assert missing.status_code == 400 and 'ID is required' in missing.text
    assert requests.get(vo_server + '/files/product/nope', timeout=30).status_code == 404
    caps = requests.get(vo_server + '/datalink/capabilities', timeout=30).text
    assert 'ivo://ivoa.net/std/DataLink#links-1.0' in caps
