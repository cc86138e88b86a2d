"""DataLink 1.0 ``links`` for the products (``/datalink/links?ID=``), and their files.

For a product: the file itself (#this), the previews (#preview), the S/N
map and contrast curve of the same sequence (#auxiliary), every raw file or
product it was made from (#progenitor) and the calibration files used
(#calibration), found by walking ``sphere.product_inputs``. Unknown or
private identifiers get a row with a ``NotFoundFault`` error message
(DataLink 1.0 section 3.4).
"""
from pathlib import Path

from .exceptions import UsageError, VOError
from .reply import Reply, error_reply
from .votable import Field, stream_votable

__all__ = ['DID_PREFIX', 'LINK_FIELDS', 'product_id_of', 'links_rows', 'links_query',
           'product_file', 'raw_file']

DID_PREFIX = 'ivo://spheredc/products?'
MIME = 'application/x-votable+xml;content=datalink'
CALIBRATION_ROLES = ('flat', 'background', 'distortion', 'bad_pixels', 'dark', 'sky_flat')
AUXILIARY_TYPES = ('snr_map', 'contrast_curve')
# What the viewer may see is decided by the database's row-level security
# (the pool runs these queries as the reader, for the request's user).

LINK_FIELDS = [
    Field('ID', 'char', '*', ucd='meta.id;meta.main', description='Identifier of the dataset.'),
    Field('access_url', 'char', '*', ucd='meta.ref.url', description='URL of the linked file.'),
    Field('service_def', 'char', '*', ucd='meta.ref', description='Service descriptor.'),
    Field('error_message', 'char', '*', ucd='meta.code.error',
          description='Why the link could not be made.'),
    Field('semantics', 'char', '*', ucd='meta.code',
          description='What the link is, from the DataLink vocabulary.'),
    Field('description', 'char', '*', ucd='meta.note', description='What the file is.'),
    Field('content_type', 'char', '*', ucd='meta.code.mime', description='MIME type.'),
    Field('content_length', 'long', unit='byte', ucd='phys.size;meta.file',
          description='Size of the file.'),
]


class NotFound(VOError):
    """No file of this identifier that the viewer may see."""

    http_status = 404


def product_id_of(did):
    """The product_id of a publisher DID (the bare product_id is accepted too)."""
    did = did.strip()
    return did[len(DID_PREFIX):] if did.startswith(DID_PREFIX) else did


def _product_rows(pool, did, base_url):
    pid = product_id_of(did)
    found = pool.fetch('SELECT product_id, product_type, sequence_id, content_type, size_bytes '
                       'FROM sphere.products WHERE product_id = %s', (pid,))
    if not found:
        return [(did, None, None, f'NotFoundFault: no product {pid}', '#this', None,
                 None, None)]
    _, ptype, seq, ctype, size = found[0]
    url = f'{base_url}/files/product/'
    rows = [(did, url + pid, None, None, '#this', f'The {ptype} file', ctype, size)]
    for rid, rtype, rctype, rsize in pool.fetch(
            'SELECT product_id, product_type, content_type, size_bytes FROM sphere.products '
            'WHERE sequence_id = %s AND is_current AND product_id <> %s '
            "AND product_type IN ('preview', 'snr_map', 'contrast_curve') ORDER BY product_id",
            (seq, pid)):
        sem = '#preview' if rtype == 'preview' else '#auxiliary'
        rows.append((did, url + rid, None, None, sem, f'{rtype.replace("_", " ")} of the '
                     'sequence', rctype, rsize))
    # Every input, direct or not (a final image <- master cube <- raw files, calibrations).
    for kind, input_id, role, r_ctype, r_size in pool.fetch(
            'WITH RECURSIVE inputs(product_id, input_kind, input_id, role) AS ('
            ' SELECT product_id, input_kind, input_id, role FROM sphere.product_inputs'
            ' WHERE product_id = %s'
            ' UNION SELECT i.product_id, i.input_kind, i.input_id, i.role'
            ' FROM sphere.product_inputs i JOIN inputs ON i.product_id = inputs.input_id'
            "  AND inputs.input_kind = 'product') "
            'SELECT DISTINCT i.input_kind, i.input_id, i.role, p.content_type, '
            ' coalesce(p.size_bytes, r.size_bytes) FROM inputs i '
            "LEFT JOIN sphere.products p ON i.input_kind = 'product' "
            ' AND p.product_id = i.input_id '
            "LEFT JOIN sphere.raw_files r ON i.input_kind = 'raw' AND r.arcfile = i.input_id "
            'ORDER BY 1, 2', (pid,)):
        sem = '#calibration' if role in CALIBRATION_ROLES else '#progenitor'
        if kind == 'raw':
            rows.append((did, f'{base_url}/files/raw/{input_id}', None, None, sem,
                         f'raw file ({role})', 'application/fits', r_size))
        else:
            rows.append((did, url + input_id, None, None, sem, f'input product ({role})',
                         r_ctype, r_size))
    return rows


def links_rows(pool, ids, base_url):
    """The rows of the links table for the given identifiers."""
    rows = []
    for did in ids:
        rows.extend(_product_rows(pool, did, base_url))
    return rows


def links_query(pool, params, base_url, max_ids=100):
    """The whole of ``/datalink/links``: a reply for any request.

    Returns
    -------
    vo.reply.Reply
    """
    ids = params.getlist('ID')
    try:
        if not ids:
            raise UsageError('ID is required')
        if len(ids) > max_ids:
            raise UsageError(f'at most {max_ids} ID values per request', 413)
        fmt = (params.get('RESPONSEFORMAT') or MIME).replace(' ', '')
        if fmt.lower() not in (MIME, 'application/x-votable+xml', 'votable'):
            raise UsageError(f'RESPONSEFORMAT={fmt} is not supported (DataLink VOTable only)')
        rows = links_rows(pool, ids, base_url)
    except VOError as exc:
        return error_reply(exc)
    return Reply(200, MIME, stream_votable(LINK_FIELDS, rows))


def product_file(pool, product_id, products_dir):
    """(path, content type, file name) of a product the viewer may see.

    Raises
    ------
    NotFound
    """
    found = pool.fetch('SELECT path, content_type, file_name FROM sphere.products '
                       'WHERE product_id = %s', (product_id,))
    if not found:
        raise NotFound(f'no product {product_id}')
    path = Path(products_dir) / found[0][0]
    if not path.is_file():
        raise NotFound(f'the file of {product_id} is missing')
    return path, found[0][1] or 'application/octet-stream', found[0][2]


def raw_file(pool, arcfile, home):
    """(path, content type, file name) of a raw file the viewer may see.

    Raises
    ------
    NotFound
    """
    found = pool.fetch('SELECT archive_path, file_name FROM sphere.raw_files '
                       'WHERE arcfile = %s', (arcfile,))
    if not found:
        raise NotFound(f'no raw file {arcfile}')
    path = Path(home) / found[0][0]
    if not path.is_file():
        raise NotFound(f'the file of {arcfile} is missing')
    return path, 'application/fits', found[0][1]
