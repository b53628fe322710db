"""The timeout watchdog's decisions and reports, on a world of one with fake boards and a fake NCCL communicator
(the end-to-end behaviour, a job that is ended, is in test_job_failures)."""

import threading
import time

import logging

from dtorch.collectives.local import LocalCommunicator
from dtorch.distributed import watchdog as watchdog_mod
from dtorch.distributed.process_group import OP_CODES, Collective, ProcessGroup
from dtorch.distributed.progress import ProgressBoard
from dtorch.distributed.work import Work


class FakeBoard:
    def __init__(self, states, departures=None):
        self.states = states
        self.gone = departures or [None] * len(states)

    def read(self, timeout=1.0):
        return self.states

    def departures(self, timeout=1.0):
        return self.gone


class FakeEvent:
    def __init__(self, done):
        self.done = done

    def record(self):
        pass

    def query(self):
        return self.done


class FakeNccl:
    def __init__(self, error=None):
        self.error = error
        self.next_done = True
        self.aborted = False

    def mark(self):
        return FakeEvent(self.next_done)

    def allreduce(self):
        pass  # an NCCL verb: queued on the stream, returns at once

    def check_async_error(self):
        if self.error:
            raise RuntimeError(self.error)

    def free(self):
        pass


def group(timeout=2.0, nccl=None, ranks=(0,)):
    pg = ProcessGroup(LocalCommunicator(), list(ranks), 0, timeout, name="G", nccl=nccl)
    watchdog_mod.watchdog.forget(pg)  # judged by hand here
    return pg


def test_a_running_collective_expires_after_the_timeout():
    pg = group(timeout=2.0)
    now = time.monotonic()
    pg.inflight = ("all_reduce", 7, now, pg.timeout)
    assert pg.expired(now + 1.0) is None
    what, started, work, on_main = pg.expired(now + 2.5)
    assert what == ("all_reduce", 7) and started == now and work is None


def test_a_queued_collective_names_its_work():
    pg = group()
    gate = Work("gate")
    pg.issue(Collective("all_gather", lambda: gate.wait(5), (), ()), async_op=True)
    deadline = time.monotonic() + 5
    while pg.inflight is None and time.monotonic() < deadline:
        time.sleep(0.001)
    name, seq, _, limit = pg.inflight
    pg.inflight = (name, seq, time.monotonic() - 10, limit)
    what, _, work, on_main = pg.expired(time.monotonic())
    assert what == ("all_gather", 0) and work.label == "all_gather" and not on_main
    gate.future.set_result(None)
    pg.queue.shutdown()


def test_open_transfers_expire():
    pg = group(timeout=1.0)
    key = pg.open_p2p("recv from rank 1 (tag 0)", None, True)
    later = time.monotonic() + 1.5
    assert pg.expired(later)[0] == "recv from rank 1 (tag 0)"
    pg.close_p2p(key)
    assert pg.expired(later) is None
    assert "recv from rank 1 (tag 0) on group G did not complete within the group's timeout of 1 s" in \
        pg.timeout_message("recv from rank 1 (tag 0)", 1.5)


def test_report_names_the_ranks_that_have_not_reached_it():
    pg = group(ranks=(0, 2, 5))
    pg.board = FakeBoard([(4, OP_CODES["broadcast"], 1), (3, OP_CODES["all_reduce"], 0), None])
    text = pg.timeout_message(("broadcast", 4), 2.0)
    assert "broadcast (sequence number 4) on group G did not complete" in text
    assert "Ranks that have not reached it: [2]." in text
    assert "rank 2: last entered all_reduce #3, now outside any collective" in text
    assert "could not be read (busy outside MPI, so not there either): [5]" in text
    pg.board = FakeBoard([(4, OP_CODES["broadcast"], 1), (3, OP_CODES["barrier"], 1), (-1, 0, 0)])
    text = pg.timeout_message(("broadcast", 4), 2.0)
    assert "Ranks that have not reached it: [2, 5]." in text
    assert "rank 2: waiting in barrier #3" in text and "rank 5: has not entered any collective" in text
    pg.board = FakeBoard([(4, 2, 1), (4, 2, 1), (4, 2, 1)])
    assert "Every rank has reached it" in pg.timeout_message(("broadcast", 4), 2.0)


