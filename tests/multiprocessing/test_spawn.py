"""``dtorch.multiprocessing``: the re-exported names, and ``spawn`` as a user's script calls it (each case runs a
small script in a subprocess, with a timeout): children that form a world and reduce, a raising child that ends
the others and raises ``ProcessRaisedException`` with its traceback, exit codes and signals, ``join=False``.
Skipped inside an MPI run of the suite (no nested launchers)."""

import multiprocessing
import subprocess
import sys
import textwrap
import time

import pytest

import dtorch
import dtorch.multiprocessing as mp
from distributed.jobs import clean_env, own_launcher

PRELUDE = """
import os, signal, sys, time
import dtorch
import dtorch.distributed as dist
import dtorch.multiprocessing as mp
"""


def run_script(tmp_path, body, limit=60):
    script = tmp_path / "main.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    env = clean_env(DTORCHRUN_GRACE="3")
    start = time.monotonic()
    done = subprocess.run(["timeout", "-s", "KILL", str(limit), sys.executable, str(script)], capture_output=True,
                          text=True, env=env, cwd=str(tmp_path))
    return done.returncode, done.stdout, done.stderr, time.monotonic() - start


def test_multiprocessing_names_are_reexported():
    for name in ("Process", "Queue", "SimpleQueue", "Pool", "Event", "Lock", "Manager", "get_context",
                 "set_start_method", "get_start_method", "cpu_count", "current_process", "Pipe", "Value", "Array"):
        assert getattr(mp, name) is getattr(multiprocessing, name), name
        assert name in mp.__all__
    assert dtorch.multiprocessing is mp
    assert mp.get_all_sharing_strategies() == {"file_descriptor", "file_system"}
    with pytest.raises(ValueError, match="sharing strategy"):
        mp.set_sharing_strategy("magic")
    error = mp.ProcessExitedException("process 1 terminated with exit code 3", 1, 123, 3)
    import pickle

    again = pickle.loads(pickle.dumps(error))
    assert (again.error_index, again.error_pid, again.exit_code, str(again)) == (1, 123, 3, str(error))


def test_bad_arguments_are_refused_before_anything_starts():
    with pytest.raises(ValueError, match="nprocs"):
        mp.start_processes(print, nprocs=0)
    with pytest.raises(ValueError, match="start_method"):
        mp.start_processes(print, start_method="thread")
    with pytest.raises(TypeError, match="args must be a tuple"):
        mp.start_processes(print, args=[1])
    with pytest.raises(RuntimeError, match="could not be pickled"):
        mp.start_processes(lambda i: None, nprocs=1)


@own_launcher
def test_children_form_a_world_and_reduce(tmp_path):
    code, out, err, _ = run_script(tmp_path, """
        def work(rank, world_size, out_dir):
            launcher_rank = "RANK" in os.environ     # PyTorch's spawn sets none of the rank variables
            dist.init_process_group("gloo", rank=rank, world_size=world_size)
            t = dtorch.ones(2) * (rank + 1)
            dist.all_reduce(t)
            dist.barrier()
            with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
                f.write(f"{dist.get_rank()} {dist.get_world_size()} {t.tolist()} {launcher_rank}")
            print("child", rank, "done")
            dist.destroy_process_group()

        if __name__ == "__main__":
            os.environ["MASTER_ADDR"] = "localhost"
            os.environ["MASTER_PORT"] = "12355"
            assert mp.spawn(work, args=(2, sys.argv[0].rsplit("/", 1)[0] or "."), nprocs=2) is None
            ctx = mp.spawn(work, args=(2, "."), nprocs=2, join=False)
            pids = ctx.pids()
            assert len(pids) == 2 and all(isinstance(p, int) and p > 0 for p in pids), pids
            while not ctx.join(timeout=0.5):
                pass
            assert ctx.join() is True
            print("parent done")
    """)
    assert code == 0, out + err
    for rank in range(2):
        assert (tmp_path / f"rank{rank}.txt").read_text() == f"{rank} 2 [3.0, 3.0] False"
    assert out.count("child 0 done") == 2 and "parent done" in out


@own_launcher
def test_a_raising_child_ends_the_others_and_raises_with_its_traceback(tmp_path):
    code, out, err, took = run_script(tmp_path, """
        def work(rank):
            dist.init_process_group("gloo", rank=rank, world_size=2)
            if rank == 1:
                raise ValueError("child one fails")
            dist.barrier()             # rank 0 would wait for ever
            time.sleep(60)

        if __name__ == "__main__":
            start = time.monotonic()
            try:
                mp.spawn(work, nprocs=2)
            except mp.ProcessRaisedException as e:
                print("raised", type(e).__name__, e.error_index, e.error_pid > 0, round(time.monotonic() - start))
                print(str(e))
    """)
    assert code == 0, out + err
    assert "raised ProcessRaisedException 1 True" in out
    assert "-- Process 1 terminated with the following error:" in out
    assert 'raise ValueError("child one fails")' in out and "ValueError: child one fails" in out
    assert took < 30
    seconds = int(out.split("raised ProcessRaisedException 1 True ")[1].split()[0])
    assert seconds < 15


@own_launcher
def test_exit_codes_and_signals_become_process_exited_exceptions(tmp_path):
    code, out, err, _ = run_script(tmp_path, """
        def leave(rank, how):
            if rank == 0:
                if how == "exit":
                    sys.exit(3)
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)

        if __name__ == "__main__":
            for how in ("exit", "kill"):
                try:
                    mp.spawn(leave, args=(how,), nprocs=2)
                except mp.ProcessExitedException as e:
                    print(how, e.error_index, e.exit_code, e.signal_name, str(e))
    """)
    assert code == 0, out + err
    assert "exit 0 3 None process 0 terminated with exit code 3" in out
    assert "kill 0 -9 SIGKILL process 0 terminated with signal SIGKILL" in out


@own_launcher
def test_ctrl_c_in_the_parent_ends_the_children(tmp_path):
    code, out, err, took = run_script(tmp_path, """
        def work(rank):
            print("child", rank, "up", flush=True)
            time.sleep(60)

        if __name__ == "__main__":
            ctx = mp.spawn(work, nprocs=2, join=False)
            pids = ctx.pids()
            print("pids", *pids, flush=True)
            signal.setitimer(signal.ITIMER_REAL, 2.0)  # a Ctrl-C stand-in: SIGALRM raising KeyboardInterrupt
            signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            try:
                ctx.join()
            except KeyboardInterrupt:
                alive = []
                for pid in pids:
                    try:
                        os.kill(pid, 0)
                        alive.append(pid)
                    except ProcessLookupError:
                        pass
                print("interrupted; alive:", alive)
    """)
    assert code == 0, out + err
    assert "interrupted; alive: []" in out and took < 30
