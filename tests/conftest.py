"""Shared test settings: deterministic hypothesis profile, float64 by default for gradchecks."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=25, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", derandomize=True, deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

# The rnn layers compile by default (mg.compiles_by_default). Here they run the eager graph unless a
# test asks for compile=True: each distinct compiled program costs 5-12 s of Numba compilation on a
# machine with a cold cache (CI), and the ~80 the broad suite would make tripled its time. The compiled
# path has its own tests (tests/minigrad/test_scan.py, test_compile.py, tests/viz/test_unroll.py, the
# layers' compile=True cases); `MINIGRAD_COMPILE=1 pytest` runs the whole suite compiled.
os.environ.setdefault("MINIGRAD_COMPILE", "0")


def pytest_configure(config):
    config.addinivalue_line("markers", "jit_only: needs real Numba compilation (skipped without JIT)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
