"""The transport interface: ReduceOp, and the check of the sizes peers report (no MPI needed)."""

import pytest

from dtorch.collectives.base import MAX_GATHERED_BYTES, Communicator, ReduceOp, check_sizes


def test_reduce_op_names():
    assert [op.name for op in ReduceOp] == ["SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR", "AVG"]
    assert repr(ReduceOp.SUM) == "<ReduceOp.SUM: 0>"


def test_sizes_reported_by_peers_are_checked_before_allocation():
    check_sizes([0, 5, 7])
    check_sizes([MAX_GATHERED_BYTES])
    with pytest.raises(RuntimeError, match="rank 1 reported -3 bytes to gather .*out of step"):
        check_sizes([4, -3])
    # what a desynchronised run once tried to allocate: 1.4 EiB
    with pytest.raises(RuntimeError, match="rank 0 reported 1614090106449585664 bytes"):
        check_sizes([1614090106449585664, 2])
    with pytest.raises(RuntimeError, match="rank 2 reported 10 bytes to gather \\(the limit is 25 in all\\)"):
        check_sizes([10, 10, 10], limit=25)


def test_the_interface_has_no_async_machinery():
    """Async work, ordering and checks are the process group's: the transport only moves arrays."""
    assert not hasattr(Communicator, "start") and not hasattr(Communicator, "executor")
    assert Communicator(0, 1).slot_window(2) is None
