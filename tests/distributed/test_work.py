"""Future, Work and the per-group FIFO queue (no MPI needed): order, hand-over to waiting threads, callbacks that
raise, collectives issued from callbacks."""

import logging
import threading
import time

import pytest

from dtorch.distributed.work import CommQueue, Future, Work


def call(item):
    """The queue's run_item in these tests: items are (function, args)."""
    fn, args = item
    return fn(*args)


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


def test_a_raising_callback_is_logged_and_the_others_still_run(caplog):
    f = Future()
    seen = []
    f.add_done_callback(lambda fut: 1 / 0)
    f.add_done_callback(lambda fut: seen.append(fut.value()))
    with caplog.at_level(logging.ERROR, logger="dtorch.distributed"):
        f.set_result(5)
        f.add_done_callback(lambda fut: [][1])  # already done: runs at once, and is logged too
    assert seen == [5] and f.value() == 5
    errors = [r for r in caplog.records if "Future callback raised" in r.getMessage()]
    assert [r.exc_info[0] for r in errors] == [ZeroDivisionError, IndexError]


def test_work_wait_timeout_and_completed():
    w = Work("all_reduce")
    with pytest.raises(RuntimeError, match="all_reduce: wait"):
        w.wait(timeout=0.01)
    assert not w.is_completed()
    done = Work.completed("barrier", [1])
    assert done.wait() is True and done.is_success() and done.get_future().value() == [1]
    assert "completed" in repr(done)


def test_queue_keeps_submission_order_and_runs_off_thread():
    q = CommQueue("t", call)
    seen, threads = [], set()

    def op(i):
        time.sleep(0.001 * (5 - i))  # earlier ops are slower: order must still hold
        seen.append(i)
        threads.add(threading.current_thread().name)
        return i * 10

    works = [q.submit((op, (i,)), Work(f"op{i}")) for i in range(5)]
    assert [w.future.wait(5) for w in works] == [0, 10, 20, 30, 40]
    assert seen == [0, 1, 2, 3, 4]
    assert threads == {"dtorch-comm-t"}
    assert q.idle()
    q.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        q.submit((op, (0,)), Work())


def test_sync_run_waits_for_queued_work():
    q = CommQueue("t2", call)
    seen = []
    gate = threading.Event()
    q.submit((lambda: (gate.wait(5), seen.append("async")), ()), Work("a"))
    assert not q.idle()
    threading.Timer(0.05, gate.set).start()
    q.run((lambda: seen.append("sync"), ()))  # queued behind the async op, not inline
    assert seen == ["async", "sync"]
    assert q.run((lambda: seen.append("inline") or 7, ())) == 7  # idle: runs on this thread
    assert seen[-1] == "inline"
    with pytest.raises(ZeroDivisionError):
        q.run((lambda: 1 / 0, ()))
    q.shutdown()


def test_an_error_goes_to_the_work():
    q = CommQueue("t3", call)
    w = q.submit((lambda: 1 / 0, ()), Work("div"))
    with pytest.raises(ZeroDivisionError):
        w.wait(5)
    assert q.idle() and not w.is_success()
    q.shutdown()


def _gated(q, n):
    """``n`` operations on ``q``; the first blocks until the returned gate is set. Records (index, thread)."""
    gate, seen = threading.Event(), []

    def op(i):
        if i == 0:
            gate.wait(5)
        seen.append((i, threading.current_thread().name))
        return i

    works = [q.submit((op, (i,)), Work(f"op{i}")) for i in range(n)]
    return gate, seen, works


def test_a_waiting_thread_runs_the_queue_in_order():
    """wait() on queued work: the waiter runs the operations after the one in flight itself, in order."""
    q = CommQueue("help", call)
    gate, seen, works = _gated(q, 6)
    deadline = time.monotonic() + 5
    while q.running_work is not works[0] and time.monotonic() < deadline:
        time.sleep(0.001)  # the communication thread holds op0
    threading.Timer(0.05, gate.set).start()
    assert works[4].wait() is True
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert seen[0][1] == "dtorch-comm-help"
    assert {name for _, name in seen[1:]} == {threading.current_thread().name}  # no hand-off per operation
    assert works[5].future.wait(5) == 5  # the communication thread takes the rest back, unasked
    assert [i for i, _ in seen] == list(range(6)) and q.idle()
    q.shutdown()


def test_the_queue_progresses_after_a_waiter_leaves():
    """No polling: work left queued by a waiter finishes on the communication thread."""
    q = CommQueue("resume", call)
    gate, seen, works = _gated(q, 4)
    gate.set()
    works[0].wait()
    deadline = time.monotonic() + 5
    while not works[3].is_completed() and time.monotonic() < deadline:
        time.sleep(0.001)  # only looks: is_completed() runs nothing
    assert [i for i, _ in seen] == [0, 1, 2, 3]
    q.shutdown()


