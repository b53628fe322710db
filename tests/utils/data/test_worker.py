"""The worker transport in one process: large arrays through a /dev/shm file, small ones inline."""
import os

import numpy as np
import pytest

import dtorch
from dtorch.utils.data import _worker


def test_large_arrays_go_through_a_file_that_decode_unlinks(tmp_path):
    big = np.arange(_worker.SHM_MIN_BYTES, dtype=np.float32).reshape(-1, 8)
    small = np.arange(3)
    batch = {"x": dtorch.from_numpy(big), "y": small, "names": ["a", "b"], "view": big[::2, 1:]}
    path = os.path.join(_worker.shm_dir(), f"dtorch-dl-test-{os.getpid()}-w0-0")
    payload, written, size = _worker.encode(batch, path)
    assert written == path and os.path.exists(path) and size >= 2 * big.nbytes // 2
    out = _worker.decode(payload, written, size)
    assert not os.path.exists(path)  # unlinked at once; the mapping lives on in the arrays
    assert isinstance(out["x"], dtorch.Tensor) and np.array_equal(out["x"].numpy(), big)
    assert np.array_equal(out["view"], big[::2, 1:]) and out["names"] == ["a", "b"]
    assert np.array_equal(out["y"], small)
    out["x"].numpy()[0, 0] = -1.0  # the received memory is private and writable
    assert big[0, 0] == 0.0


def test_small_batches_need_no_file():
    payload, path, size = _worker.encode((np.zeros(4), 7, "s"), "/nonexistent/never-created")
    assert path is None and size == 0
    out = _worker.decode(payload, path, size)
    assert out[1:] == (7, "s") and np.array_equal(out[0], np.zeros(4))


def test_discard_and_sweep_remove_files():
    token = f"sweeptest-{os.getpid()}"
    paths = [os.path.join(_worker.shm_dir(), f"dtorch-dl-{token}-w{w}-0") for w in (0, 1)]
    for path in paths:
        _worker.encode(np.zeros(_worker.SHM_MIN_BYTES), path)
    _worker.sweep(token, 0)
    assert not os.path.exists(paths[0]) and os.path.exists(paths[1])
    _worker.discard(paths[1])
    _worker.discard(paths[1])  # twice is fine
    assert not os.path.exists(paths[1])


def test_exception_wrapper_keeps_type_and_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        wrapper = _worker.ExceptionWrapper(sys.exc_info(), "in DataLoader worker process 3")
    with pytest.raises(ValueError, match="(?s)Caught ValueError in DataLoader worker process 3.*boom"):
        wrapper.reraise()

    class NeedsTwo(Exception):
        def __init__(self, a, b):
            super().__init__(a, b)

    try:
        raise NeedsTwo(1, 2)
    except NeedsTwo:
        import sys

        wrapper = _worker.ExceptionWrapper(sys.exc_info(), "in DataLoader worker process 0")
    with pytest.raises(RuntimeError, match="Caught NeedsTwo"):
        wrapper.reraise()


def _raise_in_init(worker_id):
    raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize("is_iterable", [False, True])
def test_worker_whose_set_up_failed_names_that_failure_on_every_task(is_iterable):
    """The first task gets the full error with its traceback; every later one a RuntimeError naming it, never an
    AttributeError from a missing fetcher (and no new epoch starts the stream of an iterable)."""
    dataset = [1, 2, 3] if not is_iterable else iter([])
    worker = _worker._Worker(is_iterable, dataset, True, list, False, 3, "unit")
    worker.start(seed=1, base_seed=0, num_workers=4, init_fn=_raise_in_init)
    answers = [worker.answer(epoch, [0]) for epoch in (0, 0, 1, 2)]
    assert all(isinstance(a, _worker.ExceptionWrapper) for a in answers)
    caught = "(?s)Caught ZeroDivisionError in DataLoader worker process 3.*_raise_in_init"
    with pytest.raises(ZeroDivisionError, match=caught):
        answers[0].reraise()
    for answer in answers[1:]:
        with pytest.raises(RuntimeError, match="DataLoader worker process 3 could not start: its worker_init_fn raised "
                                               "ZeroDivisionError: division by zero"):
            answer.reraise()
    assert worker.fetcher is None


def test_healthy_worker_answers_batches():
    worker = _worker._Worker(False, [10, 20, 30], True, list, False, 0, "unit")
    worker.start(seed=1, base_seed=0, num_workers=1, init_fn=None)
    assert worker.answer(0, [2, 0]) == [30, 10] and worker.broken is None
