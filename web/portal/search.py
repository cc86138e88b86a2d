"""The portal's search form: parsing and validation, then SQL and the same search in ADQL.

Pure functions: a mapping of form fields (``request.args``) in, a frozen
`Search` out, or a `FormError` naming each wrong field; then the SQL the
portal runs (parameterised, with the pg_sphere cone on the indexed ``pos``
column) and the equivalent ADQL for the TAP service (TOPCAT, pyvo), both
from the same `Search`, so they select the same sequences.

A target name is matched case-, space-, dash- and underscore-insensitively
(`normalize_name`): `resolve_name` turns it into the archive's own spellings
first, and both queries then use those exact names.
"""
import dataclasses
import datetime
import difflib
import math
import re

__all__ = ['Search', 'FormError', 'parse_search', 'normalize_name', 'resolve_name',
           'suggest_names', 'results_sql', 'adql_query', 'SORT_KEYS', 'MAX_RADIUS_ARCSEC',
           'MAX_PER_PAGE', 'DEFAULT_RADIUS_ARCSEC', 'CALIB_STATUSES']

#: Largest cone radius (arcsec): a search, not a dump of the archive.
MAX_RADIUS_ARCSEC = 3600.0
DEFAULT_RADIUS_ARCSEC = 10.0
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25
MAX_PAGE = 10_000
MAX_TEXT = 100
CALIB_STATUSES = ('complete', 'complete_with_warnings', 'incomplete', 'not_required')

#: Sort keys of the form -> column (a whitelist: nothing else reaches ORDER BY).
SORT_KEYS = {
    'night': 'night', 'target': 'target_name', 'arm': 'arm', 'mode': 'ins_mode',
    'filter': 'filter', 'rotation': 'field_rotation_deg', 'seeing': 'seeing_arcsec',
    'id': 'sequence_id',
}
DEFAULT_SORT = 'night'

_DATE_RE = re.compile(r'\d{4}-\d{2}-\d{2}')
_PROG_RE = re.compile(r'\d{3,4}\.[A-Z]-\d{4}(\([A-Z]\))?')
_NUMBER_RE = re.compile(r'[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?')
#: Text fields compared with equality (case-insensitive): form field -> column.
_TEXT_FIELDS = {'arm': 'arm', 'mode': 'ins_mode', 'filter': 'filter',
                'coronagraph': 'coronagraph'}


class FormError(ValueError):
    """Wrong values in the search form.

    Attributes
    ----------
    errors : dict
        Form field -> message, in words.
    """

    def __init__(self, errors):
        super().__init__('; '.join(f'{k}: {v}' for k, v in errors.items()))
        self.errors = errors


@dataclasses.dataclass(frozen=True)
class Search:
    """A validated search.

    Attributes
    ----------
    name : str or None
        Target name as typed (resolved by the caller).
    ra_deg, dec_deg, radius_arcsec : float or None
        Cone (ICRS); all three or none.
    night_from, night_to : str or None
        Observing nights (YYYY-MM-DD), inclusive.
    arm, mode, filter, coronagraph : str or None
        Exact values, compared case-insensitively.
    prog_id : str or None
        ESO programme (``0115.C-0123``: all its runs) or one run (``0115.C-0123(A)``).
    survey : str or None
        Survey name (resolved by the caller to its programmes, ``sphere.programmes``).
    calib_status : str or None
        One of `CALIB_STATUSES`.
    has_candidates : bool
    min_rotation_deg : float or None
        Smallest field rotation.
    sort : str
        A key of `SORT_KEYS`.
    descending : bool
    page, per_page : int
        1-based page, rows per page (at most `MAX_PER_PAGE`).
    """

    name: str = None
    ra_deg: float = None
    dec_deg: float = None
    radius_arcsec: float = None
    night_from: str = None
    night_to: str = None
    arm: str = None
    mode: str = None
    filter: str = None
    coronagraph: str = None
    prog_id: str = None
    survey: str = None
    calib_status: str = None
    has_candidates: bool = False
    min_rotation_deg: float = None
    sort: str = DEFAULT_SORT
    descending: bool = True
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @property
    def offset(self):
        return (self.page - 1) * self.per_page

    @property
    def has_cone(self):
        return self.ra_deg is not None


def normalize_name(name):
    """A target name without case, spaces, dashes or underscores ('HD 95086' -> 'hd95086')."""
    return re.sub(r'[\s_-]+', '', name.lower())


