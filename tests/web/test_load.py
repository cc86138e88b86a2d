"""20 concurrent clients browse and search the portal for a while: not one error.

The timed version (60 s, p95 in the README) is ``bench/portal_load.py``; this one
runs its browsing mix for a few seconds against the test server.
"""
import importlib.util

from tests.conftest import REPO


def _bench():
    spec = importlib.util.spec_from_file_location('portal_load', REPO / 'bench' / 'portal_load.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_twenty_clients_browse_without_error(portal_server, portal_archive):
    bench = _bench()
    seqs = [s for (s,) in portal_archive.query(
        "SELECT DISTINCT sequence_id FROM sphere.products WHERE product_type = 'final_image' "
        'AND is_current AND sequence_id = ANY(%s) ORDER BY 1',
        (portal_archive.public_sequence_ids,))]
    target, ra, dec = portal_archive.query('SELECT target_name, ra, dec FROM sphere.sequences '
                                           'WHERE sequence_id = %s', (seqs[0],))[0]
    mix = bench.browsing_mix(portal_server, seqs, target, ra, dec)
    times, errors = bench.run_load(portal_server, mix, clients=20, seconds=8,
                                   login=portal_archive.users['pi'])
    assert not errors, errors[:5]
    assert sum(len(v) for v in times.values()) >= 20
    assert {'home', 'search name', 'search position', 'observation', 'picture'} <= set(times)
