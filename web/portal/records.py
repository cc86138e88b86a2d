"""What the portal reads from the archive, always as the viewer (row-level security).

Every function takes the `vo.query.QueryPool` and runs its SELECT through
``pool.fetch``, i.e. as ``spheredc_reader`` for the user of the request, so
proprietary rows the viewer may not see are simply absent: a sequence that
does not exist and one that is private look the same. Rows come back as
dicts (column name -> value); one query per kind of row, never one per row.
"""

__all__ = ['archive_counts', 'distinct_values', 'search_page', 'sequence', 'raw_files',
           'products', 'product', 'candidates', 'candidate', 'spectrum_product', 'provenance',
           'calib_associations', 'runs', 'detection_limits']

_SEQUENCE_COLS = ('sequence_id', 'arm', 'ins_mode', 'filter', 'coronagraph', 'derot_mode',
                  'target_name', 'ra', 'dec', 'night', 'mjd_start', 'mjd_end', 'prog_id',
                  'release_date', 'obs_id', 'level', 'n_files', 'n_object', 'n_center',
                  'n_flux', 'n_sky', 'exptime_object', 'field_rotation_deg', 'seeing_arcsec',
                  'tau0_s', 'calib_status', 'missing_calibrations', 'calib_warnings',
                  'quality_flags', 'updated_at')
_PRODUCT_COLS = ('product_id', 'product_type', 'level', 'sequence_id', 'version', 'filter',
                 'file_name', 'path', 'content_type', 'checksum', 'size_bytes', 'recipe',
                 'recipe_version', 'run_id', 'pixscale_arcsec', 'created_at', 'quality_flags',
                 'target_name')
_CANDIDATE_COLS = ('candidate_id', 'sequence_id', 'product_id', 'target_name', 'filter',
                   'algorithm', 'sep_arcsec', 'sep_err_arcsec', 'pa_deg', 'pa_err_deg',
                   'contrast_mag', 'contrast_err_mag', 'snr', 'x_px', 'y_px', 'epoch_mjd')


def _dicts(cols, rows):
    return [dict(zip(cols, row)) for row in rows]


def _select(cols):
    return ', '.join(cols)


def archive_counts(pool):
    """Sequences, targets and nights the viewer may see: a dict."""
    (row,) = pool.fetch('SELECT count(*), count(DISTINCT target_name), count(DISTINCT night) '
                        'FROM sphere.sequences')
    return dict(zip(('sequences', 'targets', 'nights'), row))


def distinct_values(pool):
    """Target names and the values the form suggests: dict of column -> sorted list."""
    cols = ('target_name', 'arm', 'ins_mode', 'filter', 'coronagraph')
    (row,) = pool.fetch('SELECT ' + ', '.join(
        f'array_remove(array_agg(DISTINCT {c} ORDER BY {c}), NULL)' for c in cols)
        + ' FROM sphere.sequences')
    values = {c: list(v or ()) for c, v in zip(cols, row)}  # no rows: NULL arrays
    values['survey'] = [r[0] for r in pool.fetch(
        'SELECT DISTINCT survey FROM sphere.programmes WHERE survey IS NOT NULL ORDER BY 1')]
    return values


def survey_programmes(pool, survey):
    """Programmes (or runs) of a survey, matched without regard to case."""
    return [r[0] for r in pool.fetch('SELECT prog_id FROM sphere.programmes '
                                     'WHERE lower(survey) = lower(%s) ORDER BY 1', (survey,))]


def search_page(pool, search, names=(), programmes=()):
    """(rows, total) of one page of a `web.portal.search.Search`."""
    from .search import RESULT_COLUMNS, results_sql

    sql, params = results_sql(search, names, programmes)
    rows = _dicts(RESULT_COLUMNS, pool.fetch(sql, params))
    return rows, (rows[0]['total'] if rows else None)


def sequence(pool, sequence_id):
    """The sequence as a dict, or None (absent, or not visible to the viewer)."""
    rows = pool.fetch(f'SELECT {_select(_SEQUENCE_COLS)} FROM sphere.sequences '
                      'WHERE sequence_id = %s', (sequence_id,))
    return _dicts(_SEQUENCE_COLS, rows)[0] if rows else None


def raw_files(pool, sequence_id):
    """The sequence's own raw files (science, centre, flux, sky), in time order."""
    cols = ('arcfile', 'file_name', 'dpr_type', 'dit', 'ndit', 'exptime', 'mjd_obs',
            'airmass', 'seeing_arcsec', 'tau0_s', 'ao_loop_closed', 'size_bytes')
    return _dicts(cols, pool.fetch(f'SELECT {_select(cols)} FROM sphere.raw_files '
                                   'WHERE sequence_id = %s ORDER BY mjd_obs, arcfile',
                                   (sequence_id,)))


def products(pool, sequence_id):
    """Current products of a sequence, by level, type and filter."""
    return _dicts(_PRODUCT_COLS, pool.fetch(
        f'SELECT {_select(_PRODUCT_COLS)} FROM sphere.products '
        'WHERE sequence_id = %s AND is_current '
        'ORDER BY level, product_type, filter NULLS FIRST, product_id', (sequence_id,)))


