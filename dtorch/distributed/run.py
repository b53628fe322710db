"""``dtorchrun``: start a training script on several ranks, watch them, and end them all together.

``dtorchrun --nproc-per-node 2 train.py --epochs 5`` is ``torchrun``'s command for dtorch (also
``python -m dtorch.distributed.run``). The ranks are started through the MPI launcher (the ``mpiexec`` of the
MPI that mpi4py uses: the ``mpich`` wheel puts MPICH's Hydra ``mpiexec`` beside the interpreter), so MPI works
inside them and ``init_process_group`` needs no address or port. Each rank is a small *agent* (this file run as
a script, standard library only) that sets the rank variables PyTorch scripts read (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``, ``TORCHELASTIC_RUN_ID``,
``TORCHELASTIC_RESTART_COUNT``, ...) and runs the script as its child, in a session of its own so that the
script's DataLoader workers can be ended with it, and with a parent-death signal so that it never outlives its
agent.

Why an agent and not ``mpiexec python train.py``: Hydra reports a rank that exits with a non-zero code only when
every other rank has ended, and ends the others only on a signal death or ``MPI_Abort``; a rank that failed before
``init_process_group`` would leave the others waiting for ever. The agent reports its script's exit at once, and
the launcher ends the job.

Output. Hydra marks every chunk it forwards with the rank it came from (``-prepend-pattern``); the launcher splits
the stream by rank, prints each line with ``[rankN]:`` in front, writes one log file per rank (``--log-dir``), and
keeps the tail of each rank's error output. Output goes through Hydra even when a rank calls ``MPI_Abort``, so the
traceback of a failing rank is never lost.

Failures. The first rank that fails (a non-zero exit, a signal, ``MPI_Abort``) is named with its exit code and the
end of its traceback; every rank is then sent SIGTERM, and SIGKILL after a grace period (``DTORCHRUN_GRACE``
seconds, 5 by default), with the process groups of the scripts on this host killed directly so that no DataLoader
worker survives. With ``--max-restarts K`` the whole group is started again, up to K times (the script resumes
from its own checkpoint). SIGINT and SIGTERM to ``dtorchrun`` are forwarded to every rank. MPICH's shared-memory
segments that a killed job leaves in ``/dev/shm`` are removed.

Several machines: ``dtorchrun`` runs once, on the first host, and starts the ranks of every host through Hydra
(ssh, or the Slurm allocation): ``--hostfile hosts --nproc-per-node 4``. ``--node-rank`` other than 0 is an
error that says so (unlike ``torchrun``, which runs on every node).

>>> parse_args(["--nproc-per-node", "2", "train.py", "--lr", "0.1"]).script_args
['--lr', '0.1']
"""

import argparse
import codecs
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

_MARK = "\x01%r\x01"  # Hydra's prepend pattern: every forwarded chunk starts with \x01RANK\x01
_CHUNK = re.compile(rb"\x01(\d+)\x01")
_EVENT = re.compile(r"\x02DTORCHRUN(\{.*?\})\x03\n?")  # an agent's report, inside its rank's error stream
_ABORT = re.compile(r"MPI_Abort\([^,]*, (-?\d+)\) - process (\d+)")
_HYDRA_PID = re.compile(r"=\s+PID (\d+) RUNNING AT (\S+)")
_HYDRA_CODE = re.compile(r"=\s+(?:EXIT CODE|KILLED BY SIGNAL): (\d+)")
_HYDRA_LINE = re.compile(r"^(=|\[mpiexec@|\[proxy:|YOUR APPLICATION TERMINATED|This typically refers to a problem|"
                         r"Please see the FAQ)")  # Hydra's own report
_HYDRA_BOILERPLATE = re.compile(r"^(\s*$|=|YOUR APPLICATION TERMINATED|This typically refers to a problem|Please "
                                r"see the FAQ)")
