"""Runs the ``>>>`` examples of dtorch's docstrings as tests: ``pytest --doctest-modules dtorch``, the ``doctest``
part of scripts/test.sh (pytest's doctest flags are in pyproject.toml).

Each docstring's examples run in a fresh temporary directory (files an example writes land there) with dtorch's and
NumPy's generators seeded with 0, and dtorch's global settings (default dtype and device, grad mode, print options)
are put back afterwards, so no example depends on which ran before it.

Skips are never silent:
- an example that one process without a GPU cannot run (it needs several MPI ranks, an initialised process group,
  a GPU, dataset files or child processes) is marked ``# doctest: +SKIP``; a docstring whose examples are *all*
  skipped needs an entry in ``SKIP_REASONS`` (its module, or the docstring's qualified name), which ``pytest -rs``
  prints; one without an entry fails, naming itself;
- a module whose examples need an optional package that is not installed (``OPTIONAL_PACKAGES``) is skipped whole,
  naming the package.
"""

import doctest
import importlib.util

import numpy as np
import pytest
from _pytest.doctest import DoctestItem, DoctestModule

import dtorch
from dtorch import _tensor_str

_MPI = "needs an initialised process group over several MPI ranks (tests/distributed runs it under mpiexec)"

# the longest matching prefix of a doctest's qualified name gives the reason all of its examples are skipped
SKIP_REASONS = {
    "dtorch.collectives.mpi": "needs MPI started with several ranks (tests/collectives runs it under mpiexec)",
    "dtorch.collectives.nccl": "needs CuPy with NCCL and a GPU (tests/collectives/test_nccl.py)",
    "dtorch.distributed": _MPI,
    "dtorch.distributed.run.Job": "starts a job of several processes under mpiexec (tests/distributed/test_run.py)",
    "dtorch.nn.parallel.distributed": "needs an initialised process group over several MPI ranks (tests/nn/parallel "
                                      "runs it under mpiexec)",
    "dtorch.multiprocessing.spawn": "starts child processes (tests/multiprocessing/test_spawn.py)",
    "dtorch.vision.datasets": "needs the dataset's files on disk (tests/vision/test_datasets.py writes small ones)",
}

# module path prefix -> the optional packages its examples import
OPTIONAL_PACKAGES = {
    "dtorch/onnx/": ("onnx", "onnxruntime"),
}


def _skip_reason(name):
    matches = [prefix for prefix in SKIP_REASONS if name == prefix or name.startswith(prefix + ".")]
    return SKIP_REASONS[max(matches, key=len)] if matches else None


class _Unavailable(pytest.File):
    """Stands for a module whose examples cannot run here: collecting it reports the skip and its reason."""

    reason = ""

    def collect(self):
        pytest.skip(self.reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_collect_file(file_path, parent):
    outcome = yield
    relative = file_path.relative_to(parent.config.rootpath).as_posix()
    for prefix, packages in OPTIONAL_PACKAGES.items():
        missing = [name for name in packages if importlib.util.find_spec(name) is None]
        if relative.startswith(prefix) and missing:
            collectors = [c for c in outcome.get_result() if not isinstance(c, DoctestModule)]
            unavailable = _Unavailable.from_parent(parent, path=file_path)
            unavailable.reason = f"{relative}'s examples need {', '.join(missing)} (pip install 'dtorch[onnx]')"
            outcome.force_result(collectors + [unavailable])


def pytest_collection_modifyitems(config, items):
    for item in items:
        if not isinstance(item, DoctestItem):
            continue
        examples = item.dtest.examples
        if examples and all(example.options.get(doctest.SKIP) for example in examples):
            reason = _skip_reason(item.dtest.name)
            if reason is None:
                item.stash[_UNEXPLAINED] = True  # failed by _isolated_example
            else:
                item.add_marker(pytest.mark.skip(reason=reason))


_UNEXPLAINED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _isolated_example(request, tmp_path, monkeypatch):
    """A fresh working directory, seeded generators, and dtorch's global settings restored after the example."""
    if not isinstance(request.node, DoctestItem):
        yield
        return
    if request.node.stash.get(_UNEXPLAINED, False):
        pytest.fail(f"every example of {request.node.dtest.name} is +SKIP, with no reason in SKIP_REASONS of "
                    f"dtorch/conftest.py: add one there, or make the examples runnable", pytrace=False)
    monkeypatch.chdir(tmp_path)
    dtype, device, grad = dtorch.get_default_dtype(), dtorch.get_default_device(), dtorch.is_grad_enabled()
    printoptions = _tensor_str.get_printoptions()
    dtorch.manual_seed(0)
    np.random.seed(0)
    try:
        yield
    finally:
        dtorch.set_default_dtype(dtype)
        dtorch.set_default_device(device)
        dtorch.set_grad_enabled(grad)
        _tensor_str.set_printoptions(**printoptions)
