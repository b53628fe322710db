"""The README's main job: DDP over 2 ranks under dtorchrun reaches its accuracy bar and writes its checkpoint,
metrics and plot; ``--resume`` after a stop, and after a rank killed mid-epoch (``--max-restarts 1``), ends with
parameters bitwise equal to a run that went through; without restarts a killed rank ends the job, named."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

import dtorch
from distributed.jobs import OWN_LAUNCHER, ROOT, clean_env

SCRIPT = os.path.join(ROOT, "examples", "train_digits.py")
pytestmark = OWN_LAUNCHER


def env():
    return clean_env(DTORCHRUN_GRACE="3")


def dtorchrun(*args, options=("--nproc-per-node", "2"), limit=180):
    command = [sys.executable, "-m", "dtorch.distributed.run", *options, SCRIPT, "--no-progress", *args]
    return subprocess.run(["timeout", "-s", "KILL", str(limit)] + command, capture_output=True, text=True, env=env())


def parameters(out_dir):
    state = dtorch.load(os.path.join(out_dir, "checkpoint.pt"))
    return {name: t.numpy() for name, t in state["model"].items()}, state


def assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


def test_main_job_reaches_95_percent_and_writes_its_outputs(tmp_path):
    start = time.monotonic()
    done = dtorchrun("--out-dir", str(tmp_path / "run"))
    took = time.monotonic() - start
    assert done.returncode == 0, done.stdout + done.stderr
    assert took < 120
    epochs = [line for line in done.stdout.splitlines() if line.startswith("[rank0]:epoch")]
    assert len(epochs) == 20 and not [line for line in done.stdout.splitlines() if line.startswith("[rank1]:")]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and len(metrics["epochs"]) == 20
    assert metrics["final_test_accuracy"] >= 0.95
    assert f"metrics: {tmp_path / 'run' / 'metrics.json'}" in done.stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "plot: skipped" in done.stdout
    else:
        assert (tmp_path / "run" / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plot: {tmp_path / 'run' / 'plot.png'}" in done.stdout


def _rank_process(rank):
    """The pid of the train_digits script running as ``rank`` (from /proc)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            if SCRIPT.encode() not in cmd or b"--dtorchrun-agent" in cmd:
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if f"RANK={rank}".encode() in f.read().split(b"\0"):
                    return int(entry)
        except OSError:
            continue
    return None


def _kill_rank_during_epoch_two(out_dir, restarts):
    """Run 2 epochs; SIGKILL rank 1 once epoch 1 is checkpointed. Returns (exit code, output, seconds after kill)."""
    command = [sys.executable, "-m", "dtorch.distributed.run", "--nproc-per-node", "2", "--max-restarts",
               str(restarts), SCRIPT, "--no-progress", "--epochs", "2", "--resume", "--out-dir", str(out_dir)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())
    lines, killed_at = [], None
    try:
        for line in proc.stdout:
            lines.append(line)
            if killed_at is None and line.startswith("[rank0]:epoch  1"):
                pid = _rank_process(1)
                assert pid is not None, "".join(lines)
                os.kill(pid, signal.SIGKILL)
                killed_at = time.monotonic()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed_at is not None, "".join(lines)  # the first epoch never ended
    return code, "".join(lines), time.monotonic() - killed_at


def test_stop_and_resume_and_a_restart_after_a_kill_end_bitwise_equal(tmp_path):
    done = dtorchrun("--epochs", "2", "--out-dir", str(tmp_path / "through"))
    assert done.returncode == 0, done.stdout + done.stderr
    reference, state = parameters(tmp_path / "through")
    assert state["epoch"] == 2

    first = dtorchrun("--epochs", "2", "--stop-after", "1", "--out-dir", str(tmp_path / "resumed"))
    assert first.returncode == 0 and "stopped after epoch 1" in first.stdout, first.stdout + first.stderr
    second = dtorchrun("--epochs", "2", "--resume", "--out-dir", str(tmp_path / "resumed"))
    assert second.returncode == 0 and "resuming from" in second.stdout, second.stdout + second.stderr
    assert_bitwise_equal(reference, parameters(tmp_path / "resumed")[0])

    code, out, _ = _kill_rank_during_epoch_two(tmp_path / "restarted", restarts=1)
    assert code == 0, out
    assert "the first rank to fail: rank 1 was killed by signal SIGKILL" in out
    assert "restarting the whole group" in out and "[rank0]:resuming from" in out
    restored, state = parameters(tmp_path / "restarted")
    assert state["epoch"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]
    assert_bitwise_equal(reference, restored)


def test_a_killed_rank_ends_the_job_within_30_seconds(tmp_path):
    code, out, after_kill = _kill_rank_during_epoch_two(tmp_path / "killed", restarts=0)
    assert code != 0 and after_kill < 30, out
    assert "the first rank to fail: rank 1 was killed by signal SIGKILL" in out
    deadline = time.monotonic() + 5
    while (_rank_process(0) or _rank_process(1)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rank_process(0) is None and _rank_process(1) is None
