"""Loading, versions, errors and their messages."""
import os
import subprocess
import sys

import pytest

import sgdlab
from sgdlab import errors
from conftest import expect


def test_version():
    assert sgdlab.version() == '0.2.0'
    assert sgdlab.version_number() == 200
    assert sgdlab.__version__ == '0.2.0'
    info = sgdlab.library_info()
    assert info.version == sgdlab.version()
    assert info.found_by in ('SGDLAB_LIBRARY', 'installed', 'build tree')
    assert os.path.exists(info.path), info.path
    assert 'libsgdlab 0.2.0 from' in str(info)


def run_py(code, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([sys.executable, '-c', code], env=e, capture_output=True, text=True)


def test_found_by_env_and_bad_path():
    r = run_py('import sgdlab; print(sgdlab.library_info().found_by)')
    assert r.returncode == 0, r.stderr
    if 'SGDLAB_LIBRARY' in os.environ:
        assert r.stdout.strip() == 'SGDLAB_LIBRARY'
    r = run_py('import sgdlab', SGDLAB_LIBRARY='/nonexistent/libsgdlab.so.0')
    assert r.returncode != 0
    assert 'SGDLAB_LIBRARY=/nonexistent/libsgdlab.so.0 cannot be loaded' in r.stderr


@pytest.mark.skipif(os.environ.get('SGDLAB_TEST_SANITIZED') == '1',
                    reason='a sanitizer build is never picked from the build tree')
def test_found_in_build_tree_without_env():
    e = {k: v for k, v in os.environ.items() if k != 'SGDLAB_LIBRARY'}
    r = subprocess.run([sys.executable, '-m', 'sgdlab'], env=e, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'found by:' in r.stdout and 'libsgdlab 0.2.0' in r.stdout


def test_version_check(tmp_path):
    # A package that asks for a later minor refuses this library, with a message.
    code = ('import sgdlab._lib as L\n'
            'L.PACKAGE_VERSION = "0.9.0"\n'
            'try:\n  L.load()\nexcept Exception as e:\n  print(type(e).__name__, e)\n')
    r = run_py('import sys; sys.modules.pop("sgdlab", None)\n' + code)
    assert 'VersionError' in r.stdout or 'ImportError' in r.stdout, r.stdout + r.stderr
    assert '0.9' in r.stdout


def test_status_str():
    assert sgdlab.status_str(-1).startswith('SGD_EINVAL')
    assert sgdlab.status_str(12345) == 'unknown status'


@pytest.mark.parametrize('status', sorted(errors.BY_STATUS))
def test_error_classes(status):
    e = errors.error_for(status, 'msg')
    assert e.status == status and e.message == 'msg'
    assert isinstance(e, sgdlab.Error)
    assert e.name == sgdlab.status_str(status).split(':')[0]


def test_errors_carry_the_library_message():
    e = expect(sgdlab.RangeError, 'sgd_optim_new: beta2=1: must be in [0, 1)', sgdlab.Optimizer, 'adam:beta2=1', 4)
    assert e.status == errors.ERANGE and e.name == 'SGD_ERANGE'
    assert isinstance(e, ValueError)
    expect(sgdlab.NotFoundError, "bogus", sgdlab.Optimizer, 'bogus', 4)
    e = expect(sgdlab.NotFoundError, "unknown key 'zz'", sgdlab.Schedule, 'cosine:T_max=5,zz=1', 0.1)
    assert isinstance(e, LookupError)
    expect(sgdlab.InvalidArgumentError, 'sgd_model_from_spec', sgdlab.Model, '2-x-3')
    expect(sgdlab.IOFailure, '/nonexistent', sgdlab.Idx.read, '/nonexistent/file')
    expect(sgdlab.FormatError, 'sgd_idx_read_memory', sgdlab.Idx.from_bytes, b'\x00\x00\x08\x01')
    # The message is cleared after it was raised: the next error has its own.
    expect(sgdlab.RangeError, 'T_max=0', sgdlab.Schedule, 'cosine:T_max=0', 0.1)


def test_coverage_of_the_exported_functions():
    """Every function the library exports is declared by the package."""
    from sgdlab._lib import PROTOTYPES
    path = os.environ.get('SGDLAB_MAP')
    if not path:
        pytest.skip('SGDLAB_MAP is not set (meson test sets it)')
    import re
    with open(path) as f:
        text = re.sub(r'/\*.*?\*/', '', f.read(), flags=re.S)
    exported = set(re.findall(r'\b(sgd_\w+)\s*;', text))
    missing = sorted(exported - set(PROTOTYPES))
    assert not missing, 'not declared in python/sgdlab/_lib.py PROTOTYPES: %s' % missing
    assert not sgdlab.lib.missing, sgdlab.lib.missing
