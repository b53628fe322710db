"""Fault injection on the collective path (issue 11): every fault below must become a clear error on every rank, or
end the job within seconds with an error naming the culprit; never a hang, never silent wrong numbers.

- mismatches (shape, dtype, op, root, a skipped call, a different collective, async work), each at call 1 and at
  call 20 of a fresh group, with the default checks: every rank raises before any data moves, naming the rank that
  disagrees; the group stays in step (multi-rank, in process);
- ``new_group`` called on one rank only;
- a raising Future callback followed by more async work, on the collectives and on the point-to-point poller;
- collectives issued from callbacks, with rank-dependent timing: the same order on every rank;
- ranks that leave while the others wait (their script returns, ``sys.exit(3)``, a thread dies), in their own small
  ``mpiexec`` jobs (run by plain pytest; skipped inside an MPI run).

``FAULTS`` counts the faults injected, and each test that catches one adds it to ``CAUGHT``.
"""

import logging
import re
import time

import numpy as np
import pytest

import dtorch
import dtorch.distributed as dist
from dtorch.distributed.checks import CollectiveMismatchError, DebugLevel

from distributed.jobs import own_launcher, run_job


def T(array):
    return dtorch.from_numpy(np.array(array, copy=True))


@pytest.fixture
def fresh(world):
    """A new group over every rank (its sequence numbers start at 0), with the default check level."""
    before = dist.get_debug_level()
    dist.set_debug_level(DebugLevel.INFO)
    g = dist.new_group()
    yield g
    dist.destroy_process_group(g)
    dist.set_debug_level(before)


def warm_up(group, calls):
    """``calls`` good all_reduces, so that the fault comes at call ``calls + 1``."""
    for _ in range(calls):
        t = T(np.ones(3, np.float32))
        dist.all_reduce(t, group=group)
        assert t._array[0] == dist.get_world_size()


def faulty():
    return dist.get_rank() == 1


# each kind returns the tensor the call would change, and the call (given async_op): rank 1 calls something else
def _shape(group):
    t = T(np.ones(5 if faulty() else 4, np.float32))
    return t, lambda async_op: dist.all_reduce(t, group=group, async_op=async_op)


def _dtype(group):
    t = T(np.ones(4, np.int32 if faulty() else np.float32))  # the float32 against int32: reinterpreted bits
    return t, lambda async_op: dist.all_reduce(t, group=group, async_op=async_op)


def _op(group):
    t = T(np.arange(4, dtype=np.float32) + dist.get_rank())
    op = dist.ReduceOp.MAX if faulty() else dist.ReduceOp.SUM
    return t, lambda async_op: dist.all_reduce(t, op=op, group=group, async_op=async_op)


def _root(group):
    t = T(np.full(4, float(dist.get_rank())))
    return t, lambda async_op: dist.broadcast(t, src=1 if faulty() else 0, group=group, async_op=async_op)


def _skipped(group):
    """Rank 1 skips the all_reduce: at that sequence number it is already in the barrier."""
    t = T(np.full(4, float(dist.get_rank())))
    if faulty():
        return t, lambda async_op: dist.barrier(group=group, async_op=async_op)
    return t, lambda async_op: dist.all_reduce(t, group=group, async_op=async_op)


def _kind(group):
    t = T(np.full(4, float(dist.get_rank())))
    if faulty():
        return t, lambda async_op: dist.broadcast(t, src=0, group=group, async_op=async_op)
    return t, lambda async_op: dist.all_reduce(t, group=group, async_op=async_op)


