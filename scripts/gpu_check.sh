#!/usr/bin/env bash
# The GPU check (issue 15), one prepared script for a lent GPU machine, under 8 minutes: the `gpu`-marked tests
# (op parity of cuda against the CPU, the fused kernels against their references, a world-of-one NCCL
# communicator through every collective, DDP on the GPU), two MPI ranks sharing the GPU through the MPI
# backend, and the GPU benchmarks. Logs land in $OUT (the device tool brings them back) or /tmp/gpu_check.
#
# The GPU machine has CuPy, PyTorch and NCCL but no internet: carry mpi4py/mpich (and anything else missing) as
# wheels in .whl/ (see the device tool's notes); they are installed first when present.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import cupy, dtorch; print('cupy', cupy.__version__, 'cuda available:', dtorch.cuda.is_available())" \
  | tee -a "$out/gpu.txt" || status=1

echo "=== gpu tests"
timeout 240 python3 -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tee "$out/gpu_tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "=== two MPI ranks sharing the GPU (MPI backend, host staging)"
timeout 120 mpiexec -n 2 python3 -m mpi4py -m pytest -q -p no:cacheprovider --with-mpi -m gpu \
  tests/distributed tests/collectives 2>&1 | tee "$out/gpu_mpi.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "=== GPU benchmarks"
timeout 180 python3 bench/bench_gpu.py 2>&1 | tee "$out/gpu_bench.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "gpu_check exit status: $status"
exit $status
