"""The ``world`` fixture that the multi-rank test packages share, imported by their ``conftest.py``.

The default process group is made when a test first needs it (a world of one under plain pytest, every rank under
mpiexec) with a short timeout, so that a broken test ends the job in a minute instead of hanging it. It is destroyed
when the last test of the importing package has run, with the rank variables it set put back, so the test packages
after that one find no group left over. ``_clean_up_groups`` is package-scoped: each conftest that imports it gets its
own, scoped to its own package.
"""

import os

import pytest

import dtorch.distributed as dist

_RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@pytest.fixture(scope="package")
def _clean_up_groups():
    before = {name: os.environ.get(name) for name in _RANK_VARIABLES}
    yield
    if dist.is_initialized():
        dist.destroy_process_group()
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def world(_clean_up_groups):
    if not dist.is_initialized():
        dist.init_process_group("mpi", timeout=60)
    return dist.group.WORLD
