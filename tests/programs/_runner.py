"""Run the corpus programs of ``tests/programs/`` with one library and write what each produced as JSON.

``python _runner.py --lib dtorch --out results.json a.py b.py ...``. With ``--lib dtorch``, ``torch`` (and every
``torch.*`` module) and ``torchvision`` are aliases of ``dtorch``/``dtorch.vision``, installed in place of PyTorch
as a user would: the programs are written against ``torch`` and never know which library they got. Each program
runs as ``__main__`` in a fresh namespace and leaves a ``RESULT`` dict (see ``test_programs.py`` for its keys); an
exception is recorded with its type, message and the program line it came from, and the next program runs.
"""

import argparse
import importlib
import importlib.abc
import importlib.util
import json
import os
import runpy
import sys
import time
import traceback

ALIASES = {"torch": "dtorch", "torchvision": "dtorch.vision"}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass  # the target module ran when it was imported


class AliasFinder(importlib.abc.MetaPathFinder):
    """Resolves ``torch.x.y`` to ``dtorch.x.y`` (the same module object under both names)."""

    def find_spec(self, fullname, path=None, target=None):
        root, _, rest = fullname.partition(".")
        if root not in ALIASES:
            return None
        target_name = ALIASES[root] + ("." + rest if rest else "")
        if importlib.util.find_spec(target_name) is None:
            return None  # ModuleNotFoundError names the torch module the program asked for
        return importlib.util.spec_from_loader(fullname, _AliasLoader(target_name))


def jsonable(value):
    """RESULT values as JSON: numbers, strings, lists and dicts (tensors must have been converted by the program)."""
    return json.loads(json.dumps(value, default=lambda v: f"<unserializable {type(v).__name__}>"))


def run_one(path):
    started = time.perf_counter()
    try:
        namespace = runpy.run_path(path, run_name="__main__")
        result = {"ok": True, "result": jsonable(namespace.get("RESULT", {}))}
    except BaseException as error:  # noqa: BLE001 -- SystemExit too: a program must not end the corpus
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
        where = f"{os.path.basename(path)}:{frames[-1].lineno}: {frames[-1].line}" if frames else ""
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"[:2000], "where": where,
                  "traceback": "".join(traceback.format_exception(error))[-4000:]}
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=["dtorch", "torch"], required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("programs", nargs="+")
    args = parser.parse_args()
    if args.lib == "dtorch":
        sys.meta_path.insert(0, AliasFinder())
    import torch

    torch.set_num_threads(1)
    results = {}
    for path in args.programs:
        torch.manual_seed(0)
        sys.argv = [path]
        results[os.path.basename(path)] = run_one(os.path.abspath(path))
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
