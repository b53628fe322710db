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
