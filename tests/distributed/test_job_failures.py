"""Jobs that must die, not hang: each test launches its own small job under ``mpiexec`` (with a timeout) and checks
its exit status and output. Skipped inside an MPI run of the suite (no nested launchers); run by plain pytest."""

import re
import sys
import time

from distributed.jobs import MPIEXEC, OWN_LAUNCHER, processes_running, run_job

pytestmark = OWN_LAUNCHER


def test_one_rank_raising_ends_every_rank(tmp_path):
    code, out, took = run_job(tmp_path, """
        dist.init_process_group()
        if dist.get_rank() == 1:
            raise ValueError("boom on rank one")
        dist.barrier()          # rank 0 would wait here forever
        time.sleep(60)
    """)
    assert code not in (0, 124), out
    assert took < 20, f"took {took:.1f} s"
    assert "[rank 1] ValueError: boom on rank one" in out
    deadline = time.monotonic() + 5  # the launcher may return while the killed ranks are still being reaped
    while processes_running(tmp_path / "job.py") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_running(tmp_path / "job.py") == []  # rank 0 did not stay behind
    assert out.count("[rank 1] Traceback (most recent call last):") == 1
    assert "ending every rank" in out


def test_sync_timeout_names_the_collective_and_the_missing_rank(tmp_path):
    code, out, took = run_job(tmp_path, """
        dist.init_process_group(timeout=1.0)
        x = np.ones(4)
        dist.all_reduce(x)
        if dist.get_rank() == 1:
            time.sleep(60)      # never reaches the second all_reduce
        dist.all_reduce(x)
    """)
    assert code not in (0, 124), out
    assert took < 20, f"took {took:.1f} s"
    assert "[rank 0] DistTimeoutError: dtorch.distributed: all_reduce (sequence number 1) on group WORLD" in out
    assert "Ranks that have not reached it: [1]" in out
    assert "rank 1: last entered all_reduce #0" in out
    assert "job.py" in out  # the stack of the blocked main thread points at the user's line


def test_async_timeout_raises_at_wait_then_ends_the_job(tmp_path):
    code, out, took = run_job(tmp_path, """
        dist.init_process_group(timeout=1.0)
        if dist.get_rank() == 1:
            time.sleep(60)
        work = dist.all_reduce(np.ones(4), async_op=True)
        time.sleep(0.3)         # the communication thread has taken the work (a waiter would run it itself)
        try:
            work.wait()
        except dist.DistTimeoutError as error:
            print("caught:", str(error).splitlines()[0], flush=True)
        time.sleep(60)          # even a rank that swallows the error is ended
    """, n=3)
    assert code not in (0, 124), out
    assert took < 20, f"took {took:.1f} s"
    assert "caught: dtorch.distributed: all_reduce (sequence number 0)" in out
    assert "Ranks that have not reached it: [1]" in out


def test_async_work_waited_at_once_times_out_with_the_report(tmp_path):
    """wait() right away: the main thread usually runs the queued all_reduce itself (so it is blocked in MPI, and
    the watchdog prints the report with its stack), else it raises the error at wait(); either way the report
    names the collective and the missing rank and the job ends."""
    code, out, took = run_job(tmp_path, """
        dist.init_process_group(timeout=1.0)
        if dist.get_rank() == 1:
            time.sleep(60)
        dist.all_reduce(np.ones(4), async_op=True).wait()
    """)
    assert code not in (0, 124), out
    assert took < 20, f"took {took:.1f} s"
    assert re.search(r"\[rank 0\] (dtorch\.distributed\.watchdog\.)?DistTimeoutError: dtorch.distributed: "
                     r"all_reduce \(sequence number 0\) on group WORLD", out), out
    assert "Ranks that have not reached it: [1]" in out


def test_barrier_with_its_own_timeout_ends_the_job(tmp_path):
    code, out, took = run_job(tmp_path, """
        import datetime
        dist.init_process_group()       # the group's timeout stays 10 minutes
        if dist.get_rank() == 1:
            time.sleep(60)
        dist.barrier(timeout=datetime.timedelta(seconds=1))
    """)
    assert code not in (0, 124), out
    assert took < 20, f"took {took:.1f} s"
    assert "barrier (sequence number 0) on group WORLD did not complete within its timeout of 1 s" in out
    assert "Ranks that have not reached it: [1]" in out


