"""The default process group for the distributed tests: made when a test first needs it, with a short timeout so
that a broken test ends the job in a minute instead of hanging it, and destroyed when the session ends (so other
test packages find no group left over)."""

import pytest

import dtorch.distributed as dist


@pytest.fixture(scope="session")
def _clean_up_groups():
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.fixture
def world(_clean_up_groups):
    if not dist.is_initialized():
        dist.init_process_group("mpi", timeout=60)
    return dist.group.WORLD