def resolve_name(name, known):
    """The known target names that ``name`` designates (same `normalize_name`)."""
    want = normalize_name(name)
    return sorted(k for k in known if normalize_name(k) == want)


def suggest_names(name, known, n=5):
    """Known target names close to ``name`` (similar spelling, or containing it).

    Parameters
    ----------
    name : str
        As typed.
    known : iterable of str
        Target names the viewer may see.
    n : int
        At most this many.

    Returns
    -------
    list of str
    """
    by_norm = {}
    for k in known:
        by_norm.setdefault(normalize_name(k), k)
    want = normalize_name(name)
    close = difflib.get_close_matches(want, list(by_norm), n=n, cutoff=0.6)
    if want:
        close += sorted(k for k in by_norm if want in k and k not in close)
    return [by_norm[k] for k in close[:n]]


def _text(args, key, errors):
    value = (args.get(key) or '').strip()
    if len(value) > MAX_TEXT:
        errors[key] = f'at most {MAX_TEXT} characters'
        return None
    if any(ord(c) < 32 for c in value):
        errors[key] = 'control characters are not allowed'
        return None
    return value or None


def _number(args, key, errors, lo, hi, what):
    text = (args.get(key) or '').strip()
    if not text:
        return None
    if len(text) > 40 or not _NUMBER_RE.fullmatch(text):
        errors[key] = f'{what} must be a number'
        return None
    value = float(text)
    if not (math.isfinite(value) and lo <= value <= hi):
        errors[key] = f'{what} must be between {lo:g} and {hi:g}'
        return None
    return value


def _integer(args, key, errors, lo, hi, default):
    text = (args.get(key) or '').strip()
    if not text:
        return default
    if not text.isdigit() or len(text) > 9 or not lo <= int(text) <= hi:
        errors[key] = f'must be a whole number from {lo} to {hi}'
        return default
    return int(text)


def _angle(text, key, errors):
    """Degrees from decimal degrees or sexagesimal (RA in hours, Dec in degrees)."""
    from astropy import units as u
    from astropy.coordinates import Angle, Latitude, Longitude

    what = 'RA' if key == 'ra' else 'Dec'
    if len(text) > 40:
        errors[key] = f'{what} is too long'
        return None
    try:
        if _NUMBER_RE.fullmatch(text):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            angle = Angle(value, unit=u.deg)
        else:
            # Sexagesimal: "11 44 37.08", "11:44:37", "11h44m37s"; RA in hours unless
            # the text says degrees ("176d09m16s").
            angle = Angle(text, unit=u.hourangle if key == 'ra' else u.deg)
        if key == 'ra':
            if not 0 <= angle.deg < 360:
                raise ValueError
            return float(Longitude(angle).deg)
        return float(Latitude(angle).deg)
    except (ValueError, TypeError, u.UnitsError):
        errors[key] = (f'{what} must be in degrees ({"0 to 360" if key == "ra" else "-90 to 90"}) '
                       f'or sexagesimal ({"hh:mm:ss" if key == "ra" else "±dd:mm:ss"})')
        return None


def _night(args, key, errors):
    text = (args.get(key) or '').strip()
    if not text:
        return None
    try:
        if not _DATE_RE.fullmatch(text):
            raise ValueError
        datetime.date.fromisoformat(text)
    except ValueError:
        errors[key] = 'a night is written YYYY-MM-DD (the date of the evening)'
        return None
    return text