_LAUNCHER_VARIABLES = ("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "MPI_LOCALRANKID", "MPI_LOCALNRANKS")


def _say(text, stream=None):
    """A line of the launcher's own, marked as such."""
    stream = stream or sys.stderr
    stream.write("".join(f"dtorchrun: {line}\n" for line in text.rstrip("\n").split("\n")))
    stream.flush()


# ---- options ---------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    """``dtorchrun``'s options (``torchrun``'s names); the script and its arguments follow them.

    >>> args = parse_args(["--nproc-per-node", "4", "-m", "pkg.train", "--x", "1"])
    >>> args.nproc_per_node, args.module, args.script, args.script_args
    ('4', True, 'pkg.train', ['--x', '1'])
    """
    parser = argparse.ArgumentParser(
        prog="dtorchrun", description="Start a script on several ranks through MPI (torchrun's place in dtorch).",
        epilog="Example: dtorchrun --nproc-per-node 2 examples/train_digits.py --epochs 4")
    parser.add_argument("--nproc-per-node", "--nproc_per_node", default="1",
                        help="ranks per node: a number, 'auto' (the GPUs, else the cores), 'gpu' or 'cpu'")
    parser.add_argument("--nnodes", default=None,
                        help="how many hosts to use (default: every host of --hostfile, else 1)")
    parser.add_argument("--node-rank", "--node_rank", type=int, default=0,
                        help="only 0: dtorchrun starts every node from the first one")
    parser.add_argument("--hostfile", default=None,
                        help="hosts to start ranks on, one a line ('host', 'host:slots' or 'host slots=N')")
    parser.add_argument("--master-addr", "--master_addr", default=None,
                        help="MASTER_ADDR for the scripts (default: 127.0.0.1, or the first host of --hostfile)")
    parser.add_argument("--master-port", "--master_port", type=int, default=None,
                        help="MASTER_PORT for the scripts (default: a free port of this host)")
    parser.add_argument("--max-restarts", "--max_restarts", type=int, default=0,
                        help="start the whole group again up to this many times after a failure")
    parser.add_argument("--log-dir", "--log_dir", default=None,
                        help="write each rank's output to LOG_DIR/rank_N.log (and not to the console without --tee)")
    parser.add_argument("--tee", action="store_true", help="with --log-dir, print the output on the console too")
    parser.add_argument("--run-id", "--rdzv-id", "--rdzv_id", default=None,
                        help="TORCHELASTIC_RUN_ID for the scripts (default: a new id)")
    parser.add_argument("--standalone", action="store_true",
                        help="accepted for torchrun's commands: one node, nothing to rendezvous (the default)")
    parser.add_argument("--rdzv-endpoint", "--rdzv_endpoint", default=None,
                        help="torchrun's HOST[:PORT]: taken as --master-addr/--master-port when those are not given")
    parser.add_argument("--rdzv-backend", "--rdzv_backend", default=None,
                        help="accepted for torchrun's commands; MPI finds the ranks")
    parser.add_argument("-m", "--module", action="store_true",
                        help="run the script argument as a module, like python -m")
    parser.add_argument("--no-python", "--no_python", action="store_true",
                        help="run the script argument as a program, not with the Python interpreter")
    parser.add_argument("script", help="the training script (or module with -m)")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="the script's own arguments")
    args = parser.parse_args(argv)
    if args.max_restarts < 0:
        parser.error(f"--max-restarts must be 0 or more, got {args.max_restarts}")
    if args.node_rank != 0:
        parser.error(f"--node-rank {args.node_rank}: dtorchrun starts the ranks of every node from the first node "
                     f"through MPI's launcher (ssh or Slurm); run it once, there, with --hostfile naming the hosts")
    if args.tee and not args.log_dir:
        args.tee = False  # the console gets everything anyway
    if args.rdzv_endpoint:
        host, _, port = args.rdzv_endpoint.rpartition(":") if ":" in args.rdzv_endpoint else \
            (args.rdzv_endpoint, "", "")
        args.master_addr = args.master_addr or host or None
        if port and args.master_port is None:
            if not port.isdigit():
                parser.error(f"--rdzv-endpoint {args.rdzv_endpoint!r}: the port is not a number")
            args.master_port = int(port)
    return args


def resolve_nproc(value):
    """The number of ranks per node for ``--nproc-per-node`` (``auto``: the GPUs if any, else the cores).

    >>> resolve_nproc("3")
    3
    """
    text = str(value).strip().lower()
    if text in ("auto", "gpu"):
        gpus = _gpu_count()
        if gpus > 0:
            return gpus
        if text == "gpu":
            raise ValueError("--nproc-per-node gpu, but no GPU was found (nvidia-smi -L lists none)")
        text = "cpu"
    if text == "cpu":
        return os.cpu_count() or 1
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"--nproc-per-node must be a number, 'auto', 'gpu' or 'cpu', got {value!r}") from None
    if n < 1:
        raise ValueError(f"--nproc-per-node must be at least 1, got {n}")
    return n


def _gpu_count():
    """GPUs of this host, from ``CUDA_VISIBLE_DEVICES`` or ``nvidia-smi -L`` (no CUDA library is loaded here)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def read_hostfile(path):
    """``[(host, slots or None), ...]`` from a hostfile: ``host``, ``host:slots`` (MPICH) or ``host slots=N``
    (Open MPI) a line; ``#`` starts a comment.

    >>> import tempfile, os
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".hosts", delete=False)
    >>> _ = f.write("a:2\\nb slots=4 # x\\n"); f.close()
    >>> read_hostfile(f.name)
    [('a', 2), ('b', 4)]
    >>> os.unlink(f.name)
    """
    hosts = []
    with open(path) as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            match = re.fullmatch(r"([^\s:]+)(?::(\d+))?(?:\s+(?:slots|max_slots|max-slots)=(\d+).*)?", line)
            if match is None:
                raise ValueError(f"{path}, line {number}: {raw.strip()!r} is not 'host', 'host:slots' or "
                                 f"'host slots=N'")
            slots = match.group(2) or match.group(3)
            hosts.append((match.group(1), int(slots) if slots else None))
    if not hosts:
        raise ValueError(f"hostfile {path} names no host")
    return hosts


def free_port():
    """A TCP port that is free on this host now (the kernel's pick).

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def find_mpiexec():
    """The MPI launcher of the MPI that mpi4py uses: ``DTORCH_MPIEXEC``, else the ``mpiexec`` beside this
    interpreter (where the ``mpich`` wheel puts it), else the first on ``PATH``."""
    chosen = os.environ.get("DTORCH_MPIEXEC")
    if chosen:
        return chosen
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.exists(beside):
        return beside
    found = shutil.which("mpiexec")
    if found is None:
        raise RuntimeError("no mpiexec found: install MPICH with `pip install dtorch[mpi]` (or put your MPI's "
                           "mpiexec on PATH, or name it in DTORCH_MPIEXEC)")
    return found


def _check_hydra(mpiexec):
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise RuntimeError(f"cannot run {mpiexec}: {error}") from error
    if "HYDRA" not in version:
        raise RuntimeError(f"{mpiexec} is not MPICH's Hydra launcher, which dtorchrun drives (its rank-tagged "
                           f"output); install dtorch[mpi], or start the job with your MPI's own launcher as in "
                           f"launch/mpirun.sh")


def launcher_environment(extra):
    """This environment without the variables of an enclosing MPI job (a nested launch must not join it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LAUNCHER_VARIABLES)}
    env.update(extra)
    return env


