"""The progress board's one encoding, the departure word, and the point-to-point poller (no MPI needed: fake
windows and requests)."""

import logging
import time

from dtorch.distributed.progress import ProgressBoard, RequestPoller
from dtorch.distributed.work import Work


class FakeWindow:
    """A SlotWindow of ``size`` ranks in one process: rank ``rank``'s words are ``mine``."""

    def __init__(self, size=2, rank=0):
        self.words = [[0, 0] for _ in range(size)]
        self.mine = self.words[rank]

    def read(self, slot, timeout=1.0):
        return [words[slot] for words in self.words]

    def free(self):
        pass


def test_encoding_round_trips():
    for seq, code, inside in [(0, 0, 0), (41, 3, 1), (2**40, 2**15 - 1, 1), (-1, 0, 0)]:
        assert ProgressBoard.decode(ProgressBoard.encode(seq, code, inside)) == (seq, code, inside)
    assert ProgressBoard.decode_departure(0) is None
    for code, died in [(0, False), (3, False), (255, True)]:
        assert ProgressBoard.decode_departure(ProgressBoard.encode_departure(code, died)) == (code, died)


def test_board_posts_and_departures():
    window = FakeWindow(size=3, rank=1)
    board = ProgressBoard(window)
    assert board.read() == [(0, 0, 0), (-1, 0, 0), (0, 0, 0)]  # the fake peers never initialised theirs
    board.post(7, 2, True)
    assert board.read()[1] == (7, 2, 1)
    board.post(7, 2, False)
    assert board.read()[1] == (7, 2, 0)
    assert board.departures() == [None, None, None]
    board.depart(3, thread_died=True)
    assert board.departures() == [None, (3, True), None]


class FakeRequest:
    def __init__(self, ready_after=0, error=None):
        self.polls = 0
        self.ready_after = ready_after
        self.error = error

    def test(self):
        self.polls += 1
        if self.error is not None:
            raise self.error
        return self.polls > self.ready_after


def wait_until(predicate, seconds=5):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.001)
    return predicate()


def test_poller_completes_works_and_survives_raising_callbacks(caplog):
    poller = RequestPoller()
    with caplog.at_level(logging.ERROR, logger="dtorch.distributed"):
        first = Work("irecv")
        first.get_future().add_done_callback(lambda f: 1 / 0)
        poller.watch(FakeRequest(ready_after=2), first, result=lambda r: "from 1")
        failing = poller.watch(FakeRequest(error=RuntimeError("transfer failed")), Work("isend"))
        assert wait_until(lambda: first.is_completed() and failing.is_completed())
        later = [poller.watch(FakeRequest(ready_after=i), Work(f"later{i}")) for i in range(4)]
        assert wait_until(lambda: all(w.is_completed() for w in later))  # the poller thread is still alive
    assert first.result() == "from 1"
    assert isinstance(failing.exception(), RuntimeError)
    assert any("Future callback raised" in r.getMessage() for r in caplog.records)
