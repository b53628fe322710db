"""``dtorchrun``: each test launches its own small job (with a timeout) and checks what the user sees: the rank
variables, rank-prefixed output, log files, the failing rank named with its exit code and traceback, every process
gone, restarts, signals, and MPICH's /dev/shm segments removed. Skipped inside an MPI run of the suite (no nested
launchers); run by plain pytest."""

import contextlib
import mmap
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from distributed import jobs
from distributed.jobs import ROOT, own_launcher, processes_running
from dtorch.distributed import run as dtorchrun


def clean_env(**extra):
    """A job's environment (``jobs.clean_env``) without ``OMP_NUM_THREADS`` unless given (dtorchrun's default of 1
    is under test), and a short dtorchrun grace."""
    env = jobs.clean_env(**{"DTORCHRUN_GRACE": "3", **extra})
    if "OMP_NUM_THREADS" not in extra:
        env.pop("OMP_NUM_THREADS", None)
    return env


def launch(tmp_path, body, options=("--nproc-per-node", "2"), script_args=(), env=None, limit=60, name="job.py"):
    """Run ``dtorchrun OPTIONS job.py`` on ``body``; (exit code, stdout, stderr, seconds)."""
    script = tmp_path / name
    script.write_text(textwrap.dedent(body))
    start = time.monotonic()
    done = subprocess.run(["timeout", "-s", "KILL", str(limit), sys.executable, "-m", "dtorch.distributed.run",
                           *options, str(script), *script_args],
                          capture_output=True, text=True, env=clean_env(**(env or {})), cwd=str(tmp_path))
    return done.returncode, done.stdout, done.stderr, time.monotonic() - start


@contextlib.contextmanager
def sleeping_job(tmp_path, stderr=subprocess.PIPE):
    """A two-rank dtorchrun job whose ranks print 'up' and sleep: yields ``(process, script)`` once both ranks are
    up, and kills the launcher on the way out if the test left it running."""
    script = tmp_path / "job.py"
    script.write_text("import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "dtorch.distributed.run", "--nproc-per-node", "2", str(script)],
                            stdout=subprocess.PIPE, stderr=stderr, text=True, env=clean_env(), cwd=str(tmp_path))
    try:
        for _ in range(2):
            assert "up" in proc.stdout.readline()
        yield proc, script
    finally:
        if proc.poll() is None:
            proc.kill()

def assert_none_left(text, within=5.0):
    deadline = time.monotonic() + within
    while processes_running(text) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_running(text) == []


# ---- options, without a job ------------------------------------------------------------------------------------------


def test_options_and_their_errors(tmp_path):
    args = dtorchrun.parse_args(["--nproc-per-node", "3", "--max-restarts", "2", "train.py", "--lr", "1"])
    assert (args.nproc_per_node, args.max_restarts, args.script, args.script_args) == ("3", 2, "train.py",
                                                                                      ["--lr", "1"])
    assert dtorchrun.resolve_nproc("cpu") == os.cpu_count()
    assert dtorchrun.resolve_nproc("auto") >= 1
    with pytest.raises(ValueError, match="at least 1"):
        dtorchrun.resolve_nproc("0")
    with pytest.raises(ValueError, match="'auto'"):
        dtorchrun.resolve_nproc("many")
    with pytest.raises(SystemExit):
        dtorchrun.parse_args(["--node-rank", "1", "train.py"])
    with pytest.raises(SystemExit):
        dtorchrun.parse_args(["--max-restarts", "-1", "train.py"])
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\nnode1:4\nnode2 slots=2\nnode3\n\n")
    assert dtorchrun.read_hostfile(str(hosts)) == [("node1", 4), ("node2", 2), ("node3", None)]
    hosts.write_text("node1:four\n")
    with pytest.raises(ValueError, match="line 1"):
        dtorchrun.read_hostfile(str(hosts))
    args = dtorchrun.parse_args(["--standalone", "--rdzv-backend", "c10d", "--rdzv-endpoint", "node1:29400",
                                 "train.py"])
    assert (args.master_addr, args.master_port) == ("node1", 29400)
    args = dtorchrun.parse_args(["--nnodes", "2", "train.py"])
    if "SLURM_JOB_ID" not in os.environ:
        with pytest.raises(ValueError, match="--hostfile"):
            dtorchrun._hosts(args)