KINDS = {"shape": (_shape, "shape="), "dtype": (_dtype, "dtype="), "op": (_op, "op=ReduceOp."),
         "root": (_root, "src="), "skipped call": (_skipped, "barrier #"), "other collective": (_kind, "broadcast #")}


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(30)
@pytest.mark.parametrize("async_op", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("at", [1, 20], ids=["call1", "call20"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_mismatch_raises_on_every_rank_before_data_moves(fresh, kind, at, async_op):
    make, needle = KINDS[kind]
    warm_up(fresh, at - 1)
    t, call = make(fresh)
    original = t._array.copy()
    with pytest.raises(CollectiveMismatchError) as caught:
        work = call(async_op)
        if async_op:
            work.wait()
    text = str(caught.value)
    assert f" #{at - 1} (" in text and "ranks [1] disagree with rank 0" in text and needle in text, text
    assert f"on rank {dist.get_rank()}:" in text
    assert np.array_equal(t._array, original) and t._array.dtype == original.dtype  # no data moved
    # the group is still in step: the next call on every rank meets the same call on the others
    warm_up(fresh, 2)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(30)
def test_mismatched_async_work_leaves_no_wrong_numbers(fresh):
    """After 19 good calls, float32 against int32: nothing is reinterpreted, the tensors keep their values."""
    warm_up(fresh, 19)
    original = np.arange(4, dtype=np.int32 if faulty() else np.float32)
    t = T(original)
    work = dist.all_reduce(t, group=fresh, async_op=True)
    with pytest.raises(CollectiveMismatchError, match="all_reduce #19"):
        work.wait()
    assert np.array_equal(t._array, original) and t._array.dtype == original.dtype


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(30)
def test_new_group_on_one_rank_only(world):
    """Rank 0 makes a group while the others reach a barrier: a mismatch error, not an MPI fatal error."""
    if dist.get_rank() == 0:
        with pytest.raises(CollectiveMismatchError, match=r"new_group #\d+ \(ranks=\(0, 1\)\)"):
            dist.new_group([0, 1])
    else:
        with pytest.raises(CollectiveMismatchError, match=r"ranks \[0\] called new_group"):
            dist.barrier()
    t = T(np.ones(1))
    dist.all_reduce(t)
    assert t._array[0] == dist.get_world_size()


# ---- callbacks ---------------------------------------------------------------------------------------------------


def wait_until(predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.001)
    return predicate()


@pytest.mark.timeout(30)
def test_a_raising_callback_then_more_async_work(world, caplog):
    n = dist.get_world_size()
    with caplog.at_level(logging.ERROR, logger="dtorch.distributed"):
        w = dist.all_reduce(T(np.ones(8)), async_op=True)
        w.get_future().add_done_callback(lambda f: 1 / 0)
        later = [dist.all_reduce(T(np.full(8, float(i))), async_op=True) for i in range(10)]
        # no wait(): the communication thread alone must get through, past the group timeout's worth of nothing
        assert wait_until(lambda: all(x.is_completed() for x in later)), "the communication thread stopped"
        w.wait()
        assert [x.result()[0]._array[0] for x in later] == [float(i * n) for i in range(10)]
        dist.barrier()  # the rank whose callback ran last has logged it by now
    logged = [r for r in caplog.records if "Future callback raised" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info[0] is ZeroDivisionError


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(30)
def test_a_raising_callback_on_the_point_to_point_poller(world, caplog):
    me, n = dist.get_rank(), dist.get_world_size()
    right, left = (me + 1) % n, (me - 1) % n
    with caplog.at_level(logging.ERROR, logger="dtorch.distributed"):
        got = T(np.zeros(2))
        receive = dist.irecv(got, src=left)
        receive.get_future().add_done_callback(lambda f: 1 / 0)
        dist.isend(T(np.full(2, float(me))), dst=right).wait()
        receive.wait()
        for i in range(5):  # the poller still completes later transfers without being asked
            box = T(np.zeros(1))
            r = dist.irecv(box, src=left)
            dist.isend(T(np.full(1, float(100 * i + me))), dst=right)
            assert wait_until(r.is_completed)
            assert box._array[0] == 100 * i + left
    assert got._array.tolist() == [float(left)] * 2
    assert any("Future callback raised" in r.getMessage() for r in caplog.records)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(30)
def test_collectives_from_callbacks_run_in_the_same_order_on_every_rank(fresh):
    """Rank 1 issues its next collective late, after A's callback has run; rank 0 issues it at once. Both run
    A, then the callback's all_reduce C, then B: the checks would raise if the orders differed."""
    n = dist.get_world_size()
    for _ in range(5):
        made = []
        c = T(np.ones(3))
        a = dist.all_reduce(T(np.ones(3)), group=fresh, async_op=True)
        a.get_future().add_done_callback(lambda f: made.append(dist.all_reduce(c, group=fresh, async_op=True)))
        if faulty():
            assert wait_until(lambda: made)  # A and its callback are done before B is issued
        b = T(np.full(2, float(dist.get_rank())))
        dist.broadcast(b, src=0, group=fresh)  # sync: waits for A and C
        assert made and made[0].wait() and c._array.tolist() == [float(n)] * 3
        assert b._array.tolist() == [0.0, 0.0]


@pytest.mark.timeout(30)
def test_a_sync_collective_from_a_callback(world):
    n = dist.get_world_size()
    out = []

    def callback(f):
        t = T(np.ones(2))
        dist.all_reduce(t)  # on the thread that completed the work: runs at once, before what was queued later
        out.append(t._array.tolist())

    a = dist.all_reduce(T(np.ones(2)), async_op=True)
    a.get_future().add_done_callback(callback)
    b = dist.all_reduce(T(np.ones(2)), async_op=True)
    assert b.wait() and a.wait()
    assert out == [[float(n)] * 2]


# ---- ranks that leave while the others wait (their own mpiexec jobs) ----------------------------------------------


def ended_within(out, seconds):
    """Whether the job ended within ``seconds`` of the moment a rank printed ``fault at <time>`` (the launch of the
    job itself is not counted: on a loaded box Python's start-up alone takes seconds)."""
    fault = float(re.search(r"fault at ([\d.]+)", out).group(1))
    return time.time() - fault < seconds

LEAVERS = {
    "return": ("pass", 0, 1, ""),
    "sys.exit(3)": ("sys.exit(3)", 3, 3, ""),
    "thread dies": ("import threading; t = threading.Thread(target=lambda: 1 / 0, name='loader'); t.start(); t.join()",
                    0, 1, ", after an uncaught exception in one of its threads"),
}


@own_launcher
@pytest.mark.parametrize("how", list(LEAVERS))
@pytest.mark.parametrize("async_op", [False, True], ids=["sync", "async"])
def test_a_rank_that_leaves_ends_the_job_with_its_exit_code(tmp_path, how, async_op):
    leave, code, job_code, why = LEAVERS[how]
    code_, out, took = run_job(tmp_path, f"""
        dist.init_process_group()               # the group timeout stays 10 minutes
        x = np.ones(4)
        dist.all_reduce(x)
        if dist.get_rank() == 1:
            print(f"fault at {{time.time()}}", flush=True)
            {leave}
        else:
            if {async_op}:
                work = dist.all_reduce(x, async_op=True)
                time.sleep(0.2)                 # taken by the communication thread
                try:
                    work.wait()
                except dist.DistBackendError as error:
                    print("caught:", error, flush=True)
                time.sleep(60)
            dist.all_reduce(x)                  # rank 1 never comes
            print("rank 0 was not stopped", flush=True)
    """, limit=40)
    assert code_ == job_code, out
    assert took < 30 and ended_within(out, 5), f"took {took:.1f} s\n{out}"
    assert (f"rank 1 left the job (exit code {code}{why}) while rank 0 waits for it in all_reduce (sequence "
            f"number 1) on group WORLD; rank 1 last entered all_reduce #0.") in out, out
    assert ("caught: dtorch.distributed: rank 1 left" in out) is async_op, out
    assert "not stopped" not in out
    if how == "thread dies":
        assert "[rank 1] Exception in thread loader:" in out and "ZeroDivisionError" in out


@own_launcher
def test_ranks_that_all_finish_raise_nothing(tmp_path):
    """The departure notice is no false alarm: ranks leaving one after the other after their last collective."""
    code, out, took = run_job(tmp_path, """
        dist.init_process_group()
        x = np.ones(1000)
        works = [dist.all_reduce(x, async_op=True) for _ in range(5)]
        if dist.get_rank() == 1:
            sys.exit(0)                         # leaves at once; rank 0 finishes its queued work at exit
        time.sleep(1.0)
        print("rank 0 finished", x[0], flush=True)
    """, limit=40)
    assert code == 0, out
    assert "rank 0 finished" in out and "left the job" not in out


@own_launcher
def test_a_rank_that_leaves_while_another_waits_for_its_message(tmp_path):
    code, out, took = run_job(tmp_path, """
        dist.init_process_group()
        if dist.get_rank() == 1:
            print(f"fault at {time.time()}", flush=True)
            sys.exit(5)                         # never sends
        dist.recv(np.zeros(3), src=1)
    """, limit=40)
    assert code == 5, out
    assert took < 30 and ended_within(out, 5), f"took {took:.1f} s\n{out}"
    assert "rank 1 left the job (exit code 5) while rank 0 waits for it in recv from rank 1 (tag 0)" in out, out


@own_launcher
def test_a_callback_that_never_returns_is_seen_by_the_watchdog(tmp_path):
    """The communication thread is held in a callback: the work queued behind it never starts, and the watchdog,
    which looks at queued work too, fails it and ends the job at the group's timeout."""
    code, out, took = run_job(tmp_path, """
        dist.init_process_group(timeout=1.0)
        first = dist.all_reduce(np.ones(4), async_op=True)
        print(f"fault at {time.time()}", flush=True)
        first.get_future().add_done_callback(lambda f: time.sleep(60))
        first.get_future().wait()
        second = dist.all_reduce(np.ones(4), async_op=True)
        try:
            second.wait()
        except dist.DistTimeoutError as error:
            print("caught:", str(error).splitlines()[0], flush=True)
        time.sleep(60)
    """, limit=40)
    assert code not in (0, 124), out
    assert took < 30 and ended_within(out, 6), f"took {took:.1f} s\n{out}"  # the group's timeout is 1 s
    assert ("caught: dtorch.distributed: all_reduce (queued, not started: the group's queue did not move) on group "
            "WORLD did not complete within the group's timeout of 1 s") in out, out


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(30)
def test_destroying_a_group_another_rank_still_uses(world):
    g = dist.new_group()
    warm_up(g, 3)
    if faulty():
        with pytest.raises(CollectiveMismatchError, match=r"ranks \[1\] called destroy_process_group #3"):
            dist.destroy_process_group(g)
    else:
        with pytest.raises(CollectiveMismatchError, match=r"destroy_process_group #3"):
            dist.all_reduce(T(np.ones(2)), group=g)
    warm_up(g, 1)  # still in step, and still alive on every rank
    dist.destroy_process_group(g)


@own_launcher
def test_a_forked_child_that_exits_is_not_a_rank_that_left(tmp_path):
    """A child forked by a rank inherits the exit hook and the board's shared memory: its exit posts nothing."""
    code, out, took = run_job(tmp_path, """
        dist.init_process_group()
        if os.fork() == 0:
            import atexit
            atexit._run_exitfuncs()             # the inherited hooks (MPI itself must not be finalised in a child)
            os._exit(0)
        os.wait()
        if dist.get_rank() == 1:
            time.sleep(1.0)                     # rank 0 waits for it meanwhile: the watchdog reads its word
        x = np.ones(2)
        dist.all_reduce(x)
        sys.stdout.write(f"rank {dist.get_rank()} got {x[0]}" + os.linesep)  # one write: lines do not interleave
    """, limit=40)
    assert code == 0, out
    assert "rank 0 got 2.0" in out and "rank 1 got 2.0" in out and "left the job" not in out
