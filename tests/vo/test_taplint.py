"""STILTS taplint and votlint against the running server: 0 errors."""
import shutil
import subprocess
import urllib.request

import pytest

pytestmark = pytest.mark.skipif(shutil.which('stilts') is None,
                                reason='STILTS (Debian package stilts) is not installed')


def _report_lines(output, kind):
    return [line for line in output.splitlines() if line.startswith(kind + '-')]


def test_taplint_no_errors(vo_server):
    proc = subprocess.run(['stilts', 'taplint', f'tapurl={vo_server}/tap', 'report=EW',
                           'maxrepeat=4'], capture_output=True, text=True, timeout=300)
    errors = _report_lines(proc.stdout, 'E')
    warnings = _report_lines(proc.stdout, 'W')
    print('\n'.join(warnings))
    assert 'Totals' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert errors == [], '\n'.join(errors)
    assert len(warnings) < 20, '\n'.join(warnings)


@pytest.mark.parametrize('path', [
    '/scs/candidates?RA=0&DEC=0&SR=180',
    '/scs/candidates?RA=0&DEC=0',
    '/sia/query?MAXREC=5',
    '/ssa?REQUEST=queryData&POS=0,0&SIZE=180&MAXREC=5',
    '/tap/sync?LANG=ADQL&QUERY=SELECT+TOP+5+*+FROM+ivoa.obscore',
    '/tap/sync?LANG=ADQL&QUERY=SELECT+TOP+5+*+FROM+ivoa.obscore&RESPONSEFORMAT=votable/b2',
    '/tap/sync?LANG=ADQL&QUERY=SELECT+TOP+5+*+FROM+sphere.sequences',
])
def test_votlint(vo_server, path, tmp_path):
    doc = tmp_path / 'doc.vot'
    with urllib.request.urlopen(vo_server + path) as resp:
        doc.write_bytes(resp.read())
    proc = subprocess.run(['stilts', 'votlint', f'votable={doc}'], capture_output=True,
                          text=True, timeout=120)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if line.startswith(('ERROR', 'WARNING'))]
    assert problems == [], '\n'.join(problems)


def test_votlint_datalink(vo_server, vo_archive, tmp_path):
    pid = vo_archive['products'][1]
    doc = tmp_path / 'links.vot'
    url = f'{vo_server}/datalink/links?ID=ivo://spheredc/products%3F{pid}'
    with urllib.request.urlopen(url) as resp:
        doc.write_bytes(resp.read())
    proc = subprocess.run(['stilts', 'votlint', f'votable={doc}'], capture_output=True,
                          text=True, timeout=120)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if line.startswith(('ERROR', 'WARNING'))]
    assert problems == [], '\n'.join(problems)
