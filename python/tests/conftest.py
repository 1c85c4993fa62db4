"""Shared fixtures of the sgdlab package's tests (run by `meson test`, suite python)."""
import os

import numpy as np
import pytest

SANITIZED = os.environ.get('SGDLAB_TEST_SANITIZED') == '1'


def spirals(n=300, classes=3, seed=0):
    """A small classification set: interleaved spirals in 2-D."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.3, 3.3, n)
    c = rng.integers(0, classes, n)
    a = t * 2.5 + c * (2 * np.pi / classes)
    x = np.stack([t * np.cos(a), t * np.sin(a)], 1) + 0.05 * rng.standard_normal((n, 2))
    return x.astype(np.float32), c.astype(np.int32)


@pytest.fixture
def data():
    return spirals()


def expect(exc_type, needle, fn, *args, **kw):
    """Runs fn, expecting exc_type with needle in its message; returns the exception."""
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    assert needle in str(info.value), (needle, str(info.value))
    return info.value
