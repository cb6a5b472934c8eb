"""Numba kernels: plain loops over flat arrays, with no Tensor in sight.

Each kernel module writes its kernels as Python functions named ``_name`` (the reference, and what
runs under ``NUMBA_DISABLE_JIT=1``); the module attribute ``name`` is the jitted version, compiled on
first access. So ``import minigrad`` neither imports Numba nor compiles anything.
"""
