"""Smoke tests of the examples on tiny settings: each runs as a user runs it (dtorchrun with 2 ranks, mp.spawn, or
one process) and must finish with its closing lines. The vision example runs on generated files in the datasets'
own formats, and skips cleanly when the files are absent."""

import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from distributed.jobs import ROOT, clean_env, own_launcher
from dtorch.vision.datasets import CIFAR10, write_idx

EXAMPLES = os.path.join(ROOT, "examples")


def env():
    clean = clean_env()
    clean.setdefault("OMP_NUM_THREADS", "1")
    return clean


def run(args, ranks=None, cwd=None, limit=180):
    launcher = [sys.executable, "-m", "dtorch.distributed.run", "--nproc-per-node", str(ranks)] if ranks else \
        [sys.executable]
    done = subprocess.run(["timeout", "-s", "KILL", str(limit)] + launcher + args, capture_output=True, text=True,
                          env=env(), cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, done.stderr


def write_mnist(folder, n_train=128, n_test=64, seed=0):
    """IDX files whose images show their label (a bright bar at a row that depends on it): learnable at once."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for image, label in zip(images, labels):
            image[2 + 2 * label:4 + 2 * label, 4:24] = 255
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), images)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), labels)


@own_launcher
def test_vision_cnn_on_mnist_files_with_ddp(tmp_path):
    write_mnist(tmp_path / "data" / "MNIST" / "raw")
    out, _ = run([os.path.join(EXAMPLES, "train_vision_cnn.py"), "--dataset", "mnist", "--data-dir",
                  str(tmp_path / "data"), "--epochs", "2", "--batch-size", "16", "--save", str(tmp_path / "m.pt")],
                 ranks=2)
    accuracies = [float(x) for x in re.findall(r"test accuracy (\d\.\d+)", out)]
    assert len(accuracies) == 2 and "[rank0]:mnist: 128 training and 64 test images on 2 rank(s)" in out
    assert accuracies[-1] > 0.3  # ten classes: chance is 0.1
    assert (tmp_path / "m.pt").exists()


def test_vision_cnn_on_cifar_files_and_missing_files(tmp_path):
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in CIFAR10.train_list + CIFAR10.test_list:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (16, 3072), dtype=np.uint8),
                         b"labels": rng.integers(0, 10, 16).tolist()}, f, protocol=2)
    out, _ = run([os.path.join(EXAMPLES, "train_vision_cnn.py"), "--dataset", "cifar10", "--data-dir",
                  str(tmp_path / "data"), "--epochs", "1", "--batch-size", "16", "--save", str(tmp_path / "c.pt")])
    assert "cifar10: 80 training and 16 test images on 1 rank(s)" in out and "epoch 1" in out
    out, err = run([os.path.join(EXAMPLES, "train_vision_cnn.py"), "--dataset", "fashion-mnist", "--data-dir",
                    str(tmp_path / "nothing")])
    assert "skipping: fashion-mnist files not found" in err and "train-images-idx3-ubyte" in err
    assert "epoch" not in out


@own_launcher
@pytest.mark.parametrize("script", ["train_lstm_lm.py", "train_transformer_lm.py"])
def test_language_models_with_ddp(tmp_path, script):
    sys.path.insert(0, EXAMPLES)
    try:
        from lm_data import toy_corpus
    finally:
        sys.path.remove(EXAMPLES)
    toy_corpus(str(tmp_path / "corpus"), sentences=(1500, 100, 100))
    out, _ = run([os.path.join(EXAMPLES, script), "--data", str(tmp_path / "corpus"), "--epochs", "2",
                  "--save", str(tmp_path / "lm.pt")], ranks=2)
    ppl = [float(x) for x in re.findall(r"valid ppl +(\d+\.\d+)", out)]
    assert len(ppl) == 2 and ppl[-1] < ppl[0] and ppl[-1] < 25, out  # 47 words: uniform guessing is 47
    assert (tmp_path / "lm.pt").exists()


@own_launcher
def test_ddp_tutorial_with_spawn(tmp_path):
    out, _ = run([os.path.join(EXAMPLES, "ddp_tutorial.py"), "--world-size", "2"], cwd=str(tmp_path))
    for rank in range(2):
        assert f"Finished running basic DDP example on rank {rank}." in out
        assert f"Finished running DDP checkpoint example on rank {rank}." in out
    assert out.rstrip().endswith("both demos done")


def test_quickstart_single_process(tmp_path):
    out, _ = run([os.path.join(EXAMPLES, "quickstart.py"), "--epochs", "3", "--save", str(tmp_path / "q.pth")])
    accuracies = [float(x) for x in re.findall(r"Accuracy: (\d+\.\d)%", out)]
    assert len(accuracies) == 4 and accuracies[-1] == accuracies[-2] > 60  # the reloaded model scores the same
    assert re.search(r'Predicted: "\d", Actual: "\d"', out) and (tmp_path / "q.pth").exists()


@pytest.mark.parametrize("variable", ["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"])
def test_examples_see_a_multi_rank_launch_from_any_launcher(monkeypatch, variable):
    """dtorchrun/torchrun, MPICH (mpiexec, srun), Open MPI and MVAPICH each announce the world size differently;
    an example that missed one would train alone on every rank."""
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "train_digits.py")
    spec = importlib.util.spec_from_file_location("train_digits_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in module.LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    started = []
    monkeypatch.setattr(module.dist, "init_process_group", lambda backend: started.append(backend))
    monkeypatch.setattr(module.dist, "get_rank", lambda: 0)
    monkeypatch.setattr(module.dist, "get_world_size", lambda: 2)
    assert module.setup("gloo")[:2] == (0, 1) and started == []
    monkeypatch.setenv(variable, "2")
    assert module.setup("gloo")[:2] == (0, 2) and started == ["gloo"]
