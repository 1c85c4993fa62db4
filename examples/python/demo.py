#!/usr/bin/env python3
"""Calls libsgdlab from Python through the ctypes binding next to this file.

    SGDLAB_LIBRARY=/path/to/libsgdlab.so.0 python3 demo.py
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import sgdlab  # noqa: E402

lib = sgdlab.load()
print('libsgdlab', lib.sgd_version_string().decode())
print(lib.sgd_status_str(-4).decode())
