"""The observation page, its pictures, tables and downloads.

Every route first reads the rows it needs through ``pool.fetch`` as the
viewer (`web.portal.records`): a sequence, product or candidate the viewer
may not see is absent, and the answer is the same 404 as for one that does
not exist. Only then are files opened, from the paths those rows give.
Pictures are rendered once per product checksum and kept on disk
(`web.portal.cache`).
"""
import functools
import hashlib
from pathlib import Path

from flask import Response, abort, render_template, request, send_file

from . import bp, pictures, records, summary
from .cache import cache_name, cached, picture_dir
from .productfiles import read_image, read_strehl, read_spectrum

#: Browsers may keep pictures this long (private: they may be proprietary).
PICTURE_MAX_AGE_S = 600


def _services():
    from web.app import services

    return services()


def _not_found(what='observation', ident=''):
    abort(404, f'There is no {what} {ident} that you may see: it does not exist, or its '
               'data are still proprietary (if they are yours, log in).')


def _sequence_or_404(pool, sequence_id):
    seq = records.sequence(pool, sequence_id)
    if seq is None:
        _not_found('observation', sequence_id)
    return seq


def _product_path(product):
    """Path of a product's file under the products folder, or None if it is missing."""
    base = Path(_services().database.settings.products_dir).resolve()
    path = (base / product['path']).resolve()
    # A path from the database that leaves the products folder is never opened.
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def _send_picture(path):
    resp = send_file(path, mimetype='image/png', conditional=True, etag=True,
                     max_age=PICTURE_MAX_AGE_S)
    resp.headers['Cache-Control'] = f'private, max-age={PICTURE_MAX_AGE_S}'
    return resp


def _cached_picture(key, checksum, variant, render):
    home = _services().database.settings.home
    return _send_picture(cached(picture_dir(home), cache_name(key, checksum, variant), render))


@bp.get('/observation/<sequence_id>')
def observation(sequence_id):
    pool = _services().pool
    seq = _sequence_or_404(pool, sequence_id)
    raws = records.raw_files(pool, sequence_id)
    products = records.products(pool, sequence_id)
    candidates = records.candidates(pool, sequence_id)
    inputs = records.provenance(pool, sequence_id)
    groups = summary.provenance_groups(inputs)
    runs = records.runs(pool, sequence_id, groups['run_ids'])
    spectra = {p['product_id'] for p in products if p['product_type'] == 'spectrum'}
    for c in candidates:
        c['label'] = summary.candidate_label(c['candidate_id'])
        c['has_spectrum'] = any(s.startswith(c['candidate_id'] + '.') for s in spectra)
    objects = [r for r in raws if r['dpr_type'] == 'OBJECT'] or raws
    seq['proprietary'] = summary.is_proprietary(seq['release_date'])
    has_limits = any(p['product_type'] == 'contrast_curve'
                     and p['content_type'] == 'application/fits' for p in products)
    return render_template(
        'observation.html', seq=seq, raws=raws, products=summary.downloads(products),
        candidates=candidates, groups=groups, runs=runs,
        calib=summary.calibration_words(seq),
        calib_assocs=records.calib_associations(pool, sequence_id),
        exposures=summary.exposures(raws),
        airmass=summary.value_range(objects, 'airmass'),
        strehl=_strehl(products),
        image_filters=summary.picture_filters(products, 'final_image'),
        snr_filters=summary.picture_filters(products, 'snr_map'),
        hci=[p for p in products if p['product_type'] == 'hci_fits'],
        has_limits=has_limits, zip_size=sum(p['size_bytes'] or 0 for p in products),
        sizes={'image': pictures.IMAGE_SIZE_PX, 'contrast': pictures.CONTRAST_SIZE_PX})


def _strehl(products):
    """Strehl estimates of the current level-1 PSF product, or [] (read from its header)."""
    for p in products:
        if p['product_type'] == 'psf_cube':
            path = _product_path(p)
            if path is not None:
                try:
                    return _strehl_of(str(path), p['checksum'])
                except (OSError, ValueError):  # unreadable file: say "not measured"
                    return []
    return []


