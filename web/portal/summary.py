"""What the observation page says, computed from the rows of `web.portal.records`.

Pure functions: rows (dicts) in, small structures for the template out:
exposure setups (DIT x NDIT), the range of a condition, the calibration
status in words (sentences from `ingest.words`), the products by role, and
the provenance split into the sequence's own inputs and the calibrations.
"""
import collections
import datetime

__all__ = ['exposures', 'value_range', 'calibration_words', 'candidate_label',
           'picture_filters', 'downloads', 'provenance_groups', 'safe_file_stem',
           'is_proprietary', 'mjd_utc', 'filesize']

_STATUS_WORDS = {
    'complete': ('good', 'All the calibrations this sequence needs were found.'),
    'complete_with_warnings': ('warn', 'All the calibrations were found, some with a '
                               'reservation (a substitute, or taken far in time): the '
                               'products are usable, with the caveats below.'),
    'incomplete': ('bad', 'Some calibrations are missing: the products were made without '
                   'them, and what that costs is said below.'),
    'not_required': ('good', 'No calibration is needed: the files were already '
                     'calibrated by an upstream pipeline.'),
}

#: Product types, in the order the downloads list shows them.
_TYPE_ORDER = ('hci_fits', 'final_image', 'snr_map', 'contrast_curve', 'spectrum',
               'master_cube', 'psf_cube', 'frame_table', 'preview')


def exposures(raw_rows):
    """Exposure setups of the sequence's files, by type and DIT.

    Parameters
    ----------
    raw_rows : list of dict
        ``dpr_type``, ``dit``, ``ndit``, ``exptime``.

    Returns
    -------
    list of dict
        ``dpr_type``, ``dit_s``, ``ndit``, ``n_files``, ``total_s`` (DIT x NDIT
        summed over the files), OBJECT first.
    """
    groups = collections.OrderedDict()
    for r in raw_rows:
        key = (r.get('dpr_type') or '?', r.get('dit'), r.get('ndit'))
        g = groups.setdefault(key, {'dpr_type': key[0], 'dit_s': key[1], 'ndit': key[2],
                                    'n_files': 0, 'total_s': 0.0})
        g['n_files'] += 1
        if key[1] is not None and key[2] is not None:
            g['total_s'] += key[1] * key[2]
    return sorted(groups.values(), key=lambda g: (g['dpr_type'] != 'OBJECT', g['dpr_type'],
                                                  g['dit_s'] or 0.0))


def value_range(rows, key):
    """(min, max) of a column over rows, ignoring missing values; None if none."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return (min(values), max(values)) if values else None


def calibration_words(sequence):
    """The calibration status in plain words.

    Parameters
    ----------
    sequence : dict
        ``calib_status``, ``missing_calibrations``, ``calib_warnings``,
        ``quality_flags``.

    Returns
    -------
    dict
        ``tone`` ('good', 'warn', 'bad'), ``status`` (a sentence), ``missing``,
        ``warnings`` and ``flags``: lists of (code, sentence).
    """
    from ingest.words import describe_flag, describe_missing, describe_warning

    status = sequence.get('calib_status')
    tone, text = _STATUS_WORDS.get(status, ('warn', f'Calibration status: {status or "unknown"}.'))
    return {
        'tone': tone, 'status': text,
        'missing': [(c, describe_missing(c)) for c in sequence.get('missing_calibrations') or ()],
        'warnings': [(w, describe_warning(w)) for w in sequence.get('calib_warnings') or ()],
        'flags': [(f, describe_flag(f)) for f in sequence.get('quality_flags') or ()],
    }


def candidate_label(candidate_id):
    """Short label of a candidate on pictures and in tables ('c1' of '<seq>.H2.c1')."""
    return candidate_id.rsplit('.', 1)[-1]


def picture_filters(products, product_type):
    """Filters that have a FITS product of ``product_type`` (final_image, snr_map)."""
    return [p['filter'] for p in products if p['product_type'] == product_type
            and p['content_type'] == 'application/fits' and p['filter']]


def downloads(products):
    """Products in the order the page lists them (HCI-FITS first, previews last)."""
    rank = {t: k for k, t in enumerate(_TYPE_ORDER)}
    return sorted(products, key=lambda p: (rank.get(p['product_type'], len(rank)),
                                           p['content_type'] != 'application/fits',
                                           p['filter'] or '', p['product_id']))


def provenance_groups(inputs):
    """Split the inputs of `web.portal.records.provenance`.

    Returns
    -------
    dict
        ``raw_roles``: arcfile -> sorted roles for the raw files the sequence's
        products used directly; ``calibrations``: calibration products used
        (dicts, with ``n_raw``, the number of raw frames they were made from);
        ``run_ids``: runs that wrote those calibrations.
    """
    raw_roles = collections.defaultdict(set)
    calibrations = {}
    for i in inputs:
        if i['input_kind'] == 'raw':
            if i['for_sequence']:  # not the frames the shared calibrations were made of
                raw_roles[i['input_id']].add(i['role'])
        elif i['input_sequence_id'] is None:  # shared calibration product
            calibrations.setdefault(i['input_id'], dict(i, roles=set()))['roles'].add(i['role'])
    for c in calibrations.values():
        c['roles'] = sorted(c['roles'])
    return {'raw_roles': {k: sorted(v) for k, v in raw_roles.items()},
            'calibrations': sorted(calibrations.values(),
                                   key=lambda c: (c['product_type'] or '', c['input_id'])),
            'run_ids': sorted({c['run_id'] for c in calibrations.values() if c['run_id']})}


def safe_file_stem(text):
    """A file-name stem from an identifier (``:`` and other odd characters become ``-``)."""
    import re

    return re.sub(r'[^A-Za-z0-9._-]+', '-', text).strip('-.') or 'download'


def is_proprietary(release_date, now=None):
    """True while ``release_date`` (naive UTC) is in the future."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return release_date is not None and release_date > now


_MJD0 = datetime.datetime(1858, 11, 17)


def mjd_utc(mjd):
    """An MJD (UTC) as 'YYYY-MM-DD HH:MM:SS'."""
    return (_MJD0 + datetime.timedelta(days=float(mjd))).strftime('%Y-%m-%d %H:%M:%S')


def filesize(n_bytes):
    """A size in bytes for people: '812 B', '3.4 MB' (powers of 1000)."""
    n = float(n_bytes or 0)
    for unit in ('B', 'kB', 'MB', 'GB', 'TB'):
        if n < 1000 or unit == 'TB':
            return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1000.0
