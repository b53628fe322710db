"""One child of :func:`dtorch.multiprocessing.spawn`: ``python -m dtorch.multiprocessing._child PAYLOAD``.

Started by ``mpiexec`` (through ``dtorchrun``'s agent) as MPI rank ``i``: prepares itself as the standard
library's spawn start method does (the parent's ``sys.path``, working directory and main module, imported as
``__mp_main__``), unpickles ``fn`` and ``args`` and runs ``fn(i, *args)``. An exception is written with its
traceback to ``error_<i>.json`` beside the payload for the parent, and the process exits with code 1 at once
(``sys.exit(n)``: with code ``n``)
(no MPI finalisation, which could wait for ranks that will never get there).
"""

import json
import multiprocessing.spawn
import os
import pickle
import sys
import time
import traceback


def _index():
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    return 0


def _write_error(workdir, index, text):
    path = os.path.join(workdir, f"error_{index}.json")
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump({"traceback": text, "pid": os.getpid(), "time": time.time()}, f)
    os.replace(temporary, path)


def main(path):
    with open(path, "rb") as f:
        job = pickle.load(f)
    index = _index()
    try:
        multiprocessing.spawn.prepare(job["preparation"])
        fn, args = pickle.loads(job["payload"])
        fn(index, *args)
    except KeyboardInterrupt:
        _leave(130)  # ended by the parent: nothing to report
    except SystemExit as error:  # an exit code, as PyTorch's children give (ProcessExitedException)
        if error.code in (None, 0):
            return 0
        if not isinstance(error.code, int):
            print(error.code, file=sys.stderr)
        _leave(error.code if isinstance(error.code, int) else 1)
    except Exception:  # noqa: BLE001 - every exception goes to the parent with its traceback
        _write_error(job["workdir"], index, traceback.format_exc())
        _leave(1)
    return 0


def _leave(code):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