def test_shm_leftovers_are_removed_unless_mapped(tmp_path):
    old = tmp_path / "mpich_shm_old_0"
    old.write_bytes(b"x" * 4096)
    before = dtorchrun.shm_segments(directory=str(tmp_path))
    since = time.time()
    left = tmp_path / "mpich_shm_left_0"
    left.write_bytes(b"x" * 4096)
    used = tmp_path / "mpich_shm_used_0"
    used.write_bytes(b"x" * 4096)
    other = tmp_path / "someone_else"
    other.write_bytes(b"x")
    with open(used, "r+b") as f, mmap.mmap(f.fileno(), 4096):
        removed = dtorchrun.remove_shm_leftovers(before, since, directory=str(tmp_path))
    assert removed == ["mpich_shm_left_0"]
    assert old.exists() and used.exists() and other.exists() and not left.exists()



def test_a_zombie_counts_as_gone_and_a_running_process_does_not():
    # the job's end waits for its scripts to be gone; a killed script reparented to init is a zombie until reaped
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not dtorchrun._is_gone(running.pid)
        assert not dtorchrun._wait_until_gone([running.pid], timeout=0.2)
        os.kill(running.pid, signal.SIGKILL)  # not reaped: no poll() or wait() until it is a zombie

        def state():
            with open(f"/proc/{running.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]

        deadline = time.monotonic() + 10
        while state() != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state() == "Z"
        assert dtorchrun._is_gone(running.pid)
        assert dtorchrun._wait_until_gone([running.pid, None], timeout=1.0)
    finally:
        running.kill()
        running.wait()
    assert dtorchrun._is_gone(running.pid)


# ---- jobs ------------------------------------------------------------------------------------------------------------

ALL_REDUCE = """
    import os, sys
    names = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
             "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT", "OMP_NUM_THREADS"]
    print("env " + " ".join(f"{k}={os.environ.get(k)}" for k in names))  # one write: plain mpiexec interleaves
    import dtorch, dtorch.distributed as dist
    dist.init_process_group("gloo")
    t = dtorch.ones(3) * (dist.get_rank() + 1)
    dist.all_reduce(t)
    print(f"sum {t.tolist()} args {sys.argv[1:]}", file=sys.stderr)
"""


@own_launcher
def test_ranks_get_their_variables_and_reduce(tmp_path):
    code, out, err, _ = launch(tmp_path, ALL_REDUCE, script_args=("--flag", "x"))
    assert code == 0, out + err
    assert "OMP_NUM_THREADS is not set: setting it to 1" in err
    assert err.count("OMP_NUM_THREADS is not set") == 1
    envs = sorted(line for line in out.splitlines() if "env " in line)
    assert len(envs) == 2
    for rank, line in enumerate(envs):
        assert line.startswith(f"[rank{rank}]:env RANK={rank} LOCAL_RANK={rank} WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 "
                               f"GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT="), line
        assert "TORCHELASTIC_RESTART_COUNT=0 OMP_NUM_THREADS=1" in line
    ports = {re.search(r"MASTER_PORT=(\d+)", line).group(1) for line in envs}
    run_ids = {re.search(r"TORCHELASTIC_RUN_ID=(\w+)", line).group(1) for line in envs}
    assert len(ports) == 1 and len(run_ids) == 1
    for rank in range(2):
        assert f"[rank{rank}]:sum [3.0, 3.0, 3.0] args ['--flag', 'x']" in err


@own_launcher
def test_hostfile_naming_localhost_and_log_files(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("localhost:2\n")
    logs = tmp_path / "logs"
    code, out, err, _ = launch(tmp_path, ALL_REDUCE, options=("--hostfile", str(hosts), "--nproc-per-node", "2",
                                                              "--log-dir", str(logs), "--master-port", "29555"),
                               env={"OMP_NUM_THREADS": "2"})
    assert code == 0, out + err
    assert "[rank" not in out and "OMP_NUM_THREADS is not set" not in err  # logs only, and the user's setting kept
    for rank in range(2):
        text = (logs / f"rank_{rank}.log").read_text()
        assert f"env RANK={rank} " in text and "MASTER_PORT=29555" in text and "OMP_NUM_THREADS=2" in text
        assert "sum [3.0, 3.0, 3.0]" in text
    code, out, err, _ = launch(tmp_path, ALL_REDUCE, options=("--hostfile", str(hosts), "--nproc-per-node", "2",
                                                              "--log-dir", str(logs), "--tee"))
    assert code == 0 and "[rank1]:sum [3.0, 3.0, 3.0]" in err


@own_launcher
def test_the_launch_wrapper_runs_dtorchrun(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("import os\nprint('rank', os.environ['RANK'], 'of', os.environ['WORLD_SIZE'])\n")
    done = subprocess.run(["timeout", "-s", "KILL", "60", os.path.join(ROOT, "launch", "dtorchrun"),
                           "--nproc-per-node", "2", str(script)], capture_output=True, text=True,
                          env=clean_env(PYTHON=sys.executable), cwd=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[rank0]:rank 0 of 2" in done.stdout and "[rank1]:rank 1 of 2" in done.stdout


@own_launcher
def test_module_mode(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "hello.py").write_text("import os, sys\n"
                                               "print('hello from', os.environ['RANK'], sys.argv[1:])\n")
    done = subprocess.run(["timeout", "-s", "KILL", "60", sys.executable, "-m", "dtorch.distributed.run",
                           "--nproc-per-node", "2", "-m", "pkg.hello", "a"], capture_output=True, text=True,
                          env=clean_env(), cwd=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[rank0]:hello from 0 ['a']" in done.stdout and "[rank1]:hello from 1 ['a']" in done.stdout


@own_launcher
def test_a_raising_rank_ends_every_rank_and_its_traceback_is_shown_once(tmp_path):
    code, out, err, took = launch(tmp_path, """
        import time
        import dtorch.distributed as dist
        dist.init_process_group()
        if dist.get_rank() == 1:
            raise ValueError("boom on rank one")
        dist.barrier()          # rank 0 would wait here for ever
        time.sleep(60)
    """)
    assert code != 0 and took < 30, (code, took, out + err)
    text = out + err
    assert text.count("Traceback (most recent call last)") == 1, text
    assert "[rank1]:ValueError: boom on rank one" in err
    assert "the first rank to fail: rank 1" in err
    assert "dtorchrun:   ValueError: boom on rank one" in err  # the end of the traceback in the summary
    assert_none_left(tmp_path / "job.py")


@own_launcher
def test_a_rank_exiting_before_init_ends_the_others(tmp_path):
    code, out, err, took = launch(tmp_path, """
        import os, sys, time
        if os.environ["RANK"] == "1":
            sys.exit(3)
        import dtorch.distributed as dist
        dist.init_process_group()   # waits for rank 1, which never comes
        time.sleep(60)
    """)
    assert code == 3 and took < 30, (code, took, out + err)
    assert "the first rank to fail: rank 1 exited with code 3" in err
    assert_none_left(tmp_path / "job.py")


KILLED = """
    import os, signal, sys, time
    import dtorch, dtorch.distributed as dist
    from dtorch.utils.data import DataLoader, TensorDataset
    dist.init_process_group()
    with open("/proc/self/maps") as f:
        segments = sorted({line.split()[-1] for line in f if "/dev/shm/mpich_shm_" in line})
    print("segments", " ".join(segments), flush=True)
    loader = DataLoader(TensorDataset(dtorch.arange(1000.0)), batch_size=10, num_workers=1, persistent_workers=True)
    t = dtorch.ones(3)
    start = time.time()
    while True:
        for (batch,) in loader:
            dist.all_reduce(t)
            if dist.get_rank() == 1 and time.time() - start > 1.0:
                os.kill(os.getpid(), signal.SIGKILL)
"""


@own_launcher
def test_a_killed_rank_is_named_and_nothing_is_left(tmp_path):
    code, out, err, took = launch(tmp_path, KILLED)
    assert code != 0 and took < 30, (code, took, out + err)
    assert "the first rank to fail: rank 1 was killed by signal SIGKILL" in err, err
    assert_none_left(tmp_path / "job.py")  # both scripts and their DataLoader workers
    segments = {s for line in out.splitlines() if "segments" in line for s in line.split()[1:]}
    assert segments and not [s for s in segments if os.path.exists(s)]  # MPICH's /dev/shm files are gone


@own_launcher
def test_max_restarts_starts_the_group_again(tmp_path):
    code, out, err, _ = launch(tmp_path, """
        import os, sys
        attempt = int(os.environ["TORCHELASTIC_RESTART_COUNT"])
        print("attempt", attempt, "rank", os.environ["RANK"])
        if attempt == 0 and os.environ["RANK"] == "0":
            sys.exit(5)
    """, options=("--nproc-per-node", "2", "--max-restarts", "1"))
    assert code == 0, out + err
    assert "the first rank to fail: rank 0 exited with code 5" in err
    assert "restarting the whole group (1 of 1 restarts)" in err
    assert "[rank0]:attempt 1 rank 0" in out and "[rank1]:attempt 1 rank 1" in out
    code, out, err, _ = launch(tmp_path, "import sys; sys.exit(4)\n",
                               options=("--nproc-per-node", "1", "--max-restarts", "1"))
    assert code == 4 and err.count("the first rank to fail") == 2


@own_launcher
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_are_passed_to_every_rank(tmp_path, sig):
    with sleeping_job(tmp_path) as (proc, script):
        start = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
    assert code == 128 + sig and time.monotonic() - start < 15
    assert f"received {sig.name}: passing it to every rank" in proc.stderr.read()
    assert_none_left(script)


@own_launcher
def test_launch_mpirun_sh_with_a_hostfile_naming_localhost(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(ALL_REDUCE))
    hosts = tmp_path / "hosts"
    hosts.write_text("localhost:2\n")
    done = subprocess.run(["timeout", "-s", "KILL", "60", "bash", os.path.join(ROOT, "launch", "mpirun.sh"), "2",
                           str(script), "--x"], capture_output=True, text=True, cwd=str(tmp_path),
                          env=clean_env(HOSTFILE=str(hosts), PER_NODE="2", PYTHON=sys.executable))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("sum [3.0, 3.0, 3.0] args ['--x']") == 2
    assert done.stdout.count("OMP_NUM_THREADS=1") == 2
    assert (not os.path.exists("/usr/bin/bash") or
            subprocess.run(["bash", "-n", os.path.join(ROOT, "launch", "slurm.sbatch")]).returncode == 0)


@own_launcher
def test_nothing_outlives_a_killed_dtorchrun(tmp_path):
    with sleeping_job(tmp_path, stderr=subprocess.DEVNULL) as (proc, script):
        proc.kill()
        proc.wait(timeout=10)
    assert_none_left(script, within=10)


@own_launcher
def test_a_host_that_cannot_be_reached_is_a_clear_error(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.2:2\n")  # not this host's name: Hydra launches a proxy there ... which cannot start
    code, out, err, took = launch(tmp_path, "print('never')\n", options=("--hostfile", str(hosts),
                                                                      "--nproc-per-node", "2"),
                                  env={"HYDRA_LAUNCHER_EXEC": "/bin/false"})
    assert code != 0 and took < 30 and "never" not in out
    assert "dtorchrun: the job could not start: mpiexec exited with code" in err and "0 rank(s) had started" in err
