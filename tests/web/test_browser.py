"""The portal in a real headless Chromium (Debian ``chromium`` driven by Playwright).

A visitor searches by name and by position, opens an observation and sees its
image and contrast plot load; the PI logs in, asks for a reduction, and watches
it go through the queue to ``done``. Screenshots go to ``test-artifacts/browser``.
"""
import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
SHOTS = Path(os.environ.get('SPHEREDC_TEST_ARTIFACTS', REPO / 'test-artifacts')) / 'browser'

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason='Debian chromium is not installed (make test installs it)')]


@pytest.fixture(scope='module')
def browser():
    sync_api = pytest.importorskip('playwright.sync_api')
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        # --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=['--no-sandbox', '--disable-gpu'])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={'width': 1280, 'height': 1000})
    pg = context.new_page()
    errors = []
    pg.on('pageerror', lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f'JavaScript errors: {errors}'


def _shot(page, name):
    page.screenshot(path=str(SHOTS / f'{name}.png'), full_page=True)


def _images_loaded(page, selector):
    """naturalWidth of every image matching ``selector`` (0 for a broken image)."""
    return page.eval_on_selector_all(selector, 'els => els.map(e => e.complete ? '
                                               'e.naturalWidth : -1)')


def _public_target(archive):
    return archive.query('SELECT target_name, ra, dec FROM sphere.sequences '
                         'WHERE sequence_id = %s', (archive.public_sequence_ids[0],))[0]


def test_search_by_name_then_open_the_observation(page, portal_server, portal_archive):
    target, _, _ = _public_target(portal_archive)
    page.goto(portal_server + '/')
    page.fill('input[name=name]', target.lower())
    page.click('#search-form button[type=submit]')
    page.wait_for_selector('#results-table')
    found = page.eval_on_selector_all('#results-table tr[data-sequence-id]',
                                      'rows => rows.map(r => r.dataset.sequenceId)')
    assert set(found) >= {s for s in portal_archive.public_sequence_ids
                          if portal_archive.query('SELECT target_name FROM sphere.sequences '
                                                  'WHERE sequence_id = %s', (s,))[0][0] == target}
    assert not set(found) & set(portal_archive.private_sequence_ids)
    assert 'CONTAINS' in page.inner_text('#adql') or target in page.inner_text('#adql')
    _shot(page, '1-search-by-name')
    reduced = portal_archive.query(
        "SELECT DISTINCT sequence_id FROM sphere.products WHERE product_type = 'final_image' "
        'AND sequence_id = ANY(%s)', (found,))
    seq = reduced[0][0]
    page.click(f'tr[data-sequence-id="{seq}"] a.seq-link')
    page.wait_for_selector('#obs-title')
    assert page.inner_text('#sequence-id').strip() == seq
    page.wait_for_load_state('networkidle')
    widths = _images_loaded(page, '#pictures img.picture')
    assert widths and all(w > 100 for w in widths), widths
    assert _images_loaded(page, '#contrast img.picture')[0] > 100
    assert page.locator('#candidates').count() == 1
    _shot(page, '2-observation')


def test_search_by_position(page, portal_server, portal_archive):
    target, ra, dec = _public_target(portal_archive)
    page.goto(portal_server + '/search')
    page.fill('input[name=ra]', f'{ra:.6f}')
    page.fill('input[name=dec]', f'{dec:.6f}')
    page.fill('input[name=radius]', '30')
    page.click('#search-form button[type=submit]')
    page.wait_for_selector('#results-table')
    assert target in page.inner_text('#results-table')
    _shot(page, '3-search-by-position')
    # Far from every target: no result, and a clear statement of it.
    page.goto(portal_server + f'/search?ra={(ra + 90) % 360:.4f}&dec={-dec:.4f}&radius=30')
    assert page.locator('#results-table tr[data-sequence-id]').count() == 0


def test_bad_search_input_is_explained(page, portal_server):
    page.goto(portal_server + '/search?ra=abc&dec=1&radius=1e30&name=%3Cscript%3Ex%3C/script%3E')
    assert page.locator('#form-errors').is_visible()
    assert page.locator('script:has-text("x")').count() == 0
    _shot(page, '4-bad-input')


def test_pi_logs_in_requests_a_reduction_and_watches_it_complete(page, portal_server,
                                                                 portal_archive):
    name, password = portal_archive.users['pi']
    page.goto(portal_server + '/login')
    page.fill('input[name=username]', name)
    page.fill('input[name=password]', password)
    page.click('form.stacked button[type=submit]')
    page.wait_for_selector('#whoami')
    assert page.inner_text('#whoami').strip() == name
    # The PI sees the proprietary observation, marked as such.
    private = portal_archive.private_sequence_ids[0]
    page.goto(portal_server + f'/observation/{private}')
    assert page.locator('#proprietary').is_visible()
    _shot(page, '5-pi-private-observation')

    page.goto(portal_server + '/requests/new')
    page.select_option('select[name=prog_id]', index=0)
    night = portal_archive.query('SELECT night FROM sphere.sequences WHERE sequence_id = %s',
                                 (private,))[0][0]
    page.select_option('select[name=nights]', night)
    page.fill('input[name=components]', '2')  # the CI sequence has 3 frames
    _shot(page, '6-request-form')
    page.click('#request-form button[type=submit]')
    page.wait_for_load_state('networkidle')
    request_id = portal_archive.query(
        'SELECT max(request_id) FROM requests.reductions WHERE requester = %s', (name,))[0][0]
    assert request_id is not None
    # Staff accepts it through the API, as a script would.
    staff = requests.post(f'{portal_server}/api/requests/{request_id}/accept',
                          headers={'Authorization': f'Bearer {portal_archive.tokens["staff"]}'},
                          json={}, timeout=30)
    assert staff.status_code == 200, staff.text
    deadline = time.monotonic() + 300
    state = None
    while time.monotonic() < deadline:
        page.goto(portal_server + f'/requests/{request_id}')
        state = portal_archive.query('SELECT state FROM requests.reductions '
                                     'WHERE request_id = %s', (request_id,))[0][0]
        if state in ('done', 'failed'):
            break
        time.sleep(2)
    page.goto(portal_server + f'/requests/{request_id}')
    _shot(page, '7-request-done')
    assert state == 'done', page.inner_text('main')
    assert 'done' in page.inner_text('main').lower()