@functools.lru_cache(maxsize=256)
def _strehl_of(path, checksum):
    # Keyed on the checksum too: a reprocessed product is a new file.
    return tuple(read_strehl(path))


def _level2_product(pool, sequence_id, product_type):
    """The FITS product of a type for the filter asked (``?filter=``, default the first)."""
    products = records.products(pool, sequence_id)
    if not products:
        _sequence_or_404(pool, sequence_id)  # the same 404 whether or not it exists
    choices = [p for p in products if p['product_type'] == product_type
               and p['content_type'] == 'application/fits']
    wanted = request.args.get('filter')
    if wanted:
        choices = [p for p in choices if p['filter'] == wanted]
    if not choices:
        abort(404, f'There is no {product_type.replace("_", " ")} of {sequence_id}'
              + (f' in filter {wanted}' if wanted else '') + ' that you may see.')
    return choices[0], products


def _image_route(sequence_id, product_type, symmetric, label):
    pool = _services().pool
    product, products = _level2_product(pool, sequence_id, product_type)
    # Candidates are measured on the final image of the same filter.
    image_ids = {p['product_id'] for p in products if p['product_type'] == 'final_image'
                 and p['filter'] == product['filter']}
    marks = [(summary.candidate_label(c['candidate_id']), c['x_px'], c['y_px'])
             for c in records.candidates(pool, sequence_id)
             if c['product_id'] in image_ids and c['x_px'] is not None]
    path = _product_path(product)
    if path is None:
        abort(404, f'The file of {product["product_id"]} is missing.')

    def render():
        data, header = read_image(path)
        scale = product['pixscale_arcsec'] or header.get('PIXSCAL')
        kind = 'S/N map' if symmetric else 'final image'
        return pictures.image_png(
            data, pixscale_arcsec=float(scale), north_deg=pictures.north_angle_deg(header),
            candidates=marks, symmetric=symmetric, label=label,
            title=f'{product["target_name"] or ""} {product["filter"]}: {kind} (north up)')

    return _cached_picture(product['product_id'], product['checksum'], '', render)


@bp.get('/observation/<sequence_id>/image.png')
def image_png(sequence_id):
    return _image_route(sequence_id, 'final_image', False, 'ADU/s')


@bp.get('/observation/<sequence_id>/snr.png')
def snr_png(sequence_id):
    return _image_route(sequence_id, 'snr_map', True, 'S/N')


def _limits_or_404(pool, sequence_id):
    rows = records.detection_limits(pool, sequence_id)
    if not rows:
        _sequence_or_404(pool, sequence_id)
        abort(404, f'There is no contrast curve of {sequence_id} that you may see.')
    return rows


@bp.get('/observation/<sequence_id>/contrast.png')
def contrast_png(sequence_id):
    pool = _services().pool
    rows = _limits_or_404(pool, sequence_id)
    curves = {}
    for r in rows:
        curves.setdefault((r['filter'], r['algorithm']), []).append(r)
    products = {p['product_id']: p for p in records.products(pool, sequence_id)}
    # Keyed on the contrast-curve products the rows come from.
    ids = sorted({r['product_id'] or '' for r in rows})
    digest = hashlib.sha256('\n'.join(
        f'{i}:{products[i]["checksum"] if i in products else ""}' for i in ids).encode()
    ).hexdigest()
    cands = records.candidates(pool, sequence_id)

    def render():
        lines = [(f'{f} {a}', [r['sep_arcsec'] for r in rs],
                  [r['contrast_mag_5sigma'] for r in rs]) for (f, a), rs in curves.items()]
        marks = [(summary.candidate_label(c['candidate_id']), c['sep_arcsec'],
                  c['contrast_mag']) for c in cands]
        return pictures.contrast_png(lines, candidates=marks,
                                     title=f'{sequence_id}: 5-sigma contrast')

    return _cached_picture(sequence_id + '.contrast', digest, '', render)


def _limit_fields():
    from archive.schema import load_tables
    from vo.tapschema import field_from_column

    table = load_tables()['sphere.detection_limits']
    cols = {c.name: c for c in table.columns}
    return [field_from_column(cols[n]) for n in ('filter', 'algorithm', 'sep_arcsec',
                                                 'contrast_5sigma', 'contrast_mag_5sigma',
                                                 'throughput')]


