#!/usr/bin/env bash
# The whole test suite: serial tests, the docstrings' examples, then the multi-rank tests under mpiexec with 2 and 4 ranks.
# Every multi-rank run sits under `timeout`, and `python -m mpi4py` aborts all ranks on an uncaught exception.
# Ends with one line "N passed, N failed" over all parts; exits non-zero when any part fails or ran no test.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1
# every test of these packages (and files) runs on every rank (each test works at any world size) ...
MULTI_RANK_DIRS=(tests/distributed tests/collectives tests/nn/test_sync_batchnorm.py tests/nn/parallel)
# ... while from the data tests only the ones marked `mpi` need several ranks
MPI_MARKED_DIRS=(tests/utils)
logs=$(mktemp -d)
status=0

run_part() {
  local name=$1; shift
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$logs/$name.log"
  local code=${PIPESTATUS[0]}
  if [ "$code" -ne 0 ]; then
    echo "=== $name FAILED (exit $code)"
    status=1
  fi
}

run_part serial timeout 1500 python -m pytest -q -p no:cacheprovider tests
# the >>> examples of the docstrings (dtorch/conftest.py says which are skipped and why)
run_part doctest timeout 600 python -m pytest -q -p no:cacheprovider --doctest-modules dtorch

for ranks in 2 4; do
  run_part "mpi-$ranks" timeout 600 mpiexec -n "$ranks" python -m mpi4py -m pytest -q -p no:cacheprovider \
    --with-mpi "${MULTI_RANK_DIRS[@]}"
  run_part "mpi-marked-$ranks" timeout 600 mpiexec -n "$ranks" python -m mpi4py -m pytest -q -p no:cacheprovider \
    --with-mpi -m mpi "${MPI_MARKED_DIRS[@]}"
done

# total the first pytest summary line of each part (under mpiexec every rank prints one)
python - "$logs" <<'PY' || status=1
import pathlib, re, sys
passed = failed = 0
for log in sorted(pathlib.Path(sys.argv[1]).glob("*.log")):
    for line in log.read_text(errors="replace").splitlines():
        if re.search(r"\d+ (passed|failed|error)", line) and re.search(r" in [\d.]+s", line):
            first = re.split(r" in [\d.]+s", line)[0]  # ranks' summaries can share a line: count the first
            passed += sum(int(n) for n in re.findall(r"(\d+) passed", first))
            failed += sum(int(n) for n in re.findall(r"(\d+) (?:failed|errors?)\b", first))
            break
    else:
        print(f"{log.stem}: no test summary found")
        failed += 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
PY
exit $status
