"""Small jobs launched under their own ``mpiexec`` (with a timeout), for the tests of jobs that must end, not hang.

Such tests are skipped inside an MPI run of the suite (no nested launchers): plain pytest runs them.
"""

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPIEXEC = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")

OWN_LAUNCHER = [
    pytest.mark.skipif(int(os.environ.get("PMI_SIZE", "1")) > 1, reason="launches its own mpiexec: run serially"),
    pytest.mark.skipif(not os.path.exists(MPIEXEC), reason="no mpiexec"),
]

PRELUDE = """
import os, sys, time
import numpy as np
import dtorch.distributed as dist
"""


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "MPI_LOCAL")) and
           k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["DTORCH_ABORT_GRACE"] = "0.5"
    env.update(extra)
    return env


def run_job(tmp_path, body, n=2, args=None, env=None, limit=60):
    script = tmp_path / "job.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    command = args or [MPIEXEC, "-n", str(n), sys.executable, str(script)]
    start = time.monotonic()
    done = subprocess.run(["timeout", str(limit)] + [c if c != "SCRIPT" else str(script) for c in command],
                          capture_output=True, text=True, env=clean_env(**(env or {})), cwd=str(tmp_path))
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


def processes_running(script):
    """Processes whose command line names ``script`` (read from /proc; empty where there is no /proc)."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
                with open(f"/proc/{entry}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if str(script).encode() in cmd and state != "Z":
                    found.append((int(entry), state, cmd.replace(b"\0", b" ").decode(errors="replace")))
            except OSError:
                pass
    return found


def own_launcher(test):
    """Mark a test that launches its own mpiexec (skipped inside an MPI run, and where there is no mpiexec)."""
    for mark in OWN_LAUNCHER:
        test = mark(test)
    return test
