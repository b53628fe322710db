"""The README's main job runs end to end: it trains, reaches its accuracy bar, saves and reloads a checkpoint."""

import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "examples" / "train_digits.py"


def test_train_digits_reaches_accuracy_and_reloads(tmp_path):
    checkpoint = tmp_path / "digits.pt"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--epochs", "6", "--checkpoint", str(checkpoint)],
        capture_output=True, text=True, timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    epochs = [line for line in run.stdout.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 6
    first_loss = float(epochs[0].split("train loss")[1].split()[0])
    last_loss = float(epochs[-1].split("train loss")[1].split()[0])
    assert last_loss < first_loss / 4
    assert "reloads with test accuracy" in run.stdout
    assert checkpoint.exists()
