"""The streaming writers: parsed back with astropy, nulls, BINARY2, errors mid-stream."""
import datetime
import io
import math
import warnings

import numpy as np
import pytest
from astropy.io.votable import parse_single_table

from vo.exceptions import QueryError
from vo.tapschema import field_from_column
from vo.votable import (Field, error_document, resolve_format, stcs_polygon, stream_csv,
                        stream_votable)

FIELDS = [Field('id', 'long'), Field('name', 'char', '*'), Field('mag', 'float', unit='mag'),
          Field('ra', 'double', unit='deg', ucd='pos.eq.ra'), Field('ok', 'boolean'),
          Field('t', 'char', '*', 'timestamp'), Field('p', 'double', '2', 'point'),
          Field('n', 'short')]
ROWS = [(1, 'a<b & "c"', 1.5, 10.25, True, datetime.datetime(2020, 1, 2, 3, 4, 5),
         f'({math.radians(10.0)} , {math.radians(-20.0)})', 3),
        (2, None, None, None, None, None, None, None),
        (3, 'ünï', float('nan'), -0.5, False, None, '(0 , 0)', -7)]


def _parse(chunks):
    data = b''.join(chunks)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a clean document has no VOTable warnings
        return parse_single_table(io.BytesIO(data)).to_table(), data


@pytest.mark.parametrize('fmt', ['votable', 'votable/b2'])
def test_roundtrip_with_nulls(fmt):
    table, data = _parse(stream_votable(FIELDS, iter(ROWS), fmt))
    assert list(table['id']) == [1, 2, 3]
    assert table['name'][0] == 'a<b & "c"'
    assert table['name'][2] == ('ünï' if fmt == 'votable' else '?n?')  # char is ASCII
    assert table['mag'][0] == pytest.approx(1.5) and table['mag'].mask[1]
    assert table['ra'].unit == 'deg' and table['ra'][2] == -0.5
    assert bool(table['ok'][0]) and table['ok'].mask[1]
    assert table['t'][0] == '2020-01-02T03:04:05'
    assert np.allclose(table['p'][0], [10.0, -20.0])
    assert table['n'][2] == -7 and table['n'].mask[1]
    assert (b'BINARY2' in data) == (fmt == 'votable/b2')


def test_binary2_many_rows_crosses_batches():
    rows = ((i, f'n{i}', i / 3, i * 0.5, i % 2 == 0, None, None, i % 100)
            for i in range(5003))
    table, _ = _parse(stream_votable(FIELDS, rows, 'votable/b2'))
    assert len(table) == 5003 and table['id'][-1] == 5002 and table['name'][4444] == 'n4444'


def test_overflow_trailer_and_infos():
    data = b''.join(stream_votable(FIELDS[:1], [(1,)], infos=[('QUERY', 'SELECT 1', '')],
                                   trailer=lambda: [('QUERY_STATUS', 'OVERFLOW', '')]))
    text = data.decode()
    assert text.index('value="OK"') < text.index('<TABLE>') < text.index('value="OVERFLOW"')


def test_error_after_streaming_started_ends_with_error_info():
    def rows():
        yield (1,)
        raise QueryError('division by zero')
    for fmt in ('votable', 'votable/b2'):
        data = b''.join(stream_votable(FIELDS[:1], rows(), fmt)).decode()
        assert data.rstrip().endswith('</VOTABLE>')
        assert '<INFO name="QUERY_STATUS" value="ERROR">division by zero</INFO>' in data
        parse_single_table(io.BytesIO(data.encode()))  # still well formed


def test_csv_and_tsv():
    csv_text = b''.join(stream_csv(FIELDS, iter(ROWS), 'csv')).decode()
    lines = csv_text.splitlines()
    assert lines[0] == 'id,name,mag,ra,ok,t,p,n'
    assert lines[1].startswith('1,"a<b & ""c""",1.5,10.25,T,2020-01-02T03:04:05,10.0 -20.0')
    assert lines[2] == '2,,,,,,,'
    tsv = b''.join(stream_csv(FIELDS, [(1, 'a\tb', 1.0, 2.0, True, None, None, 1)],
                              'tsv')).decode().splitlines()
    assert tsv[1].split('\t')[1] == 'a b'


def test_error_document_is_dali():
    table_doc = error_document('bad MAXREC').decode()
    assert '<INFO name="QUERY_STATUS" value="ERROR">bad MAXREC</INFO>' in table_doc
    assert 'RESOURCE type="results"' in table_doc


def test_formats_and_region():
    assert resolve_format(None) == 'votable'
    assert resolve_format('application/x-votable+xml;serialization=BINARY2') == 'votable/b2'
    assert resolve_format('text/csv') == 'csv' and resolve_format('image/png') is None
    rad = [math.radians(v) for v in (10, 20, 11, 20, 11, 21)]
    text = '{(%r , %r),(%r , %r),(%r , %r)}' % tuple(rad)
    assert stcs_polygon(text) == 'Polygon ICRS 10 20 11 20 11 21'


def test_fields_come_from_schemas():
    from archive.schema import table_def

    tdef = table_def('ivoa.obscore')
    s_region = field_from_column(tdef.column('s_region'))
    assert (s_region.datatype, s_region.xtype, s_region.ucd) == ('char', 'adql:REGION',
                                                                 'pos.outline;obs.field')
    em_min = field_from_column(tdef.column('em_min'))
    assert (em_min.unit, em_min.utype) == ('m', 'obscore:Char.SpectralAxis.Coverage.Bounds.'
                                                'Limits.LoLimit')
    pos = field_from_column(table_def('sphere.candidates').column('pos'))
    assert (pos.datatype, pos.arraysize, pos.xtype) == ('double', '2', 'point')