def parse_search(args):
    """Validate the search form.

    Parameters
    ----------
    args : mapping
        Form fields (``get(key)`` -> str or None), e.g. ``request.args``.

    Returns
    -------
    Search

    Raises
    ------
    FormError
        Naming every wrong field.
    """
    errors = {}
    name = _text(args, 'name', errors)
    ra_text, dec_text = ((args.get(k) or '').strip() for k in ('ra', 'dec'))
    ra = _angle(ra_text, 'ra', errors) if ra_text else None
    dec = _angle(dec_text, 'dec', errors) if dec_text else None
    if bool(ra_text) != bool(dec_text):
        errors['ra' if not ra_text else 'dec'] = 'give both RA and Dec for a position search'
    radius = _number(args, 'radius', errors, 0, MAX_RADIUS_ARCSEC, 'the radius (arcsec)')
    if radius is not None and radius <= 0 and 'radius' not in errors:
        errors['radius'] = 'the radius (arcsec) must be positive'
    if ra is None or dec is None:
        ra = dec = radius = None
    elif radius is None:
        radius = DEFAULT_RADIUS_ARCSEC
    night_from, night_to = _night(args, 'night_from', errors), _night(args, 'night_to', errors)
    if night_from and night_to and night_from > night_to:
        errors['night_to'] = 'the last night is before the first night'
    texts = {key: _text(args, key, errors) for key in _TEXT_FIELDS}
    prog_id = _text(args, 'prog_id', errors)
    if prog_id is not None:
        prog_id = prog_id.upper()
        if not _PROG_RE.fullmatch(prog_id):
            errors['prog_id'] = 'an ESO programme looks like 0104.C-0123 or 0104.C-0123(A)'
    survey = _text(args, 'survey', errors)
    if survey is not None and not re.fullmatch(r'[\w-]{1,40}', survey):
        errors['survey'] = 'a survey name is letters, digits, "-" or "_"'
    calib = (args.get('calib_status') or '').strip() or None
    if calib is not None and calib not in CALIB_STATUSES:
        errors['calib_status'] = 'unknown calibration status'
    has_candidates = (args.get('has_candidates') or '').strip().lower() in ('1', 'on', 'true',
                                                                              'yes')
    min_rotation = _number(args, 'min_rotation', errors, 0, 360, 'the field rotation (deg)')
    sort = (args.get('sort') or DEFAULT_SORT).strip()
    if sort not in SORT_KEYS:
        errors['sort'] = f'sort by one of: {", ".join(SORT_KEYS)}'
    order = (args.get('order') or 'desc').strip().lower()
    if order not in ('asc', 'desc'):
        errors['order'] = 'order is asc or desc'
    page = _integer(args, 'page', errors, 1, MAX_PAGE, 1)
    per_page = _integer(args, 'per_page', errors, 1, MAX_PER_PAGE, DEFAULT_PER_PAGE)
    if errors:
        raise FormError(errors)
    return Search(name=name, ra_deg=ra, dec_deg=dec, radius_arcsec=radius,
                  night_from=night_from, night_to=night_to, prog_id=prog_id, survey=survey,
                  calib_status=calib, has_candidates=has_candidates,
                  min_rotation_deg=min_rotation, sort=sort, descending=order == 'desc',
                  page=page, per_page=per_page, **texts)


def _programme_condition(prog_id):
    """(SQL, params, ADQL) selecting a run, or a programme and all its runs."""
    if '(' in prog_id:
        return ('s.prog_id = %s', [prog_id], f's.prog_id = {_adql_str(prog_id)}')
    return ("(s.prog_id = %s OR s.prog_id LIKE %s)", [prog_id, prog_id + '(%'],
            f"(s.prog_id = {_adql_str(prog_id)} OR s.prog_id LIKE {_adql_str(prog_id + '(%')})")


def _conditions(search, target_names, programmes=()):
    """[(SQL, params, ADQL)] of the search's criteria, on the alias ``s``."""
    out = []
    if search.name is not None:
        names = list(target_names)
        out.append(('s.target_name = ANY(%s)', [names],
                    f's.target_name IN ({", ".join(map(_adql_str, names))})' if names
                    else '1 = 0'))
    if search.has_cone:
        radius_deg = search.radius_arcsec / 3600.0
        out.append(('s.pos <@ scircle(spoint(radians(%s), radians(%s)), radians(%s))',
                    [search.ra_deg, search.dec_deg, radius_deg],
                    "1 = CONTAINS(POINT('ICRS', s.ra, s.\"dec\"), "
                    f"CIRCLE('ICRS', {search.ra_deg!r}, {search.dec_deg!r}, {radius_deg!r}))"))
    if search.night_from:
        out.append(('s.night >= %s', [search.night_from],
                    f's.night >= {_adql_str(search.night_from)}'))
    if search.night_to:
        out.append(('s.night <= %s', [search.night_to],
                    f's.night <= {_adql_str(search.night_to)}'))
    for key, column in _TEXT_FIELDS.items():
        value = getattr(search, key)
        if value is not None:
            out.append((f'lower(s.{column}) = lower(%s)', [value],
                        f'LOWER(s.{column}) = LOWER({_adql_str(value)})'))
    if search.prog_id:
        out.append(_programme_condition(search.prog_id))
    if search.survey is not None:
        # The survey's programmes, resolved by the caller: the ADQL lists them too.
        parts = [_programme_condition(p) for p in programmes]
        out.append(('(' + ' OR '.join(p[0] for p in parts) + ')' if parts else 'false',
                    [x for p in parts for x in p[1]],
                    '(' + ' OR '.join(p[2] for p in parts) + ')' if parts else '1 = 0'))
    if search.calib_status:
        out.append(('s.calib_status = %s', [search.calib_status],
                    f's.calib_status = {_adql_str(search.calib_status)}'))
    if search.has_candidates:
        sub = 's.sequence_id IN (SELECT c.sequence_id FROM sphere.candidates AS c)'
        out.append((sub, [], sub))
    if search.min_rotation_deg is not None:
        out.append(('s.field_rotation_deg >= %s', [search.min_rotation_deg],
                    f's.field_rotation_deg >= {search.min_rotation_deg!r}'))
    return out


