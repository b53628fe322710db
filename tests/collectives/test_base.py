"""Work, Future and the FIFO communication thread (no MPI needed)."""

import threading
import time

import pytest

from dtorch.collectives.base import FifoExecutor, Future, ReduceOp, Work


def test_future_value_then_and_errors():
    f = Future()
    doubled = f.then(lambda fut: fut.value() * 2)
    assert not f.done()
    with pytest.raises(RuntimeError, match="before the future completed"):
        f.value()
    f.set_result(21)
    assert doubled.wait() == 42 and f.value() == 21
    failed = Future()
    chained = failed.then(lambda fut: fut.value())
    failed.set_exception(ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        chained.wait()
    assert isinstance(failed.exception(), ValueError)


def test_future_first_finish_wins():
    f = Future()
    f.set_exception(RuntimeError("timeout"))
    f.set_result(1)  # the late operation does not overwrite the watchdog's error
    with pytest.raises(RuntimeError, match="timeout"):
        f.wait()


def test_work_wait_timeout_and_completed():
    w = Work("all_reduce")
    with pytest.raises(RuntimeError, match="all_reduce: wait"):
        w.wait(timeout=0.01)
    assert not w.is_completed()
    done = Work.completed("barrier", [1])
    assert done.wait() is True and done.is_success() and done.get_future().value() == [1]
    assert "completed" in repr(done)


def test_executor_keeps_submission_order_and_runs_off_thread():
    ex = FifoExecutor("t")
    seen, threads = [], set()

    def op(i):
        time.sleep(0.001 * (5 - i))  # earlier ops are slower: order must still hold
        seen.append(i)
        threads.add(threading.current_thread().name)
        return i

    works = [ex.submit(op, (i,), Work(f"op{i}"), finish=lambda r: r * 10) for i in range(5)]
    assert [w.future.wait(5) for w in works] == [0, 10, 20, 30, 40]
    assert seen == [0, 1, 2, 3, 4]
    assert threads == {"dtorch-comm-t"}
    assert ex.idle()
    ex.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        ex.submit(op, (0,), Work())


def test_executor_sync_run_waits_for_queued_work():
    ex = FifoExecutor("t2")
    seen = []
    gate = threading.Event()
    ex.submit(lambda: (gate.wait(5), seen.append("async")), (), Work("a"))
    assert not ex.idle()
    threading.Timer(0.05, gate.set).start()
    ex.run(lambda: seen.append("sync"), (), Work("s"))  # queued behind the async op, not inline
    assert seen == ["async", "sync"]
    ex.run(lambda: seen.append("inline"), (), Work("i"))  # idle: runs on this thread
    assert seen[-1] == "inline"


def test_executor_error_goes_to_the_work():
    ex = FifoExecutor("t3")
    w = ex.submit(lambda: 1 / 0, (), Work("div"))
    with pytest.raises(ZeroDivisionError):
        w.wait(5)
    assert ex.idle() and not w.is_success()


def test_reduce_op_names():
    assert [op.name for op in ReduceOp] == ["SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR", "AVG"]
    assert repr(ReduceOp.SUM) == "<ReduceOp.SUM: 0>"


def _gated(ex, n):
    """``n`` operations on ``ex``; the first blocks until the returned gate is set. Records (index, thread)."""
    gate, seen = threading.Event(), []

    def op(i):
        if i == 0:
            gate.wait(5)
        seen.append((i, threading.current_thread().name))
        return i

    works = [ex.submit(op, (i,), Work(f"op{i}")) for i in range(n)]
    return gate, seen, works


def test_a_waiting_thread_runs_the_queue_in_order():
    """wait() on queued work: the waiter runs the operations after the one in flight itself, in order."""
    ex = FifoExecutor("help")
    gate, seen, works = _gated(ex, 6)
    deadline = time.monotonic() + 5
    while ex.running_work is not works[0] and time.monotonic() < deadline:
        time.sleep(0.001)  # the communication thread holds op0
    threading.Timer(0.05, gate.set).start()
    assert works[4].wait() is True
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert seen[0][1] == "dtorch-comm-help"
    assert {name for _, name in seen[1:]} == {threading.current_thread().name}  # no hand-off per operation
    assert works[5].future.wait(5) == 5  # the communication thread takes the rest back, unasked
    assert [i for i, _ in seen] == list(range(6)) and ex.idle()
    ex.shutdown()


def test_the_queue_progresses_after_a_waiter_leaves():
    """No polling: work left queued by a waiter finishes on the communication thread."""
    ex = FifoExecutor("resume")
    gate, seen, works = _gated(ex, 4)
    gate.set()
    works[0].wait()
    deadline = time.monotonic() + 5
    while not works[3].is_completed() and time.monotonic() < deadline:
        time.sleep(0.001)  # only looks: is_completed() runs nothing
    assert [i for i, _ in seen] == [0, 1, 2, 3]
    ex.shutdown()


def test_wait_timeout_on_queued_work():
    ex = FifoExecutor("late")
    gate, seen, works = _gated(ex, 3)
    with pytest.raises(RuntimeError, match="op2: wait\\(timeout=0.05\\) expired"):
        works[2].wait(timeout=0.05)  # op0 holds the queue: nothing after it may run yet
    assert seen == []
    gate.set()
    assert works[2].wait(5) and [i for i, _ in seen] == [0, 1, 2]
    ex.shutdown()


def test_sync_run_after_async_work_keeps_order_from_many_threads():
    """Sync runs and waits from two threads never run two operations at once, and keep submission order."""
    ex = FifoExecutor("busy")
    running, order, overlaps = [0], [], []

    def op(i):
        running[0] += 1
        if running[0] > 1:
            overlaps.append(i)
        time.sleep(0.0002)
        order.append(i)
        running[0] -= 1

    works = [ex.submit(op, (i,), Work(f"op{i}")) for i in range(40)]
    helper = threading.Thread(target=lambda: [w.wait() for w in works[::3]])
    helper.start()
    ex.run(op, (40,), Work("sync"))
    helper.join(5)
    assert order == list(range(41)) and overlaps == []
    ex.shutdown()


def test_callbacks_may_wait_on_later_work():
    """A then() callback runs on the completing thread and may itself wait for later work of the executor."""
    ex = FifoExecutor("nested")
    gate, seen, works = _gated(ex, 3)
    threads = []

    def callback(fut):
        threads.append(threading.current_thread().name)
        return works[2].wait() and works[2].result() + fut.value()

    chained = works[0].get_future().then(callback)
    gate.set()
    assert chained.wait(5) == 2
    assert threads == ["dtorch-comm-nested"]
    ex.shutdown()
