"""DataLoader: batching and arguments against torch, and real worker processes (errors, deaths, orphans,
seeding, shared memory)."""
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch.utils.data as tud

import dtorch
from dtorch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, get_worker_info
from dtorch.utils.data import _worker

pytestmark = pytest.mark.timeout(60)


class Squares(Dataset):
    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((2,), i * i, dtype=np.int64), i


class Pids(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        return os.getpid()


class Failing(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise ValueError(f"bad sample {i}")
        return i


class Dying(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return i


class Slow(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(10)
        return i


class Sharded(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


class Unsharded(IterableDataset):
    def __iter__(self):
        return iter(range(3))


class TorchUnsharded(tud.IterableDataset):
    def __iter__(self):
        return iter(range(3))


class SizedSharded(Sharded):
    def __len__(self):
        return self.n


class TorchSizedSharded(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        info = tud.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


class FailingStream(IterableDataset):
    def __iter__(self):
        info = get_worker_info()
        for i in range(6):
            if info is not None and info.id == 1 and i == 2:
                raise ValueError("stream broke")
            yield i


class Recording(Dataset):
    """Leaves one file per fetched index, so the test sees how far the workers ran ahead."""

    def __init__(self, folder):
        self.folder = folder

    def __len__(self):
        return 100

    def __getitem__(self, i):
        open(os.path.join(self.folder, str(i)), "w").close()
        return i


class Big(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return np.full((256, 256), i, np.float32), {"id": i, "tag": f"s{i}"}


class Seeds(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        info = get_worker_info()
        return np.array([info.id, info.seed % 1000, info.num_workers]), dtorch.random.numpy_generator().random()


class AllRngs(Dataset):
    """What each global RNG a worker seeds gives, plus the worker's seed as dtorch reports it."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        import random

        info = get_worker_info()
        return (info.id, info.seed, dtorch.initial_seed(), random.random(), float(np.random.random()),
                float(dtorch.rand(1).item()))


def as_lists(loader):
    return [[b.tolist() if hasattr(b, "tolist") else b for b in batch] for batch in loader]


def leftover_shm():
    return glob.glob(os.path.join(_worker.shm_dir(), f"dtorch-dl-{os.getpid()}-*"))


def test_batches_match_torch_single_process():
    ds = Squares(10)
    for kwargs in ({"batch_size": 3}, {"batch_size": 3, "drop_last": True}, {"batch_size": 1}):
        mine, ref = DataLoader(ds, **kwargs), tud.DataLoader(ds, **kwargs)
        assert len(mine) == len(ref)
        assert as_lists(mine) == as_lists(ref), kwargs


def test_batch_size_none_converts_each_sample():
    out = list(DataLoader(Squares(3), batch_size=None))
    assert len(out) == 3 and out[2][0].tolist() == [4, 4] and out[2][1] == 2


def test_tensor_dataset_batches():
    ds = TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert isinstance(x, dtorch.Tensor) and tuple(x.shape) == (4, 2) and y.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("kwargs, message", [
    ({"num_workers": -1}, "num_workers"),
    ({"timeout": -1}, "timeout"),
    ({"prefetch_factor": 2}, "prefetch_factor"),
    ({"persistent_workers": True}, "persistent_workers"),
    ({"shuffle": True, "sampler": [0, 1]}, "mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler option is mutually exclusive"),
    ({"batch_size": None, "drop_last": True}, "batch_size=None"),
])
def test_argument_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(Squares(), **kwargs)
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Unsharded(), shuffle=True)


def test_shuffle_reproducible_with_generator_and_workers():
    def epoch(workers, seed):
        loader = DataLoader(Squares(20), batch_size=4, shuffle=True, num_workers=workers,
                            generator=dtorch.Generator().manual_seed(seed))
        return [b[1].tolist() for b in loader]

    first = epoch(0, 1)
    assert sorted(sum(first, [])) == list(range(20))
    assert epoch(2, 1) == first
    assert epoch(0, 2) != first


def test_workers_give_the_same_batches_in_order():
    ds = Squares(23)
    expected = as_lists(DataLoader(ds, batch_size=4))
    for workers, prefetch in ((1, 1), (2, 2), (3, 4)):
        loader = DataLoader(ds, batch_size=4, num_workers=workers, prefetch_factor=prefetch)
        assert as_lists(loader) == expected
    assert not leftover_shm()


def test_large_arrays_travel_through_shared_memory():
    loader = DataLoader(Big(), batch_size=2, num_workers=2)
    for k, (x, meta) in enumerate(loader):
        assert tuple(x.shape) == (2, 256, 256)
        assert x.numpy()[:, 0, 0].tolist() == [2 * k, 2 * k + 1] and x.numpy().mean() == 2 * k + 0.5
        assert meta["tag"] == [f"s{2 * k}", f"s{2 * k + 1}"]
    assert not leftover_shm()


def test_iterable_dataset_shards_through_worker_info():
    out = sorted(sum((b.tolist() for b in DataLoader(Sharded(17), batch_size=3, num_workers=3)), []))
    assert out == list(range(17))
    # torch's semantics: an iterable that does not shard itself is repeated by each worker
    assert sorted(sum((b.tolist() for b in DataLoader(Unsharded(), batch_size=2, num_workers=2)), [])) == \
        sorted(sum((b.tolist() for b in tud.DataLoader(TorchUnsharded(), batch_size=2, num_workers=2)), []))


def test_worker_exception_names_worker_and_traceback():
    loader = DataLoader(Failing(), batch_size=2, num_workers=2)
    with pytest.raises(ValueError) as info:
        list(loader)
    message = str(info.value)
    assert "Caught ValueError in DataLoader worker process 0" in message  # batch [4, 5] goes to worker 0
    assert "Traceback (most recent call last)" in message and "bad sample 5" in message
    assert "__getitem__" in message


def test_dead_worker_is_reported_not_waited_on():
    start = time.monotonic()
    it = iter(DataLoader(Dying(), batch_size=2, num_workers=2))
    with pytest.raises(RuntimeError, match=r"DataLoader worker 1 \(pid \d+\) exited unexpectedly"):
        list(it)
    assert time.monotonic() - start < 10
    with pytest.raises(RuntimeError, match="shut down after an earlier error"):
        next(it)


def test_timeout_raises():
    with pytest.raises(RuntimeError, match="timed out after 0.5 seconds"):
        next(iter(DataLoader(Slow(), batch_size=1, num_workers=1, timeout=0.5)))


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _wait_gone(pids, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if not _gone(p)]


def test_early_stop_leaves_no_workers():
    it = iter(DataLoader(Pids(), batch_size=4, num_workers=2))
    first, second = next(it), next(it)
    pids = set(first.tolist()) | set(second.tolist())
    assert len(pids) == 2 and os.getpid() not in pids
    del it
    assert _wait_gone(pids) == []
    assert not leftover_shm()


def test_killed_main_process_leaves_no_workers(tmp_path):
    script = textwrap.dedent("""
        import os, signal, sys
        import numpy as np
        sys.path.insert(0, sys.argv[1])
        from dtorch.utils.data import DataLoader, Dataset
        class Pids(Dataset):
            def __len__(self): return 1000
            def __getitem__(self, i): return np.full(10000, os.getpid())
        it = iter(DataLoader(Pids(), batch_size=4, num_workers=2))
        pids = {int(next(it)[0, 0]) for _ in range(2)}
        print(os.getpid(), " ".join(map(str, pids)), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    path = tmp_path / "main.py"
    path.write_text(script)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(dtorch.utils.__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + sys.path))
    proc = subprocess.run([sys.executable, str(path), root], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    main_pid, *pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 2
    assert _wait_gone(pids) == []
    assert not glob.glob(os.path.join(_worker.shm_dir(), f"dtorch-dl-{main_pid}-*"))  # workers swept their files


def test_main_exiting_mid_epoch_leaves_no_workers_or_files(tmp_path):
    script = textwrap.dedent("""
        import os, sys
        import numpy as np
        sys.path.insert(0, sys.argv[1])
        from dtorch.utils.data import DataLoader, Dataset
        class Pids(Dataset):
            def __len__(self): return 1000
            def __getitem__(self, i): return np.full(10000, os.getpid())
        it = iter(DataLoader(Pids(), batch_size=4, num_workers=2, prefetch_factor=4))
        pids = {int(next(it)[0, 0]) for _ in range(2)}
        print(os.getpid(), " ".join(map(str, pids)), flush=True)
    """)
    path = tmp_path / "main.py"
    path.write_text(script)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(dtorch.utils.__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + sys.path))
    proc = subprocess.run([sys.executable, str(path), root], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    main_pid, *pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 2 and _wait_gone(pids) == []
    assert not glob.glob(os.path.join(_worker.shm_dir(), f"dtorch-dl-{main_pid}-*"))


def test_persistent_workers_survive_epochs_and_restart_cleanly():
    loader = DataLoader(Pids(), batch_size=4, num_workers=2, persistent_workers=True)
    first = set(sum((b.tolist() for b in loader), []))
    it = iter(loader)
    next(it)  # abandon the second epoch early
    third = [b.tolist() for b in loader]
    assert len(third) == 16 and set(sum(third, [])) == first
    iterator = loader._iterator
    del loader
    assert iterator._shut_down and _wait_gone(first) == []


def test_persistent_iterable_restarts_stream_each_epoch():
    loader = DataLoader(Sharded(9), batch_size=2, num_workers=2, persistent_workers=True)
    for _ in range(2):
        assert sorted(sum((b.tolist() for b in loader), [])) == list(range(9))


def test_worker_seeding_and_info():
    def run(seed):
        loader = DataLoader(Seeds(), batch_size=1, num_workers=2, generator=dtorch.Generator().manual_seed(seed))
        return [(b[0].tolist()[0], b[1].tolist()[0]) for b in loader]

    first = run(0)
    ids = [row[0][0] for row in first]
    assert ids == [0, 1, 0, 1] and all(row[0][2] == 2 for row in first)
    assert first[0][0][1] != first[1][0][1]  # base_seed + id differ
    draws = [row[1] for row in first]
    assert draws[0] != draws[1]  # workers draw from different streams
    assert run(0) == first and run(1) != first


def test_worker_init_fn_runs_in_each_worker(tmp_path):
    def init(worker_id):
        (tmp_path / f"w{worker_id}").write_text(str(os.getpid()))

    list(DataLoader(Squares(8), batch_size=2, num_workers=2, worker_init_fn=init))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w0", "w1"]


def test_get_worker_info_is_none_in_main_process():
    assert get_worker_info() is None
    assert list(DataLoader(Sharded(4), batch_size=None)) == [0, 1, 2, 3]


def test_len_and_pin_memory_accepted():
    loader = DataLoader(Squares(10), batch_size=4, pin_memory=True)
    assert len(loader) == 3
    assert len(DataLoader(Squares(10), batch_size=4, drop_last=True)) == 2
    with pytest.raises(TypeError):
        len(DataLoader(Unsharded(), batch_size=2))


def test_errors_in_worker_init_and_in_sending_reach_the_main_process():
    def bad_init(worker_id):
        raise KeyError(f"no config for worker {worker_id}")

    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0"):
        list(DataLoader(Squares(4), batch_size=2, num_workers=1, worker_init_fn=bad_init))
    unpicklable = DataLoader(Squares(4), batch_size=2, num_workers=1, collate_fn=lambda batch: lambda: batch)
    with pytest.raises(Exception, match="in DataLoader worker process 0"):
        list(unpicklable)


def test_iterator_stays_usable_after_a_worker_error():
    it = iter(DataLoader(Failing(), batch_size=2, num_workers=2))
    got = []
    for _ in range(4):
        try:
            got.append(next(it).tolist())
        except ValueError:
            got.append("error")
    assert got == [[0, 1], [2, 3], "error", [6, 7]]


@pytest.mark.parametrize("workers", [0, 2, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_iterable_batches_and_len_match_torch(workers, drop_last):
    mine = DataLoader(SizedSharded(11), batch_size=2, num_workers=workers, drop_last=drop_last)
    ref = tud.DataLoader(TorchSizedSharded(11), batch_size=2, num_workers=workers, drop_last=drop_last)
    assert len(mine) == len(ref)
    assert [b.tolist() for b in mine] == [b.tolist() for b in ref]  # the same interleaving of the workers


def test_batch_size_none_and_batch_sampler_with_workers_match_torch():
    ds = Squares(9)
    mine = [b[1] for b in DataLoader(ds, batch_size=None, num_workers=2)]
    ref = [b[1] for b in tud.DataLoader(ds, batch_size=None, num_workers=2)]
    assert mine == ref == list(range(9))
    batches = [[8, 0], [3], [4, 5, 6], [1]]
    mine = DataLoader(ds, batch_sampler=batches, num_workers=2)
    ref = tud.DataLoader(ds, batch_sampler=batches, num_workers=2)
    assert len(mine) == len(ref) == 4 and as_lists(mine) == as_lists(ref)


def test_exception_in_an_iterable_worker_is_raised_with_its_id():
    with pytest.raises(ValueError, match="(?s)Caught ValueError in DataLoader worker process 1.*stream broke"):
        list(DataLoader(FailingStream(), batch_size=2, num_workers=2))


def test_default_generator_seeds_shuffle_and_workers():
    def epoch():
        dtorch.manual_seed(123)
        order = [b[1].tolist() for b in DataLoader(Squares(12), batch_size=3, shuffle=True, num_workers=2)]
        draws = [float(b[1]) for b in DataLoader(Seeds(), batch_size=None, num_workers=2)]
        return order, draws

    first = epoch()
    assert epoch() == first
    assert sorted(sum(first[0], [])) == list(range(12)) and len(set(first[1])) == 4


def test_spawn_context_gives_the_same_batches():
    x = np.arange(20 * 2048, dtype=np.float32).reshape(20, 2048)  # large enough for the shared-memory path
    ds = TensorDataset(x, np.arange(20))
    expected = [b[1].tolist() for b in DataLoader(ds, batch_size=4)]
    loader = DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="spawn")
    got = list(loader)
    assert [b[1].tolist() for b in got] == expected
    assert all(np.array_equal(b[0].numpy(), x[b[1].numpy()]) for b in got)
    assert not leftover_shm()


def test_iterator_collected_in_a_cycle_lets_its_workers_exit_cleanly():
    import gc

    def fail():
        it = iter(DataLoader(Failing(), batch_size=2, num_workers=2))
        processes = list(it._workers)
        try:
            list(it)
        except ValueError as error:
            return processes, error  # the traceback keeps the iterator alive, in a reference cycle

    processes, error = fail()
    assert all(p.is_alive() for p in processes)
    start = time.monotonic()
    gc.collect()  # a full collection with the iterator still alive: what traversing this (large) process costs
    baseline = time.monotonic() - start
    del error
    start = time.monotonic()
    gc.collect()
    # no waiting out the grace period (1 s) for workers that never got None: only the traversal's own time
    assert time.monotonic() - start - baseline < 0.8
    for p in processes:
        p.join(5)
    assert [p.exitcode for p in processes] == [0, 0]  # they left on their own, not by SIGTERM
    assert not leftover_shm()


@pytest.mark.parametrize("workers,prefetch", [(1, 1), (2, 3)])
def test_prefetch_factor_bounds_the_work_in_flight(tmp_path, workers, prefetch):
    it = iter(DataLoader(Recording(str(tmp_path)), batch_size=1, num_workers=workers, prefetch_factor=prefetch))
    assert next(it).tolist() == [0]
    expected = workers * prefetch + 1  # the initial tasks, plus the one sent when the first batch was taken
    deadline = time.monotonic() + 10
    while len(os.listdir(tmp_path)) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # give a worker that would run ahead the time to do so
    assert sorted(int(n) for n in os.listdir(tmp_path)) == list(range(expected))
    del it


def test_every_global_rng_is_seeded_per_worker():
    def run(seed):
        loader = DataLoader(AllRngs(), batch_size=None, num_workers=2, generator=dtorch.Generator().manual_seed(seed))
        return list(loader)

    first = run(0)
    assert [row[0] for row in first] == [0, 1, 0, 1]
    w0, w1 = first[0], first[1]
    assert w1[1] == w0[1] + 1  # seed = base_seed + worker id, as in PyTorch
    assert all(row[2] == row[1] for row in first)  # dtorch's default generator is seeded with it
    for k in (3, 4, 5):  # Python's random, NumPy's global RNG and dtorch's RNG differ between workers
        assert w0[k] != w1[k]
    assert run(0) == first and run(1)[0][3:] != first[0][3:]