def _limit_table(sequence_id, fmt):
    from vo.votable import stream_csv, stream_votable

    pool = _services().pool
    rows = _limits_or_404(pool, sequence_id)
    fields = _limit_fields()
    values = [tuple(r[f.name] for f in fields) for r in rows]
    stem = summary.safe_file_stem(sequence_id) + '_contrast'
    if fmt == 'csv':
        body, ctype, name = stream_csv(fields, values), 'text/csv; charset=utf-8', stem + '.csv'
    else:
        body = stream_votable(fields, values, description=(
            f'5-sigma detection limits of sequence {sequence_id} (throughput and '
            'small-sample corrected).'))
        ctype, name = 'application/x-votable+xml', stem + '.vot'
    return Response(b''.join(body), content_type=ctype, headers={
        'Content-Disposition': f'attachment; filename="{name}"',
        'Cache-Control': 'private, max-age=60'})


@bp.get('/observation/<sequence_id>/contrast.csv')
def contrast_csv(sequence_id):
    return _limit_table(sequence_id, 'csv')


@bp.get('/observation/<sequence_id>/contrast.vot')
def contrast_vot(sequence_id):
    return _limit_table(sequence_id, 'votable')


@bp.get('/observation/<sequence_id>/download.zip')
def download_zip(sequence_id):
    """Every current product of the sequence in one zip, streamed, with a checksum list."""
    from .zipstream import stream_zip

    pool = _services().pool
    products = records.products(pool, sequence_id)
    if not products:
        _sequence_or_404(pool, sequence_id)
        abort(404, f'{sequence_id} has no products yet.')
    folder = summary.safe_file_stem(sequence_id)
    members, manifest, seen = [], [], set()
    for p in summary.downloads(products):
        path = _product_path(p)
        if path is None:  # said in the manifest rather than failing the whole download
            manifest.append(f'# missing: {p["product_id"]} ({p["file_name"]})')
            continue
        name = summary.safe_file_stem(p['file_name'])
        if name in seen:
            name = summary.safe_file_stem(p['product_id']) + '_' + name
        seen.add(name)
        members.append((f'{folder}/{name}', path))
        manifest.append(f'{p["checksum"]}  {name}')
    # sha256sum -c MANIFEST.sha256 checks the files after unpacking.
    members.append((f'{folder}/MANIFEST.sha256', ('\n'.join(manifest) + '\n').encode()))
    return Response(stream_zip(members), content_type='application/zip', headers={
        'Content-Disposition': f'attachment; filename="{folder}.zip"',
        'Cache-Control': 'private, no-store'})


@bp.get('/thumb/<product_id>.png')
def thumbnail(product_id):
    """A small picture of a final image (FITS) or of a preview (PNG), for result tables."""
    pool = _services().pool
    product = records.product(pool, product_id)
    path = _product_path(product) if product else None
    if path is None or product['content_type'] not in ('image/png', 'application/fits'):
        _not_found('preview', product_id)
    if product['content_type'] == 'image/png':
        def render():
            return pictures.thumbnail_png(path.read_bytes())
    else:
        def render():
            return pictures.image_thumbnail_png(read_image(path)[0])
    return _cached_picture(product_id, product['checksum'], 'thumb', render)


@bp.get('/candidate/<candidate_id>/spectrum.png')
def spectrum_png(candidate_id):
    pool = _services().pool
    cand = records.candidate(pool, candidate_id)
    product = records.spectrum_product(pool, candidate_id) if cand else None
    if product is None:
        _not_found('spectrum of candidate', candidate_id)
    path = _product_path(product)
    if path is None:
        abort(404, f'The file of {product["product_id"]} is missing.')

    def render():
        wl, c, err = read_spectrum(path)
        return pictures.spectrum_png(wl, c, err, title=f'{cand["target_name"]} '
                                     f'{summary.candidate_label(candidate_id)}: spectrum')

    return _cached_picture(product['product_id'], product['checksum'], '', render)