# ---- /dev/shm --------------------------------------------------------------------------------------------------------


def shm_segments(prefix="mpich_shm_", directory="/dev/shm"):
    """Names of MPICH's shared-memory segments in ``directory`` (empty where there is none)."""
    try:
        return {name for name in os.listdir(directory) if name.startswith(prefix)}
    except OSError:
        return set()


def _mapped_shm(directory="/dev/shm"):
    """Paths under ``directory`` that some live process has mapped (read from /proc)."""
    mapped, marker = set(), os.path.join(directory, "")
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/maps") as f:
                for line in f:
                    at = line.find(marker)
                    if at != -1:
                        mapped.add(line[at:].strip().split(" (deleted)")[0])
        except OSError:
            pass
    return mapped


def remove_shm_leftovers(before, since, directory="/dev/shm"):
    """Remove MPICH segments that appeared after ``since`` (not in ``before``), are ours, and that no live process
    maps: what a killed job left. Returns the names removed."""
    fresh = []
    for name in shm_segments(directory=directory) - set(before):
        path = os.path.join(directory, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_uid == os.getuid() and st.st_mtime >= since - 1:
            fresh.append(path)
    if not fresh:
        return []
    mapped = _mapped_shm(directory)
    removed = []
    for path in fresh:
        if path in mapped:
            continue
        try:
            os.unlink(path)
            removed.append(os.path.basename(path))
        except OSError:
            pass
    return removed


# ---- the job: mpiexec, its output and its failures -------------------------------------------------------------------


class Failure:
    """The first rank that failed: its rank (None when unknown), exit code (negative: a signal), host and pid.

    >>> Failure(1, -9, "node1", 4242).describe()
    'rank 1 was killed by signal SIGKILL (host node1, pid 4242)'
    >>> Failure(0, 3).exit_code(), Failure(1, -15).exit_code()
    (3, 143)
    """

    def __init__(self, rank, code, host=None, pid=None, how="exit"):
        self.rank, self.code, self.host, self.pid, self.how = rank, code, host, pid, how
        self.started = None  # for how="launch": how many ranks had started

    def describe(self):
        who = "a rank" if self.rank is None else f"rank {self.rank}"
        where = ", ".join(part for part in (f"host {self.host}" if self.host else "",
                                            f"pid {self.pid}" if self.pid else "") if part)
        if self.how == "launch":
            return (f"mpiexec exited with code {self.code} when {self.started or 0} rank(s) had started "
                    f"(its messages are above: a host it could not reach, or a program it could not start)")
        if self.how == "abort":
            what = f"called MPI_Abort with error code {self.code}"
        elif self.code is not None and self.code < 0:
            what = f"was killed by signal {_signal_name(-self.code)}"
        else:
            what = f"exited with code {self.code}"
        return f"{who} {what}" + (f" ({where})" if where else "")

    def exit_code(self):
        if self.code is None or self.code == 0:
            return 1
        return 128 + (-self.code) if self.code < 0 else min(self.code, 255)


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


class _Stream:
    """One rank's stdout or stderr: decodes, pulls out the agent's reports, and hands complete lines on."""

    def __init__(self, job, rank, name):
        self.job, self.rank, self.name = job, rank, name
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""
        self.blank = 0  # empty lines not shown yet

    def feed(self, data, final=False):
        self.text += self.decoder.decode(data, final)
        if "\x02" in self.text:
            self.text = self._take_events(self.text)
        *lines, self.text = self.text.split("\n")
        for line in lines:
            self.job.line(self.rank, self.name, line, self)
        if final and self.text:
            self.job.line(self.rank, self.name, self.text, self)
            self.text = ""
        elif "\r" in self.text:
            self.job.partial(self.rank, self.name, self.text, self)

    def _take_events(self, text):
        start = text.find("\x02")
        while start != -1:
            match = _EVENT.match(text, start)
            if match is None:
                if "\x03" not in text[start:]:
                    break  # the rest of the report has not arrived yet
                start = text.find("\x02", start + 1)
                continue
            try:
                self.job.event(json.loads(match.group(1)))
            except ValueError:
                pass
            text = text[:start] + text[match.end():]
            start = text.find("\x02", start)
        return text


class Job:
    """One start of the ranks under ``mpiexec``; output pumped by two threads, failures noticed as they happen.

    ``console`` prints each line with its rank prefix (``prefix=False``: as it came, for ``spawn``); ``log_dir``
    writes ``rank_N.log``. :meth:`wait` returns when every rank has ended, or ends them all after the first
    failure and then returns; :attr:`failure` says which rank failed first.

    >>> job = Job(mpiexec_command(2, 2, agent_command(["python", "train.py"])), 2, dict(os.environ))  # doctest: +SKIP
    >>> job.start().wait(), job.failure                                                        # doctest: +SKIP
    (True, None)
    """

    def __init__(self, command, nprocs, env, console=True, prefix=True, log_dir=None, attempt=0, cwd=None,
                 stdout=None, stderr=None):
        self.command, self.nprocs, self.env, self.cwd = command, nprocs, env, cwd
        self.console, self.prefix, self.log_dir, self.attempt = console, prefix, log_dir, attempt
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.lock = threading.RLock()
        self.failure = None
        self.failed = threading.Event()
        self.ended = threading.Event()
        self.started = {}  # rank -> {"pid", "agent", "host"} from the agents' reports
        self.all_started = threading.Event()
        self.exits = {}  # rank -> exit code
        self.tails = collections.defaultdict(lambda: collections.deque(maxlen=200))
        self.logs = {}
        self.hydra_pid = None
        self.streams = {}
        self.bar = None  # (terminal, text, stream) of the progress bar drawn last, while it is live
        self.teardown_at = None
        self.killed = False
        self.proc = None
        self.grace = _grace()
        self.shm_before = shm_segments()
        self.start_time = time.time()

    # -- starting and ending --

    def start(self):
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                     preexec_fn=_launcher_setup if _on_main_thread() else os.setsid)
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, "stdout"), daemon=True),
                        threading.Thread(target=self._pump, args=(self.proc.stderr, "stderr"), daemon=True)]
        for thread in self.threads:
            thread.start()
        return self

    def terminate(self, sig=signal.SIGTERM):
        """Send ``sig`` to every script of this host directly and to mpiexec (which ends the others), and arm the
        SIGKILL that follows after the grace period."""
        with self.lock:
            for info in list(self.started.values()):
                if info.get("host") == socket.gethostname():
                    _killpg(info["pid"], sig)
            if self.proc.poll() is None:
                try:
                    self.proc.send_signal(sig)
                except OSError:
                    pass
            if self.teardown_at is None:
                self.teardown_at = time.monotonic() + self.grace

    def kill(self):
        """SIGKILL to mpiexec's process group and to every script's process group on this host."""
        with self.lock:
            self.killed = True
            if self.proc.poll() is None:
                _killpg(self.proc.pid, signal.SIGKILL)
            self._sweep()

    def _sweep(self):
        for info in list(self.started.values()):
            if info.get("host") == socket.gethostname():
                _killpg(info["pid"], signal.SIGKILL)

    def wait(self, timeout=None):
        """Wait for the end of the job (True), or ``timeout`` seconds (False). Ends every rank after a failure."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.failed.is_set() and self.teardown_at is None:
                self.terminate()
            if self.teardown_at is not None and time.monotonic() > self.teardown_at and not self.killed:
                self.kill()
            code = self.proc.poll()
            if code is not None:
                self._finish(code)
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self.failed.wait(0.05)

    def _finish(self, code):
        if self.ended.is_set():
            return
        for thread in self.threads:
            thread.join(timeout=2.0 if not self.killed else 0.5)
            if thread.is_alive():  # a leftover process still holds the pipe: end it
                self._sweep()
                thread.join(timeout=2.0)
        self._sweep()  # DataLoader workers of scripts that ended
        # SIGKILL is asynchronous: wait (bounded) until this host's scripts are really gone, so that "the job
        # ended" means its processes ended (a caller checking the pids right after sees none alive)
        _wait_until_gone([info["pid"] for info in list(self.started.values())
                          if info.get("host") == socket.gethostname()], timeout=5.0)
        with self.lock:
            for stream in self.streams.values():
                stream.feed(b"", final=True)
            if self.failure is None and code != 0:
                failed = [r for r in range(self.nprocs) if self.exits.get(r) not in (0, None)]
                if failed:
                    self.failure = Failure(failed[0], self.exits[failed[0]])
                elif len(self.started) < self.nprocs:  # Hydra could not start them (a host it cannot reach)
                    self.failure = Failure(None, code, how="launch")
                    self.failure.started = len(self.started)
                else:
                    self.failure = Failure(None, code)
            for f in self.logs.values():
                f.close()
        remove_shm_leftovers(self.shm_before, self.start_time)
        self.ended.set()

    # -- output --

    def _pump(self, pipe, name):
        pending, rank = b"", None
        while True:
            data = pipe.read1(65536) if hasattr(pipe, "read1") else os.read(pipe.fileno(), 65536)
            if not data:
                break
            data = pending + data
            pending, position = b"", 0
            for match in _CHUNK.finditer(data):
                if match.start() > position:
                    self._chunk(rank, name, data[position:match.start()])
                rank, position = int(match.group(1)), match.end()
            rest = data[position:]
            cut = rest.rfind(b"\x01")
            if cut != -1 and re.fullmatch(rb"\x01\d*", rest[cut:]):  # a rank mark cut in two by the pipe
                pending, rest = rest[cut:], rest[:cut]
            if rest:
                self._chunk(rank, name, rest)
        if pending:
            self._chunk(rank, name, pending)

    def _chunk(self, rank, name, data):
        with self.lock:
            key = (rank, name)
            stream = self.streams.get(key)
            if stream is None:
                stream = self.streams[key] = _Stream(self, rank, name)
            stream.feed(data)

    def line(self, rank, name, line, stream):
        """One complete line of a rank (``rank`` None: the launcher's own)."""
        shown = line.rsplit("\r", 1)[-1] if "\r" in line else line  # a progress bar: its last state
        if "\r" in line and not shown.strip():  # ... erased by its owner (tqdm's leave=False)
            self._erase_bar(stream)
            return
        if rank is not None and _HYDRA_LINE.match(shown):
            rank = None  # Hydra's own report, written after the last chunk of a rank
        if rank is None:
            self._hydra_line(shown)
            if not _HYDRA_BOILERPLATE.match(shown):  # dtorchrun says what failed; Hydra's banner adds nothing
                self._show(None, name, shown, stream)
            return
        if not shown and stream is not None:  # held back: Hydra's reports start with an empty line of their own
            stream.blank += 1
            return
        if stream is not None and stream.blank:
            blanks, stream.blank = stream.blank, 0
            for _ in range(blanks):
                self.line(rank, name, "", None)
        own = f"[rank {rank}] "
        if shown.startswith(own):  # dtorch's own rank prefix (uncaught exceptions): ours replaces it
            shown = shown[len(own):]
        if name == "stderr":
            self.tails[rank].append(shown)
            abort = _ABORT.search(shown)
            if abort is not None:
                self.fail(Failure(int(abort.group(2)), int(abort.group(1)), how="abort"))
        if self.log_dir is not None:
            self._log(rank).write(shown + "\n")
        self._show(rank, name, shown, stream)

    def partial(self, rank, name, text, stream):
        """A line still being drawn with carriage returns (a progress bar): redrawn live on a terminal, below
        the lines printed meanwhile (one bar at a time: the last one drawn)."""
        target = self.out if name == "stdout" else self.err
        if rank is None or not self.console or not _isatty(target):
            return
        shown = text.rsplit("\r", 1)[-1]
        if not shown.strip():
            self._erase_bar(stream)
            return
        drawn = "\r\x1b[K" + self._prefix(rank) + shown
        target.write(drawn)
        target.flush()
        self.bar = (target, drawn, stream)

    def _erase_bar(self, stream=None):
        """Clear the bar on the terminal (only ``stream``'s, when given); forget it."""
        if self.bar is not None and (stream is None or self.bar[2] is stream):
            self.bar[0].write("\r\x1b[K")
            self.bar[0].flush()
            self.bar = None

    def _show(self, rank, name, text, stream):
        if not self.console:
            return
        target = self.out if name == "stdout" else self.err
        bar = self.bar
        if bar is not None:  # the line goes where the bar is; the bar is drawn again under it
            bar[0].write("\r\x1b[K")
            bar[0].flush()
        target.write((self._prefix(rank) if rank is not None else "") + text + "\n")
        target.flush()
        if bar is not None and bar[2] is not stream:
            bar[0].write(bar[1])
            bar[0].flush()
        else:
            self.bar = None

    def _prefix(self, rank):
        return f"[rank{rank}]:" if self.prefix else ""

    def _log(self, rank):
        f = self.logs.get(rank)
        if f is None:
            os.makedirs(self.log_dir, exist_ok=True)
            f = self.logs[rank] = open(os.path.join(self.log_dir, f"rank_{rank}.log"), "a", buffering=1)
            if self.attempt:
                f.write(f"=== dtorchrun: restart {self.attempt} ===\n")
        return f

    def _hydra_line(self, line):
        pid = _HYDRA_PID.search(line)
        if pid is not None:
            self.hydra_pid = (int(pid.group(1)), pid.group(2))
            return
        code = _HYDRA_CODE.search(line)
        if code is not None and self.hydra_pid is not None:
            number = int(code.group(1))
            pid, host = self.hydra_pid
            rank = next((r for r, info in self.started.items() if pid in (info["pid"], info["agent"])), None)
            self.fail(Failure(rank, -number if "SIGNAL" in line or number > 128 else number, host, pid))

    # -- reports --

    def event(self, report):
        kind, rank = report.get("event"), report.get("rank")
        if kind == "start":
            self.started[rank] = report
            if len(self.started) >= self.nprocs:
                self.all_started.set()
        elif kind == "exit":
            self.exits[rank] = report["code"]
            if report["code"] != 0:
                info = self.started.get(rank, {})
                self.fail(Failure(rank, report["code"], info.get("host"), info.get("pid")))

    def fail(self, failure):
        with self.lock:
            if self.failure is None and self.teardown_at is None:
                self.failure = failure
            self.failed.set()

    def traceback_tail(self, lines=None):
        """The failing rank's last traceback from its error output (all of it, or its last ``lines`` lines)."""
        if self.failure is None or self.failure.rank is None:
            return []
        tail = list(self.tails.get(self.failure.rank, ()))
        starts = [i for i, line in enumerate(tail) if line.startswith("Traceback (most recent call last)")]
        chosen = tail[starts[-1]:] if starts else tail[-10:]
        chosen = [line for line in chosen if not line.startswith(("Uncaught exception: ending every rank",
                                                                  "Abort(", "dtorchrun"))]
        return chosen if lines is None else chosen[-lines:]


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _grace():
    try:
        return float(os.environ.get("DTORCHRUN_GRACE", "5"))
    except ValueError:
        return 5.0


def _killpg(pgid, sig):
    try:
        os.killpg(int(pgid), sig)
    except (OSError, ValueError, TypeError):
        pass


def _is_gone(pid):
    """True when ``pid`` no longer runs: no such process, or a zombie waiting for its parent to reap it."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, TypeError):
        return True  # someone else's process (EPERM: a reused pid) or an unusable pid: nothing of ours to wait on
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _wait_until_gone(pids, timeout):
    """Poll until every pid is gone or ``timeout`` seconds passed (returns whether all are gone).

    >>> _wait_until_gone([], timeout=0.1)
    True
    """
    deadline = time.monotonic() + timeout
    pending = [pid for pid in pids if pid is not None]
    while pending:
        pending = [pid for pid in pending if not _is_gone(pid)]
        if not pending:
            break
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def agent_command(command, python=None):
    """The command that ``mpiexec`` runs for each rank: this file's agent around the script's ``command``."""
    return [python or sys.executable, os.path.abspath(__file__), "--dtorchrun-agent", "--"] + list(command)


def mpiexec_command(nprocs, per_node, program, hostfile=None, mpiexec=None):
    """``mpiexec`` with the rank marks on the output; ``hostfile`` (MPICH format) places ``per_node`` a host."""
    command = [mpiexec or find_mpiexec(), "-n", str(nprocs), "-prepend-pattern", _MARK]
    if hostfile is not None:
        command += ["-f", hostfile, "-ppn", str(per_node)]
    elif "SLURM_JOB_ID" not in os.environ or per_node == nprocs:
        command += ["-hosts", "localhost"]  # one node: never spread over a Slurm allocation by surprise
    else:
        command += ["-ppn", str(per_node)]
    return command + list(program)


# ---- the agent: one per rank, started by mpiexec ---------------------------------------------------------------------


def _report(**fields):
    """Tell the launcher something (a line it removes from the output)."""
    try:
        os.write(2, ("\x02DTORCHRUN" + json.dumps(fields, separators=(",", ":")) + "\x03\n").encode())
    except OSError:  # the launcher is gone; the exit code still tells mpiexec
        pass


def _env_first(*names):
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    return None


def _on_main_thread():
    # the parent-death signal follows the thread that started the process: only the main thread lives as long
    return threading.current_thread() is threading.main_thread()


def _launcher_setup():
    """In mpiexec, before exec: a session of its own (a Ctrl-C reaches dtorchrun alone, which passes it on once) and
    SIGTERM when dtorchrun dies, even by SIGKILL (Hydra then ends every rank)."""
    os.setsid()
    _parent_death_signal(signal.SIGTERM)


def _parent_death_signal(sig):
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _child_setup():
    """In the script's process, before exec: a session of its own (its workers are killed with it) and SIGKILL
    when the agent dies (Hydra SIGKILLs agents when it tears a job down)."""
    os.setsid()
    _parent_death_signal(signal.SIGKILL)


def agent_main(command):
    """Run ``command`` as this rank's script with the rank variables set; report its start and exit."""
    rank = _env_first("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID") or 0
    world = _env_first("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS") or 1
    per_node = _env_first("DTORCHRUN_NPROC_PER_NODE") or world
    local_rank = _env_first("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")
    local_world = _env_first("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")
    if local_rank is None:
        local_rank = rank % per_node
    if local_world is None:
        local_world = per_node
    group_rank = rank // per_node
    env = os.environ
    if env.get("DTORCHRUN_RANK_VARIABLES") != "0":  # spawn's children get none, as PyTorch's
        env.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(local_rank),
                    "LOCAL_WORLD_SIZE": str(local_world), "GROUP_RANK": str(group_rank), "ROLE_RANK": str(rank),
                    "ROLE_WORLD_SIZE": str(world), "ROLE_NAME": env.get("ROLE_NAME", "default"),
                    "GROUP_WORLD_SIZE": str(max(1, -(-world // per_node)))})
    keep = [int(env["PMI_FD"])] if env.get("PMI_FD", "").isdigit() else []
    try:
        child = subprocess.Popen(command, pass_fds=keep, preexec_fn=_child_setup)
    except OSError as error:
        sys.stderr.write(f"cannot start {command[0]}: {error}\n")
        _report(event="exit", rank=rank, code=127, time=time.time())
        return 127
    _report(event="start", rank=rank, pid=child.pid, agent=os.getpid(), host=socket.gethostname())
    received = []

    def forward(sig, _frame):
        received.append(sig)
        _killpg(child.pid, sig)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    parent = os.getppid()
    kill_at = None
    while True:
        try:
            code = child.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        if os.getppid() != parent and kill_at is None:  # mpiexec's proxy is gone: the job is over
            _killpg(child.pid, signal.SIGKILL)
        if received and kill_at is None:
            kill_at = time.monotonic() + _grace()
        if kill_at is not None and time.monotonic() > kill_at:
            _killpg(child.pid, signal.SIGKILL)
    _killpg(child.pid, signal.SIGKILL)  # what the script left in its session (DataLoader workers)
    _report(event="exit", rank=rank, code=code, time=time.time())
    return 128 - code if code < 0 else code


# ---- the launcher ----------------------------------------------------------------------------------------------------


def _program(args):
    if args.no_python:
        return [args.script] + args.script_args
    if args.module:
        return [sys.executable, "-u", "-m", args.script] + args.script_args
    return [sys.executable, "-u", args.script] + args.script_args


def _hosts(args):
    """``(nnodes, hostfile path in MPICH's format or None, first host)``."""
    nnodes = None
    if args.nnodes is not None:
        text = str(args.nnodes)
        try:
            nnodes = int(text.split(":")[-1])  # torchrun's MIN:MAX: the maximum
        except ValueError:
            raise ValueError(f"--nnodes must be a number (or MIN:MAX), got {args.nnodes!r}") from None
        if nnodes < 1:
            raise ValueError(f"--nnodes must be at least 1, got {nnodes}")
    if args.hostfile is None:
        if (nnodes or 1) > 1 and "SLURM_JOB_ID" not in os.environ:
            raise ValueError(f"--nnodes {nnodes} needs --hostfile naming the hosts (or a Slurm allocation): "
                             f"dtorchrun starts every node's ranks from here through mpiexec")
        return nnodes or 1, None, None
    hosts = read_hostfile(args.hostfile)
    if nnodes is None:
        nnodes = len(hosts)
    if nnodes > len(hosts):
        raise ValueError(f"--nnodes {nnodes} but hostfile {args.hostfile} names {len(hosts)} hosts")
    return nnodes, hosts[:nnodes], hosts[0][0]


def run(args):
    """Run the job described by ``args`` (from :func:`parse_args`); returns the exit code for ``dtorchrun``."""
    try:
        per_node = resolve_nproc(args.nproc_per_node)
        nnodes, hosts, first_host = _hosts(args)
        mpiexec = find_mpiexec()
        _check_hydra(mpiexec)
    except (ValueError, RuntimeError, OSError) as error:
        _say(f"error: {error}")
        return 2
    world = per_node * nnodes
    workdir = tempfile.mkdtemp(prefix="dtorchrun-")
    hostfile = None
    if hosts is not None:
        hostfile = os.path.join(workdir, "hosts")
        with open(hostfile, "w") as f:
            f.writelines(f"{host}:{per_node}\n" for host, _ in hosts)
    master_addr = args.master_addr or (first_host if first_host not in (None, "localhost") else "127.0.0.1")
    common = {"MASTER_ADDR": master_addr, "MASTER_PORT": str(args.master_port or free_port()),
              "TORCHELASTIC_RUN_ID": args.run_id or uuid.uuid4().hex[:12], "TORCHELASTIC_MAX_RESTARTS":
              str(args.max_restarts), "DTORCHRUN_NPROC_PER_NODE": str(per_node), "PYTHONUNBUFFERED": "1",
              "TORCHELASTIC_USE_AGENT_STORE": "False", "DTORCHRUN": "1"}
    if "OMP_NUM_THREADS" not in os.environ:
        common["OMP_NUM_THREADS"] = "1"
        _say(f"OMP_NUM_THREADS is not set: setting it to 1 for each of the {world} ranks so that they do not "
             f"oversubscribe the cores; set it to tune")
    command = mpiexec_command(world, per_node, agent_command(_program(args)), hostfile, mpiexec)
    received = []

    def on_signal(sig, _frame):
        received.append(sig)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for attempt in range(args.max_restarts + 1):
            env = launcher_environment(dict(common, TORCHELASTIC_RESTART_COUNT=str(attempt)))
            job = Job(command, world, env, console=args.log_dir is None or args.tee, log_dir=args.log_dir,
                      attempt=attempt).start()
            forwarded = False
            while not job.wait(timeout=0.1):
                if received and not forwarded:
                    forwarded = True
                    _say(f"received {_signal_name(received[0])}: passing it to every rank")
                    job.terminate(received[0])
            if received:
                return 128 + received[0]
            if job.failure is None:
                return 0
            _report_failure(job, args, attempt)
            if attempt < args.max_restarts:
                _say(f"restarting the whole group ({attempt + 1} of {args.max_restarts} restarts)")
        return job.failure.exit_code()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(workdir, ignore_errors=True)


def _report_failure(job, args, attempt):
    failure = job.failure
    shown_on_console = args.log_dir is None or args.tee
    lines = [f"the first rank to fail: {failure.describe()}; every rank of the job was ended"
             if failure.how != "launch" else f"the job could not start: {failure.describe()}"]
    tail = job.traceback_tail(lines=3 if shown_on_console else None)
    if tail:
        lines.append(f"the end of rank {failure.rank}'s traceback" + (" (shown above):" if shown_on_console
                                                                      else ":"))
        lines += ["  " + line for line in tail]
    if args.log_dir is not None and failure.rank is not None:
        lines.append(f"its output: {os.path.join(args.log_dir, f'rank_{failure.rank}.log')}")
    _say("\n".join(lines))


def main(argv=None):
    """The ``dtorchrun`` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--dtorchrun-agent"]:
        command = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        sys.exit(agent_main(command))
    args = parse_args(argv)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
