"""VOSI 1.1: availability, capabilities (with TAPRegExt 1.0) and tables documents.

Each function returns the XML text of one document; the capabilities of
every service are described by `Capability` objects so that TAP, SCS, SIA2,
SSA and DataLink share the writer.
"""
import dataclasses
from xml.sax.saxutils import escape, quoteattr

from .tapschema import FOREIGN_KEYS, adql_name, published_tables, votable_type

__all__ = ['Capability', 'availability_xml', 'capabilities_xml', 'tap_capability',
           'vosi_capabilities', 'tableset_xml', 'table_xml']

_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_XML = '<?xml version="1.0" encoding="UTF-8"?>\n'

ADQL_FEATURES = {
    'ivo://ivoa.net/std/TAPRegExt#features-adqlgeo':
        ['POINT', 'CIRCLE', 'BOX', 'POLYGON', 'REGION', 'CENTROID', 'AREA', 'CONTAINS',
         'INTERSECTS', 'DISTANCE', 'COORD1', 'COORD2', 'COORDSYS'],
    'ivo://ivoa.net/std/TAPRegExt#features-adql-string': ['LOWER', 'ILIKE'],
    'ivo://ivoa.net/std/TAPRegExt#features-adql-sets': ['UNION', 'EXCEPT', 'INTERSECT'],
    'ivo://ivoa.net/std/TAPRegExt#features-adql-common-table': ['WITH'],
    'ivo://ivoa.net/std/TAPRegExt#features-adql-type': ['CAST'],
    'ivo://ivoa.net/std/TAPRegExt#features-adql-unit': ['IN_UNIT'],
    'ivo://ivoa.net/std/TAPRegExt#features-adql-offset': ['OFFSET'],
}

UDFS = (
    ('ivo_healpix_index(hpxOrder INTEGER, ra DOUBLE PRECISION, dec DOUBLE PRECISION) -> BIGINT',
     'HEALPix index (NESTED scheme) of the position (ra, dec) in degrees at the given '
     'order; sky_position tables have healpix_nest at order 29.'),
    ('ivo_hashlist_has(hashlist TEXT, item TEXT) -> INTEGER',
     '1 if item is one of the #-separated words of hashlist (case-insensitive), else 0; '
     'array columns such as quality_flags are written as such lists.'),
)


@dataclasses.dataclass(frozen=True)
class Capability:
    """One capability element: a standard and the URL it is reached at."""

    standard_id: str
    url: str
    use: str = 'full'
    interface: str = 'vs:ParamHTTP'
    role: str = ''
    extra_type: str = ''
    body: str = ''


def availability_xml(available, note=''):
    """VOSI availability document.

    Parameters
    ----------
    available : bool
    note : str, optional
    """
    return (f'{_XML}<avl:availability xmlns:avl="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
            f'<avl:available>{"true" if available else "false"}</avl:available>'
            + (f'<avl:note>{escape(note)}</avl:note>' if note else '')
            + '</avl:availability>\n')


def capabilities_xml(capabilities):
    """VOSI capabilities document of a list of `Capability`."""
    out = [_XML, '<cap:capabilities xmlns:cap="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
           'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
           'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
           f'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0" {_XSI}>\n']
    for cap in capabilities:
        kind = f' xsi:type="{cap.extra_type}"' if cap.extra_type else ''
        out.append(f'<capability standardID={quoteattr(cap.standard_id)}{kind}>\n')
        role = f' role="{cap.role}"' if cap.role else ''
        out.append(f'<interface xsi:type="{cap.interface}"{role}'
                   + (' version="1.1"' if cap.role == 'std' and 'TAP' in cap.standard_id
                      else '')
                   + f'><accessURL use="{cap.use}">{escape(cap.url)}</accessURL></interface>\n')
        out.append(cap.body)
        out.append('</capability>\n')
    out.append('</cap:capabilities>\n')
    return ''.join(out)


def vosi_capabilities(base):
    """The VOSI capabilities of a service at ``base`` (capabilities, availability, tables)."""
    return [Capability('ivo://ivoa.net/std/VOSI#capabilities', f'{base}/capabilities'),
            Capability('ivo://ivoa.net/std/VOSI#availability', f'{base}/availability')]