def test_wait_timeout_on_queued_work():
    q = CommQueue("late", call)
    gate, seen, works = _gated(q, 3)
    with pytest.raises(RuntimeError, match="op2: wait\\(timeout=0.05\\) expired"):
        works[2].wait(timeout=0.05)  # op0 holds the queue: nothing after it may run yet
    assert seen == []
    gate.set()
    assert works[2].wait(5) and [i for i, _ in seen] == [0, 1, 2]
    q.shutdown()


def test_sync_runs_and_waits_from_many_threads_never_overlap():
    q = CommQueue("busy", call)
    running, order, overlaps = [0], [], []

    def op(i):
        running[0] += 1
        if running[0] > 1:
            overlaps.append(i)
        time.sleep(0.0002)
        order.append(i)
        running[0] -= 1

    works = [q.submit((op, (i,)), Work(f"op{i}")) for i in range(40)]
    helper = threading.Thread(target=lambda: [w.wait() for w in works[::3]])
    helper.start()
    q.run((op, (40,)))
    helper.join(5)
    assert order == list(range(41)) and overlaps == []
    q.shutdown()


def test_callbacks_may_wait_on_later_work():
    """A then() callback runs on the completing thread and may itself wait for later work of the queue."""
    q = CommQueue("nested", call)
    gate, seen, works = _gated(q, 3)
    threads = []

    def callback(fut):
        threads.append(threading.current_thread().name)
        return works[2].wait() and works[2].result() + fut.value()

    chained = works[0].get_future().then(callback)
    gate.set()
    assert chained.wait(5) == 2
    assert threads == ["dtorch-comm-nested"]
    q.shutdown()


def test_a_raising_callback_does_not_stop_the_queue(caplog):
    q = CommQueue("cb", call)
    with caplog.at_level(logging.ERROR, logger="dtorch.distributed"):
        first = q.submit((lambda: 1, ()), Work("first"))
        first.get_future().add_done_callback(lambda f: 1 / 0)
        later = [q.submit((lambda i=i: i, ()), Work(f"later{i}")) for i in range(5)]
        deadline = time.monotonic() + 5
        while not all(w.is_completed() for w in later) and time.monotonic() < deadline:
            time.sleep(0.001)  # no wait(): the communication thread alone must get through
    assert [w.result() for w in later] == list(range(5))
    assert any("Future callback raised" in r.getMessage() for r in caplog.records)
    q.shutdown()


def test_collectives_issued_from_a_callback_run_right_after_its_work():
    """Whatever the timing, work issued by a callback runs next, ahead of work queued before it (so every rank
    runs the same order); a sync call from a callback runs at once, on the callback's thread."""
    for _ in range(20):
        q = CommQueue("order", call)
        order = []
        gate = threading.Event()
        a = q.submit((lambda: (gate.wait(5), order.append("A")), ()), Work("A"))
        nested = []

        def callback(fut):
            nested.append(q.submit((order.append, ("C1",)), Work("C1")))
            nested.append(q.submit((order.append, ("C2",)), Work("C2")))
            q.run((order.append, ("S",)))  # sync after two async ones: runs after them, before B

        a.get_future().add_done_callback(callback)
        b = q.submit((order.append, ("B",)), Work("B"))
        gate.set()
        b.wait()
        assert all(w.wait() for w in nested)
        assert order == ["A", "C1", "C2", "S", "B"], order
        q.shutdown()

    q = CommQueue("sync-in-callback", call)
    order = []
    w = q.submit((order.append, ("A",)), Work("A"))
    w.get_future().add_done_callback(lambda f: q.run((order.append, ("S",))))
    later = q.submit((order.append, ("B",)), Work("B"))
    later.wait()
    assert order == ["A", "S", "B"]
    q.shutdown()


def test_stalled_tells_since_when_the_queue_did_not_move():
    q = CommQueue("stall", call)
    assert q.stalled() is None
    gate = threading.Event()
    callback_entered = threading.Event()
    first = q.submit((lambda: None, ()), Work("first"))
    first.get_future().add_done_callback(lambda f: (callback_entered.set(), gate.wait(5)))
    assert callback_entered.wait(5)  # the communication thread is held in a callback
    later = q.submit((lambda: None, ()), Work("later"))
    since, work = q.stalled()
    assert work is later and since <= time.monotonic()
    time.sleep(0.05)
    assert q.stalled()[0] == since  # nothing moved meanwhile
    gate.set()
    later.wait()
    assert q.stalled() is None
    q.shutdown()
