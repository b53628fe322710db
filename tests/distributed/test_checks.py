"""Fingerprint checks: ranks that call different collectives get an error on every rank, naming the collective,
its sequence number and what each rank passed; the group stays usable afterwards."""

import numpy as np
import pytest

import dtorch
import dtorch.distributed as dist
from dtorch.distributed import checks
from dtorch.distributed.checks import CollectiveMismatchError, DebugLevel


def T(array):
    return dtorch.from_numpy(np.array(array, copy=True))


@pytest.fixture
def detail():
    before = dist.get_debug_level()
    dist.set_debug_level(DebugLevel.DETAIL)
    yield
    dist.set_debug_level(before)


# ---- pure logic ----------------------------------------------------------------------------------------------------


def test_levels_and_the_default():
    before = dist.get_debug_level()
    try:
        dist.set_debug_level("info")
        assert dist.get_debug_level() is DebugLevel.INFO
        dist.set_debug_level_from_env()
        assert dist.get_debug_level() is DebugLevel.INFO  # the default (no variable set in the tests)
        with pytest.raises(KeyError):
            dist.set_debug_level("LOUD")
    finally:
        dist.set_debug_level(before)


def test_fingerprint_is_stable_and_discriminating():
    a = checks.fingerprint("all_reduce", (np.dtype("float32"), (4,), dist.ReduceOp.SUM))
    assert a == checks.fingerprint("all_reduce", (np.dtype("float32"), (4,), dist.ReduceOp.SUM))
    assert 0 <= a < 2**62  # -a fits in an int64 too: the check all-reduces (fp, -fp) with MAX
    assert a != checks.fingerprint("all_reduce", (np.dtype("float64"), (4,), dist.ReduceOp.SUM))
    assert a != checks.fingerprint("all_reduce", (np.dtype("float32"), (4,), dist.ReduceOp.MAX))
    assert a != checks.fingerprint("broadcast", (np.dtype("float32"), (4,), dist.ReduceOp.SUM))


def test_mismatch_message_names_ranks_and_calls():
    text = checks.mismatch_message(
        ["all_reduce #7 (dtype=float32, shape=(4,), op=SUM)", "all_reduce #7 (dtype=float32, shape=(4,), op=SUM)",
         "broadcast #7 (dtype=float32, shape=(4,), src=0)"], "WORLD", [0, 1, 2], 2)
    assert "collective mismatch in group WORLD at broadcast #7" in text
    assert "ranks [2] disagree with rank 0" in text
    assert "ranks [0, 1] called all_reduce #7 (dtype=float32, shape=(4,), op=SUM)" in text
    assert "ranks [2] called broadcast #7" in text


class AgreeingComm:
    """A communicator whose peers always agree (the MAX all-reduce leaves the words as they are); counts calls."""

    size, rank = 2, 0

    def __init__(self):
        self.calls = []

    def allreduce(self, sendbuf, recvbuf, op):
        self.calls.append((recvbuf.tolist(), op))


def test_the_check_is_one_16_byte_max_all_reduce_per_call():
    comm = AgreeingComm()
    checker = checks.Checker(comm, "G", [0, 1])
    before = dist.get_debug_level()
    try:
        dist.set_debug_level(DebugLevel.INFO)
        spec = (np.dtype("float32"), (4,), dist.ReduceOp.SUM)
        for seq in range(3):
            checker.verify("all_reduce", seq, spec)
        fp = checks.fingerprint("all_reduce", spec)
        words = [checks.Checker.word(seq, fp) for seq in range(3)]
        assert comm.calls == [([w, -w], dist.ReduceOp.MAX) for w in words] and len(set(words)) == 3
        assert not checker.history  # INFO keeps no history
        dist.set_debug_level(DebugLevel.OFF)
        checker.verify("all_reduce", 3, spec)
        assert len(comm.calls) == 3  # OFF: no communication at all
        dist.set_debug_level(DebugLevel.DETAIL)
        checker.verify("barrier", 4, ())
        assert len(comm.calls) == 4 and list(checker.history) == ["barrier #4 ()"]
    finally:
        dist.set_debug_level(before)