def _tap_body(limits):
    lang = ['<language><name>ADQL</name>'
            '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
            '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
            '<description>ADQL 2.1, translated to PostgreSQL with pg_sphere.</description>'
            '<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-udf">']
    for form, text in UDFS:
        lang.append(f'<feature><form>{escape(form)}</form>'
                    f'<description>{escape(text)}</description></feature>')
    lang.append('</languageFeatures>')
    for kind, forms in ADQL_FEATURES.items():
        lang.append(f'<languageFeatures type="{kind}">'
                    + ''.join(f'<feature><form>{f}</form></feature>' for f in forms)
                    + '</languageFeatures>')
    lang.append('</language>\n')
    formats = [('ivo://ivoa.net/std/TAPRegExt#output-votable-td', 'application/x-votable+xml',
                'votable'),
               ('ivo://ivoa.net/std/TAPRegExt#output-votable-binary2',
                'application/x-votable+xml;serialization=binary2', 'votable/b2'),
               ('', 'text/csv;header=present', 'csv'),
               ('', 'text/tab-separated-values', 'tsv')]
    out = ['<dataModel ivo-id="ivo://ivoa.net/std/ObsCore#core-1.1">ObsCore-1.1</dataModel>\n']
    out.extend(lang)
    for ivo_id, mime, alias in formats:
        attr = f' ivo-id="{ivo_id}"' if ivo_id else ''
        out.append(f'<outputFormat{attr}><mime>{escape(mime)}</mime><alias>{alias}</alias>'
                   '</outputFormat>\n')
    for method in ('inline', 'http', 'https'):
        out.append(f'<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-{method}"/>\n')
    retention = limits.destruction_days * 86400
    out.append(f'<retentionPeriod><default>{retention}</default><hard>{retention}</hard>'
               '</retentionPeriod>\n'
               f'<executionDuration><default>{limits.async_default_s}</default>'
               f'<hard>{limits.async_hard_s}</hard></executionDuration>\n'
               f'<outputLimit><default unit="row">{limits.default_maxrec}</default>'
               f'<hard unit="row">{limits.hard_maxrec}</hard></outputLimit>\n'
               f'<uploadLimit><default unit="byte">{limits.upload_bytes}</default>'
               f'<hard unit="byte">{limits.upload_bytes}</hard></uploadLimit>\n')
    return ''.join(out)


def tap_capability(base, limits):
    """All capabilities of the TAP service at ``base`` (TAP, VOSI, DALI examples)."""
    return [Capability('ivo://ivoa.net/std/TAP', base, use='base', role='std',
                       extra_type='tr:TableAccess', body=_tap_body(limits)),
            *vosi_capabilities(base),
            Capability('ivo://ivoa.net/std/VOSI#tables-1.1', f'{base}/tables', use='base'),
            Capability('ivo://ivoa.net/std/DALI#examples', f'{base}/examples',
                       interface='vr:WebBrowser')]


def _column_xml(tdef, c):
    datatype, arraysize, xtype = votable_type(c)
    attrs = f' arraysize="{arraysize}"' if arraysize else ''
    attrs += f' extendedType="{xtype}"' if xtype else ''
    parts = [f'<column{" std=" + chr(34) + "true" + chr(34) if c.std else ""}>',
             f'<name>{escape(adql_name(c.name))}</name>']
    if c.description:
        parts.append(f'<description>{escape(c.description)}</description>')
    for key in ('unit', 'ucd', 'utype'):
        if getattr(c, key):
            parts.append(f'<{key}>{escape(getattr(c, key))}</{key}>')
    parts.append(f'<dataType xsi:type="vs:VOTableType"{attrs}>{datatype}</dataType>')
    if c.indexed or c.name in tdef.primary_key[:1]:
        parts.append('<flag>indexed</flag>')
    if c.name in tdef.primary_key:
        parts.append('<flag>primary</flag>')
    if c.nullable and c.name not in tdef.primary_key:
        parts.append('<flag>nullable</flag>')
    parts.append('</column>')
    return ''.join(parts)


def _table_xml(tdef, detail, tag='table', ns=''):
    kind = 'view' if tdef.kind == 'view' else 'base_table'
    out = [f'<{tag}{ns} type="{kind}"><name>{tdef.qualified_name}</name>',
           f'<description>{escape(tdef.description)}</description>']
    if detail != 'min':
        out.extend(_column_xml(tdef, c) for c in tdef.columns)
        for key_id, from_table, target, pairs, text in FOREIGN_KEYS:
            if from_table == tdef.qualified_name:
                out.append(f'<foreignKey><targetTable>{target}</targetTable>'
                           + ''.join(f'<fkColumn><fromColumn>{adql_name(a)}</fromColumn>'
                                     f'<targetColumn>{adql_name(b)}</targetColumn></fkColumn>'
                                     for a, b in pairs)
                           + f'<description>{escape(text)}</description></foreignKey>')
    out.append(f'</{tag}>\n')
    return ''.join(out)


def tableset_xml(detail='max'):
    """VOSI tableset of the published tables (``detail='min'``: no columns)."""
    from .tapschema import SCHEMA_DESCRIPTIONS

    out = [_XML, '<vtm:tableset xmlns:vtm="http://www.ivoa.net/xml/VOSITables/v1.0" '
           f'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" {_XSI}>\n']
    current = None
    for tdef in published_tables():
        if tdef.schema != current:
            if current is not None:
                out.append('</schema>\n')
            current = tdef.schema
            out.append(f'<schema><name>{current}</name><description>'
                       f'{escape(SCHEMA_DESCRIPTIONS.get(current, ""))}</description>\n')
        out.append(_table_xml(tdef, detail))
    out.append('</schema>\n</vtm:tableset>\n')
    return ''.join(out)


def table_xml(name):
    """VOSI document of one published table, or None when there is no such table."""
    for tdef in published_tables():
        if tdef.qualified_name.lower() == name.lower():
            ns = (' xmlns:vtm="http://www.ivoa.net/xml/VOSITables/v1.0" '
                  f'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" {_XSI}')
            return _XML + _table_xml(tdef, 'max', tag='vtm:table', ns=ns)
    return None