def test_gpu_work_expires_when_its_event_does_not_complete():
    nccl = FakeNccl()
    pg = group(timeout=1.0, nccl=nccl)
    nccl.next_done = True
    assert pg.issue(Collective("all_reduce", nccl.allreduce, (), (), [1]), async_op=True).result() == [1]
    nccl.next_done = False
    pg.issue(Collective("all_reduce", nccl.allreduce, (), ()))
    later = time.monotonic() + 1.5
    assert pg.expired(time.monotonic()) is None
    assert pg.expired(later)[0] == ("all_reduce", 1)
    assert len(pg.gpu_pending) == 1  # the finished one was dropped


def test_nccl_async_errors_end_the_job():
    pg = group(nccl=FakeNccl(error="unhandled cuda error"))
    what = pg.expired(time.monotonic())[0]
    assert "NCCL reported: unhandled cuda error" in what


def test_say_prefixes_every_line(capsys):
    watchdog_mod._say(3, "one\ntwo\n")
    assert capsys.readouterr().err == "[rank 3] one\n[rank 3] two\n"


def test_a_call_with_its_own_timeout_expires_on_it():
    """barrier(timeout=...) style: the call's limit, not the group's, decides and is named in the report."""
    pg = group(timeout=60.0)
    seen = []

    def check():
        now = time.monotonic()
        seen.append((pg.expired(now + 0.2), pg.expired(now + 0.6)))

    pg.issue(Collective("barrier", check, (), (), timeout=0.5))
    early, late = seen[0]
    assert early is None
    assert late[0] == ("barrier", 0, 0.5) and late[3] is True
    text = pg.timeout_message(late[0], 0.6)
    assert "barrier (sequence number 0) on group G did not complete within its timeout of 0.5 s" in text
    assert pg.expired(time.monotonic() + 1) is None  # over: nothing in flight


def test_queued_work_run_by_the_waiting_main_thread_is_reported_as_blocking_it():
    pg = group(timeout=1.0)
    seen = []

    def op():
        seen.append((pg.expired(time.monotonic() + 2), threading.current_thread() is threading.main_thread()))

    for _ in range(5):  # whichever thread runs it, the report says whether the main thread is the one blocked
        work = pg.issue(Collective("all_reduce", op, (), ()), async_op=True)
        work.wait()  # runs it here, unless the communication thread was quicker
        (what, _, running, on_main), ran_on_main = seen.pop()
        assert what[0] == "all_reduce" and running is work
        assert on_main is ran_on_main
    pg.queue.shutdown()


def test_object_collectives_on_a_group_with_an_nccl_communicator():
    """Object collectives pass plain functions to ProcessGroup.run; an NCCL group must run them over MPI."""
    import dtorch.distributed as dist

    pg = group(nccl=FakeNccl())
    out = [None]
    dist.all_gather_object(out, {"a": 1}, group=pg)
    assert out == [{"a": 1}]
    items = ["x", 2]
    dist.broadcast_object_list(items, src=0, group=pg)
    assert items == ["x", 2]
    assert list(pg.gpu_pending) == []  # nothing was taken for GPU work


def test_a_stalled_queue_expires():
    """Queued work that never starts (nothing runs it) is seen, not only started work."""
    pg = group(timeout=1.0)
    entry_time = time.monotonic()
    work = Work("broadcast")
    with pg.queue._lock:  # as if the thread that should run it were gone
        pg.queue._queue.append((Collective("broadcast", print, (), ()), work, entry_time))
    assert pg.expired(entry_time + 0.5) is None
    what, started, found, on_main = pg.expired(entry_time + 1.5)
    assert "broadcast (queued, not started" in what and found is work and started == entry_time