# ---- across ranks --------------------------------------------------------------------------------------------------
# each raises on every rank at once: a mismatch must never wait for the group's timeout (60 s in these tests)


def _expect_mismatch(call, *needles):
    with pytest.raises(CollectiveMismatchError) as caught:
        call()
    for needle in needles:
        assert needle in str(caught.value), str(caught.value)
    # the group is still in step
    t = T(np.ones(1))
    dist.all_reduce(t)
    assert t._array[0] == dist.get_world_size()


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(20)
def test_dtype_mismatch(world, detail):
    me = dist.get_rank()
    dtype = np.float64 if me == 1 else np.float32
    _expect_mismatch(lambda: dist.all_reduce(T(np.ones(4, dtype))), "ranks [1] disagree with rank 0",
                     "dtype=float64", "dtype=float32")


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(20)
def test_shape_mismatch(world, detail):
    me = dist.get_rank()
    _expect_mismatch(lambda: dist.broadcast(T(np.ones(3 + (me == 1))), src=0), "shape=(4,)", "shape=(3,)",
                     "broadcast #")


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(20)
def test_op_mismatch(world, detail):
    op = dist.ReduceOp.MAX if dist.get_rank() == 0 else dist.ReduceOp.SUM
    _expect_mismatch(lambda: dist.all_reduce(T(np.ones(2)), op=op), "op=ReduceOp.MAX", "op=ReduceOp.SUM")


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(20)
def test_skipped_call(world, detail):
    """Rank 1 skips an all_reduce: at that sequence number it is already in the barrier."""

    def script():
        if dist.get_rank() != 1:
            dist.all_reduce(T(np.ones(2)))
        dist.barrier()

    _expect_mismatch(script, "all_reduce #", "barrier #")


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(20)
def test_async_mismatch_raises_at_wait(world, detail):
    dtype = np.int32 if dist.get_rank() == 0 else np.int64
    work = dist.all_reduce(T(np.ones(2, dtype)), async_op=True)
    _expect_mismatch(work.wait, "dtype=int32", "dtype=int64")


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(20)
def test_default_level_checks_every_call(world):
    """INFO, the default: call 40 of a group is checked as well as call 0."""
    before = dist.get_debug_level()
    dist.set_debug_level(DebugLevel.INFO)
    try:
        g = dist.new_group()
        for _ in range(40):
            dist.all_reduce(T(np.ones(3)), group=g)
        size = 5 if dist.get_rank() == 0 else 6
        with pytest.raises(CollectiveMismatchError, match="all_gather_into_tensor #40 .*shape=\\(5,\\)"):
            dist.all_gather_into_tensor(T(np.zeros(size * dist.get_world_size())), T(np.zeros(size)), group=g)
        t = T(np.ones(1))
        dist.all_reduce(t, group=g)  # the group is still in step
        assert t._array[0] == dist.get_world_size()
        dist.destroy_process_group(g)
    finally:
        dist.set_debug_level(before)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(20)
def test_detail_lists_each_ranks_recent_calls(world, detail):
    g = dist.new_group()
    dist.barrier(group=g)
    dist.all_reduce(T(np.ones(2)), group=g)
    op = dist.ReduceOp.MAX if dist.get_rank() == 0 else dist.ReduceOp.MIN
    with pytest.raises(CollectiveMismatchError) as caught:
        dist.all_reduce(T(np.ones(2)), op=op, group=g)
    text = str(caught.value)
    assert "rank 1's calls before it: barrier #0 (); all_reduce #1 (dtype=float64, shape=(2,), op=ReduceOp.SUM)" \
        in text, text
    dist.destroy_process_group(g)
