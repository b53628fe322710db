"""The default process group for the DDP tests: made when a test first needs it (a world of one under plain pytest,
every rank under mpiexec) with a short timeout, and destroyed after the last test of this package."""

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