def product(pool, product_id):
    """One product as a dict, or None."""
    rows = pool.fetch(f'SELECT {_select(_PRODUCT_COLS)} FROM sphere.products '
                      'WHERE product_id = %s', (product_id,))
    return _dicts(_PRODUCT_COLS, rows)[0] if rows else None


def candidates(pool, sequence_id):
    """Candidates of a sequence, by filter then separation."""
    return _dicts(_CANDIDATE_COLS, pool.fetch(
        f'SELECT {_select(_CANDIDATE_COLS)} FROM sphere.candidates WHERE sequence_id = %s '
        'ORDER BY filter, sep_arcsec, candidate_id', (sequence_id,)))


def candidate(pool, candidate_id):
    """One candidate as a dict, or None."""
    rows = pool.fetch(f'SELECT {_select(_CANDIDATE_COLS)} FROM sphere.candidates '
                      'WHERE candidate_id = %s', (candidate_id,))
    return _dicts(_CANDIDATE_COLS, rows)[0] if rows else None


def spectrum_product(pool, candidate_id):
    """The current spectrum product of a candidate, or None.

    A spectrum belongs to the candidate whose identifier starts its product_id
    (``<candidate_id>.spectrum...``).
    """
    rows = pool.fetch(
        f'SELECT {_select(_PRODUCT_COLS)} FROM sphere.products '
        "WHERE product_type = 'spectrum' AND is_current AND starts_with(product_id, %s) "
        'ORDER BY version DESC LIMIT 1', (candidate_id + '.',))
    return _dicts(_PRODUCT_COLS, rows)[0] if rows else None


def provenance(pool, sequence_id):
    """Every input of the sequence's current products, direct or not.

    Returns
    -------
    list of dict
        ``input_kind`` ('raw' or 'product'), ``input_id``, ``role``,
        ``for_sequence`` (True when a product of the sequence used it, False when
        a calibration product shared by several sequences did), and for
        products their ``product_type``, ``sequence_id``, ``file_name``,
        ``run_id``, ``recipe``, ``recipe_version``; for raw files ``dpr_type``
        and ``file_name``. Inputs the viewer may not see keep their identifier
        only.
    """
    cols = ('input_kind', 'input_id', 'role', 'for_sequence', 'product_type',
            'input_sequence_id', 'file_name', 'run_id', 'recipe', 'recipe_version', 'dpr_type',
            'raw_file_name')
    return _dicts(cols, pool.fetch(
        'WITH RECURSIVE inputs(product_id, input_kind, input_id, role) AS ('
        ' SELECT i.product_id, i.input_kind, i.input_id, i.role FROM sphere.product_inputs i'
        ' JOIN sphere.products p ON p.product_id = i.product_id'
        ' WHERE p.sequence_id = %s AND p.is_current'
        ' UNION SELECT i.product_id, i.input_kind, i.input_id, i.role'
        ' FROM sphere.product_inputs i JOIN inputs ON i.product_id = inputs.input_id'
        "  AND inputs.input_kind = 'product') "
        'SELECT DISTINCT i.input_kind, i.input_id, i.role, c.sequence_id IS NOT NULL, '
        ' p.product_type, p.sequence_id, p.file_name, p.run_id, p.recipe, p.recipe_version, '
        ' r.dpr_type, r.file_name '
        'FROM inputs i JOIN sphere.products c ON c.product_id = i.product_id '
        "LEFT JOIN sphere.products p ON i.input_kind = 'product' AND p.product_id = i.input_id "
        "LEFT JOIN sphere.raw_files r ON i.input_kind = 'raw' AND r.arcfile = i.input_id "
        'ORDER BY 1, 4 DESC, 3, 2', (sequence_id,)))


def calib_associations(pool, sequence_id):
    """Calibration files associated with the sequence at ingest."""
    cols = ('role', 'calib_key', 'arcfile', 'dpr_type', 'delta_days', 'is_far')
    return _dicts(cols, pool.fetch(f'SELECT {_select(cols)} FROM sphere.calib_associations '
                                   'WHERE sequence_id = %s ORDER BY role, calib_key, arcfile',
                                   (sequence_id,)))


def runs(pool, sequence_id, run_ids=()):
    """Processing runs of the sequence, and the runs that wrote the calibrations it used."""
    cols = ('run_id', 'recipe', 'recipe_version', 'pipeline_version', 'status', 'error',
            'started_at', 'finished_at', 'duration_s', 'sequence_id')
    return _dicts(cols, pool.fetch(
        f'SELECT {_select(cols)} FROM sphere.runs WHERE sequence_id = %s OR run_id = ANY(%s) '
        'ORDER BY started_at NULLS LAST, run_id', (sequence_id, list(run_ids))))


def detection_limits(pool, sequence_id):
    """The sequence's 5-sigma contrast curves: rows by filter, algorithm, separation."""
    cols = ('filter', 'algorithm', 'sep_arcsec', 'contrast_5sigma', 'contrast_mag_5sigma',
            'throughput', 'product_id')
    return _dicts(cols, pool.fetch(
        f'SELECT {_select(cols)} FROM sphere.detection_limits WHERE sequence_id = %s '
        'ORDER BY filter, algorithm, sep_arcsec', (sequence_id,)))
