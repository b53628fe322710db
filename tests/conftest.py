"""Shared test configuration: one BLAS thread, and a `gpu` marker that skips cleanly without CUDA."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and an NVIDIA GPU (skipped where there is none)")


def pytest_collection_modifyitems(config, items):
    import dtorch

    if dtorch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device (CuPy missing or no GPU)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