def _adql_str(value):
    return "'" + str(value).replace("'", "''") + "'"


def _order(search, alias='s'):
    direction = ' DESC' if search.descending else ''
    column = SORT_KEYS[search.sort]
    tie = '' if column == 'sequence_id' else f', {alias}.sequence_id{direction}'
    return f'{alias}.{column}{direction}{tie}'


#: The product a sequence's thumbnail is drawn from: its first final image (FITS),
#: else a level-1 preview (PNG). ``{seq}`` is the sequence_id expression.
THUMBNAIL_SQL = (
    'SELECT p.product_id FROM sphere.products p WHERE p.sequence_id = {seq} AND p.is_current '
    "AND ((p.product_type = 'final_image' AND p.content_type = 'application/fits') "
    "OR (p.product_type = 'preview' AND p.content_type = 'image/png')) "
    "ORDER BY (p.product_type = 'final_image') DESC, (p.file_name LIKE '%%stack.png') DESC, "
    'p.level DESC, p.filter, p.product_id LIMIT 1')

#: Columns of a result row, in `results_sql` order.
RESULT_COLUMNS = ('sequence_id', 'target_name', 'night', 'arm', 'ins_mode', 'filter',
                  'coronagraph', 'field_rotation_deg', 'seeing_arcsec', 'calib_status',
                  'n_object', 'total', 'n_candidates', 'thumb_product_id')


def results_sql(search, target_names=(), programmes=()):
    """One page of results, with the total count, candidate counts and thumbnails.

    Parameters
    ----------
    search : Search
    target_names : sequence of str
        The archive's spellings of ``search.name`` (ignored without a name).
    programmes : sequence of str
        The programmes of ``search.survey`` (ignored without a survey).

    Returns
    -------
    sql : str
    params : list
        Rows come in `RESULT_COLUMNS` order.
    """
    conds = _conditions(search, target_names, programmes)
    where = ' AND '.join(c[0] for c in conds) or 'true'
    params = [p for c in conds for p in c[1]]
    base = RESULT_COLUMNS[:11]
    # Only the rows of the page get their candidate count and thumbnail.
    sql = (f'WITH page AS (SELECT {", ".join("s." + c for c in base)}, '
           f'count(*) OVER () AS total FROM sphere.sequences s WHERE {where} '
           f'ORDER BY {_order(search)} LIMIT %s OFFSET %s) '
           f'SELECT {", ".join("page." + c for c in base)}, page.total, '
           '(SELECT count(*) FROM sphere.candidates c WHERE c.sequence_id = page.sequence_id), '
           f'({THUMBNAIL_SQL.format(seq="page.sequence_id")}) '
           f'FROM page ORDER BY {_order(search, "page")}')
    return sql, params + [search.per_page, search.offset]


def adql_query(search, target_names=(), programmes=()):
    """The same search as ADQL on ``sphere.sequences`` (all pages, same order).

    Parameters
    ----------
    search : Search
    target_names : sequence of str

    Returns
    -------
    str
    """
    conds = _conditions(search, target_names, programmes)
    cols = ('sequence_id', 'target_name', 'night', 'arm', 'ins_mode', 'filter', 'coronagraph',
            'ra', '"dec"', 'field_rotation_deg', 'seeing_arcsec', 'calib_status')
    lines = ['SELECT ' + ', '.join('s.' + c for c in cols), 'FROM sphere.sequences AS s']
    for k, cond in enumerate(conds):
        lines.append(('WHERE ' if k == 0 else '  AND ') + cond[2])
    lines.append('ORDER BY ' + _order(search))
    return '\n'.join(lines)
