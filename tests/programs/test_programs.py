"""The corpus: programs in the shape of well-known public PyTorch programs, run with dtorch and with PyTorch.

Each program in this folder (every ``*.py`` not starting with ``_`` or ``test_``) is written against ``torch`` and
names in its header the public program it follows. ``_runner.py`` runs the whole corpus once with PyTorch and once
with dtorch standing in for ``torch`` (two subprocesses), and each test compares one program's ``RESULT``:

- ``losses``: a list of floats; both runs finish with finite losses that fall (last below first);
- ``shapes``, ``dtypes``, ``exact``: equal in both runs;
- ``values``: numbers computed from fixed inputs, equal within rtol 1e-4 / atol 1e-5 (random streams differ
  between the libraries, so only values that do not depend on them are compared).

A PyTorch-compatibility bug gets a program (or its smallest reproduction) here before its fix.
"""

import json
import math
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# programs that do not run on dtorch yet, each with what it lacks; strict: one that starts passing must leave this list
KNOWN_FAILURES = {}  # all 42 run on dtorch now (20 did on the dtorch that landed before this work)
PROGRAMS = sorted(name for name in os.listdir(HERE)
                  if name.endswith(".py") and not name.startswith(("_", "test_")))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    paths = [os.path.join(HERE, name) for name in PROGRAMS]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    outputs = {}
    for lib in ("torch", "dtorch"):
        out = str(folder / f"{lib}.json")
        subprocess.run([sys.executable, os.path.join(HERE, "_runner.py"), "--lib", lib, "--out", out, *paths],
                       check=True, timeout=900, env=env, cwd=str(folder))
        with open(out) as f:
            outputs[lib] = json.load(f)
    return outputs


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("program", [pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[name], strict=True))
                                     if name in KNOWN_FAILURES else name for name in PROGRAMS])
def test_program_runs_on_dtorch_as_on_pytorch(results, program):
    theirs, ours = results["torch"][program], results["dtorch"][program]
    assert theirs["ok"], f"the program fails with PyTorch itself: {theirs.get('error')}"
    assert ours["ok"], f"{program} fails on dtorch: {ours['error']}\n  at {ours['where']}\n{ours['traceback']}"
    expected, got = theirs["result"], ours["result"]
    assert set(got) == set(expected), f"RESULT keys differ: {sorted(got)} vs {sorted(expected)}"
    assert expected, f"{program} leaves no RESULT: it checks nothing"
    for lib, result in (("torch", expected), ("dtorch", got)):
        losses = result.get("losses")
        if losses is not None:
            assert all(math.isfinite(x) for x in losses), f"{lib}: non-finite loss in {losses}"
            assert losses[-1] < losses[0], f"{lib}: the loss did not fall: {losses}"
    for key in ("shapes", "dtypes", "exact"):
        assert got.get(key) == expected.get(key), f"{key} differ: dtorch {got.get(key)} vs torch {expected.get(key)}"
    if "values" in expected:
        ours_flat, theirs_flat = dict(_flatten(got["values"])), dict(_flatten(expected["values"]))
        assert ours_flat.keys() == theirs_flat.keys()
        for name, value in theirs_flat.items():
            assert ours_flat[name] == pytest.approx(value, rel=1e-4, abs=1e-5), f"values{name}"
