#!/usr/bin/env python3
"""Cost of one Monitor.observe() from Python, next to the raw ctypes call and to
the C call itself (bench/bench_monitor, run in between: the peer, same run).

    PYTHONPATH=python python3 bench/python_monitor.py [build/bench/bench_monitor]

Prints figures, asserts nothing. Repeats interleaved, reports the minimum.
"""
import ctypes
import math
import platform
import re
import subprocess
import sys
import time

import sgdlab
from sgdlab._lib import lib

N = 200_000
REPS = 5


def curve(n):
    return [2.3 * math.exp(-(i % 5000) / 800) + 0.1 + 0.01 * math.sin(i * 0.7) for i in range(n)]


def per_call(fn, xs):
    t = time.perf_counter()
    for x in xs:
        fn(x)
    return (time.perf_counter() - t) / len(xs) * 1e9


def c_figure(exe):
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    m = re.search(r'healthy\s+no callback\s+([\d.]+) ns', out)
    return float(m.group(1)) if m else float('nan')


def cpu():
    try:
        with open('/proc/cpuinfo') as f:
            info = f.read()
        name = re.search(r'model name\s*:\s*(.*)', info).group(1)
        flags = re.search(r'flags\s*:\s*(.*)', info).group(1).split()
        simd = 'AVX-512' if 'avx512f' in flags else 'AVX2' if 'avx2' in flags else 'SSE'
        return '%s (%s)' % (name, simd)
    except (OSError, AttributeError):
        return platform.processor()


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else None
    xs = curve(N)
    results = {'Monitor.observe (Python)': [], 'raw ctypes sgd_monitor_observe': [], 'C (bench_monitor)': []}
    for _ in range(REPS):
        m = sgdlab.Monitor()
        results['Monitor.observe (Python)'].append(per_call(m.observe, xs))
        m2 = sgdlab.Monitor()
        h, a, s = m2._h, ctypes.c_int32(), ctypes.c_double()
        f, ra, rs = lib.sgd_monitor_observe, ctypes.byref(a), ctypes.byref(s)
        results['raw ctypes sgd_monitor_observe'].append(per_call(lambda x: f(h, x, -1.0, -1.0, ra, rs), xs))
        if exe:
            results['C (bench_monitor)'].append(c_figure(exe))
    print('Monitor.observe overhead, %d calls x %d repetitions (minimum), %s; machine shared with other builds'
          % (N, REPS, cpu()))
    for k, v in results.items():
        if v:
            print('  %-34s %8.1f ns/call' % (k, min(v)))


if __name__ == '__main__':
    main()
