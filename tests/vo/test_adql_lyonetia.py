"""Conformance on the IVOA lyonetia test queries (valid accepted, invalid rejected)."""
import glob
import os
import xml.etree.ElementTree as ET

import pytest

from vo import adql

LYONETIA = '/work/shared/data/lyonetia'


def test_lyonetia_score():
    paths = sorted(glob.glob(os.path.join(LYONETIA, '*', '*.xml')))
    if not paths:
        pytest.skip('lyonetia test queries not available')
    right = total = 0
    wrong = []
    for path in paths:
        for q in ET.parse(path).getroot().iter('query'):
            a = q.find('adql')
            if a is None:
                continue
            valid = a.get('valid', 'true') == 'true'
            try:
                adql.to_sql((a.text or '').strip())
                ok = valid
            except adql.ADQLSyntaxError:
                ok = not valid
            except adql.ADQLError:
                ok = False
            total += 1
            right += ok
            if not ok:
                wrong.append(' '.join((a.text or '').split())[:100])
    assert right / total >= 0.98, wrong
