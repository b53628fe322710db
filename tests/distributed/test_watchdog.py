"""The timeout watchdog's decisions and reports, on a world of one with fake boards and a fake NCCL communicator
(the end-to-end behaviour, a job that is ended, is in test_job_failures)."""

import threading
import time

from dtorch.collectives.base import Work
from dtorch.collectives.local import LocalCommunicator
from dtorch.distributed import watchdog as watchdog_mod
from dtorch.distributed.process_group import OP_CODES, ProcessGroup


class FakeBoard:
    def __init__(self, states):
        self.states = states

    def read(self, timeout=1.0):
        return self.states


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
    assert what == ("all_reduce", 7) and started == now and work is None and on_main


def test_a_queued_collective_names_its_work():
    pg = group()
    gate = Work("gate")
    pg.executor.submit(lambda: gate.wait(5), (), Work("all_gather"))
    deadline = time.monotonic() + 5
    while pg.executor.current is None and time.monotonic() < deadline:
        time.sleep(0.001)
    pg.inflight = ("all_gather", 0, time.monotonic() - 10, pg.timeout)
    what, _, work, on_main = pg.expired(time.monotonic())
    assert work.label == "all_gather" and not on_main
    gate.future.set_result(None)
    pg.executor.shutdown()


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
    pg._execute_on_gpu("all_reduce", 0, lambda: None, (), (), None)
    nccl.next_done = False
    pg._execute_on_gpu("all_reduce", 1, lambda: None, (), (), None)
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

    pg.run("barrier", check, (), (), False, timeout=0.5)
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
        work = pg.executor.submit(pg._execute, ("all_reduce", 0, op, (), (), None, pg.timeout), Work("all_reduce"))
        work.wait()  # runs it here, unless the communication thread was quicker
        (what, _, running, on_main), ran_on_main = seen.pop()
        assert what == ("all_reduce", 0) and running is work
        assert on_main is ran_on_main
    pg.executor.shutdown()


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