def test_a_member_that_left_is_reported_only_for_collectives_it_never_reached():
    pg = group(ranks=(0, 1, 2))
    gone = [None, ProgressBoard.decode_departure(ProgressBoard.encode_departure(3)), None]
    pg.board = pg.world_board = FakeBoard([(5, 1, 1), (4, OP_CODES["all_reduce"], 0), (5, 1, 1)], gone)
    assert pg.departed() is None  # nothing in flight: nobody waits
    pg.inflight = ("all_reduce", 5, time.monotonic(), pg.timeout)
    message, work, on_main, code = pg.departed()
    assert code == 3 and work is None
    assert message == ("dtorch.distributed: rank 1 left the job (exit code 3) while rank 0 waits for it in all_reduce "
                       "(sequence number 5) on group G; rank 1 last entered all_reduce #4.")
    pg.board.states[1] = (5, OP_CODES["all_reduce"], 0)  # it reached this one: the collective completes without it
    assert pg.departed() is None
    pg.board.gone[1] = (0, True)
    pg.board.states[1] = (-1, 0, 0)
    message = pg.departed()[0]
    assert "(exit code 0, after an uncaught exception in one of its threads)" in message
    assert "never entered a collective of this group" in message


def test_a_transfer_with_a_member_that_left():
    pg = group(ranks=(0, 1, 2))
    pg.board = pg.world_board = FakeBoard([(0, 0, 0)] * 3, [None, None, (4, False)])
    work = Work("irecv from rank 2 (tag 0)")
    key = pg.open_p2p("irecv from rank 2 (tag 0)", work, False, peer=2)
    other = pg.open_p2p("recv from rank 1 (tag 0)", None, True, peer=1)
    now = time.monotonic()
    assert pg.departed(now) is None  # given a moment: what rank 2 sent before leaving is still delivered
    message, found, on_main, code = pg.departed(now + 2)
    assert message == ("dtorch.distributed: rank 2 left the job (exit code 4) while rank 0 waits for it in irecv "
                       "from rank 2 (tag 0) on group G.")
    assert found is work and code == 4 and not on_main
    pg.close_p2p(key)
    assert pg.departed(now + 2) is None  # rank 1 is still there
    pg.close_p2p(other)


class ExplodingGroup:
    name = "broken"

    def expired(self, now):
        raise ValueError("a check that fails")

    def size(self):
        return 2


def test_the_watchdog_survives_its_own_errors(caplog):
    dog = watchdog_mod.Watchdog()
    fired = []
    dog.fire = lambda group, *args: fired.append(group)
    broken, stuck = ExplodingGroup(), group(timeout=1.0)
    stuck.inflight = ("barrier", 0, time.monotonic() - 5, 1.0)
    dog._groups.add(broken)
    with caplog.at_level(logging.ERROR, logger="dtorch.distributed"):
        dog.check(time.monotonic())  # logged, and no exception out of the round
        dog._groups.add(stuck)
        for _ in range(3):
            dog.check(time.monotonic())
    assert fired == [stuck] * 3  # the broken group does not blind it to the stuck one
    assert "could not check group broken" in caplog.text and "a check that fails" in caplog.text


def test_the_watchdog_thread_outlives_a_failing_round(caplog):
    dog = watchdog_mod.Watchdog()
    dog.interval = 0.005
    rounds = []

    def check(now):
        rounds.append(now)
        if len(rounds) == 1:
            raise RuntimeError("the first round fails")

    dog.check = check
    with caplog.at_level(logging.ERROR, logger="dtorch.distributed"):
        thread = threading.Thread(target=dog._loop, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while len(rounds) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        dog.firing = True  # what ends the loop
        thread.join(5)
    assert len(rounds) >= 3 and not thread.is_alive()
    assert "the watchdog's round failed" in caplog.text
