"""TAP examples (DALI 1.1 section 2.3): an XHTML document with RDFa markup.

Real science queries on our tables; taplint runs each of them, and
``tests/vo/test_tap_sync.py`` checks they translate.
"""
from xml.sax.saxutils import escape

__all__ = ['EXAMPLES', 'examples_xhtml']

#: (id, name, explanation, tables, ADQL)
EXAMPLES = (
    ('companions-near-star', 'Companion candidates around a position',
     'Candidates detected within 2 degrees of a sky position, brightest contrast first.',
     ('sphere.candidates',),
     "SELECT candidate_id, target_name, sep_arcsec, pa_deg, contrast_mag, snr\n"
     "FROM sphere.candidates\n"
     "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 180.0, -30.0, 2.0))\n"
     "ORDER BY contrast_mag"),
    ('deep-limits', 'Deepest 5-sigma contrast at 0.5 arcsec',
     'For each target, the best 5-sigma contrast reached between 0.45 and 0.55 arcsec.',
     ('sphere.detection_limits',),
     "SELECT target_name, MAX(contrast_mag_5sigma) AS best_contrast_mag\n"
     "FROM sphere.detection_limits\n"
     "WHERE sep_arcsec BETWEEN 0.45 AND 0.55\n"
     "GROUP BY target_name"),
    ('adi-sequences', 'Pupil-tracking sequences with a large field rotation',
     'Sequences good for angular differential imaging, with their calibration status.',
     ('sphere.sequences',),
     "SELECT TOP 100 sequence_id, target_name, filter, field_rotation_deg, calib_status\n"
     "FROM sphere.sequences\n"
     "WHERE field_rotation_deg > 10\n"
     "ORDER BY field_rotation_deg DESC"),
    ('obscore-images', 'Reduced images in ObsCore',
     'Post-processed images (calibration level 3) with their DataLink access URL.',
     ('ivoa.obscore',),
     "SELECT obs_publisher_did, target_name, s_ra, s_dec, t_min, em_min, em_max, access_url\n"
     "FROM ivoa.obscore\n"
     "WHERE dataproduct_type = 'image' AND calib_level = 3"),
    ('raw-per-night', 'Raw files per night and arm',
     'How many raw files each night brought, by instrument arm and category.',
     ('sphere.raw_files',),
     "SELECT night, arm, dpr_catg, COUNT(*) AS n_files\n"
     "FROM sphere.raw_files\n"
     "GROUP BY night, arm, dpr_catg\n"
     "ORDER BY night, arm"),
)


def examples_xhtml(tap_url):
    """The examples document.

    Parameters
    ----------
    tap_url : str
        Base URL of the TAP service (named in the document).

    Returns
    -------
    str
        XHTML+RDFa 1.1.
    """
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n'
           '<html xmlns="http://www.w3.org/1999/xhtml" version="XHTML+RDFa 1.1">\n'
           '<head><title>spheredc TAP examples</title></head>\n'
           '<body vocab="http://www.ivoa.net/rdf/examples#">\n'
           f'<h1>Example queries for {escape(tap_url)}</h1>\n']
    for ex_id, name, text, tables, query in EXAMPLES:
        out.append(f'<div typeof="example" id="{ex_id}" resource="#{ex_id}">\n'
                   f'<h2 property="name">{escape(name)}</h2>\n<p>{escape(text)}</p>\n'
                   + ''.join(f'<p>Table: <span property="table">{t}</span></p>\n'
                             for t in tables)
                   + f'<pre property="query">{escape(query)}</pre>\n</div>\n')
    out.append('</body>\n</html>\n')
    return ''.join(out)