def test_monitored_barrier_names_the_late_rank(tmp_path):
    code, out, took = run_job(tmp_path, """
        dist.init_process_group()
        if dist.get_rank() == 1:
            time.sleep(60)
        dist.monitored_barrier(timeout=1.0, wait_all_ranks=True)
    """, n=3)
    assert code not in (0, 124), out
    assert took < 20, f"took {took:.1f} s"
    assert "Ranks [1] failed to pass monitoredBarrier in 1000 ms" in out


def test_world_size_without_a_launcher_says_how_to_launch(tmp_path):
    code, out, _ = run_job(tmp_path, """
        dist.init_process_group()
    """, args=[sys.executable, "SCRIPT"], env={"WORLD_SIZE": "2"})
    assert code == 1, out
    assert "WORLD_SIZE is 2 but MPI started this process as a world of one" in out
    assert "mpiexec -n 2 python script.py" in out


def test_rank_variables_reorder_the_ranks(tmp_path):
    script = tmp_path / "job.py"
    code, out, _ = run_job(tmp_path, """
        from mpi4py import MPI
        dist.init_process_group()
        x = np.array([float(dist.get_rank())])
        dist.broadcast(x, src=0)
        print(f"mpi {MPI.COMM_WORLD.rank} is rank {dist.get_rank()} of {os.environ['WORLD_SIZE']}, "
              f"local {os.environ['LOCAL_RANK']}/{os.environ['LOCAL_WORLD_SIZE']}, got {x[0]}", flush=True)
    """, args=[MPIEXEC, "-n", "1", "-env", "RANK", "1", "-env", "LOCAL_RANK", "0", sys.executable, "SCRIPT", ":",
               "-n", "1", "-env", "RANK", "0", "-env", "LOCAL_RANK", "1", sys.executable, "SCRIPT"])
    assert code == 0, out
    # RANK reorders the world; LOCAL_RANK, set consistently by the launcher, is kept as it is
    assert "mpi 0 is rank 1 of 2, local 0/2, got 0.0" in out
    assert "mpi 1 is rank 0 of 2, local 1/2, got 0.0" in out


def test_import_does_not_start_mpi_and_no_mpi_is_a_world_of_one(tmp_path):
    code, out, _ = run_job(tmp_path, """
        import dtorch
        assert "mpi4py.MPI" not in sys.modules, "import dtorch started MPI"
        sys.modules["mpi4py"] = None            # as if no MPI library could be loaded
        dist.init_process_group()
        x = np.ones(3)
        dist.all_reduce(x, op=dist.ReduceOp.AVG)
        out = [None]
        dist.all_gather_object(out, "only")
        print("world", dist.get_world_size(), dist.get_rank(), x.tolist(), out, flush=True)
    """, args=[sys.executable, "SCRIPT"])
    assert code == 0, out
    assert "world 1 0 [1.0, 1.0, 1.0] ['only']" in out


def test_without_thread_multiple_async_work_runs_at_the_call(tmp_path):
    code, out, _ = run_job(tmp_path, """
        import warnings
        import mpi4py
        mpi4py.rc.thread_level = "serialized"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dist.init_process_group()
        assert any("MPI_THREAD_MULTIPLE" in str(w.message) for w in caught), [str(w.message) for w in caught]
        x = np.ones(2)
        work = dist.all_reduce(x, async_op=True)
        assert work.is_completed() and x[0] == 2
        me = dist.get_rank()
        got = np.zeros(1)
        receive = dist.irecv(got, src=1 - me)
        dist.isend(np.full(1, float(me)), dst=1 - me).wait()
        receive.wait()
        assert got[0] == 1 - me
        everyone = [None, None]
        dist.all_gather_object(everyone, me)
        if me == 0:
            print("ok", everyone, flush=True)
    """)
    assert code == 0, out
    assert "ok [0, 1]" in out
