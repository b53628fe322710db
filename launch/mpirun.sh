#!/usr/bin/env bash
# Start a dtorch script on several ranks with MPI's own launcher, without dtorchrun.
#
#   launch/mpirun.sh 4 examples/train_digits.py --epochs 20            # 4 ranks on this machine
#   HOSTFILE=launch/hostfile.example PER_NODE=2 launch/mpirun.sh 4 examples/train_digits.py   # 2 hosts x 2 ranks
#
# NPROCS is the total number of ranks. HOSTFILE (optional) names the hosts, one a line ("host:slots"); PER_NODE
# ranks go on each (default: the slots). MPIEXEC picks the launcher (default: the mpiexec beside the Python in
# use, which the mpich wheel installs, else the first on PATH). Every rank reads its rank and world size from MPI;
# OMP_NUM_THREADS defaults to 1 so that the ranks of one machine do not fight over its cores.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: [HOSTFILE=hosts] [PER_NODE=n] $0 NPROCS script.py [args...]" >&2
  exit 2
fi
NPROCS=$1; shift
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
MPIEXEC=${MPIEXEC:-$(dirname "$PYTHON")/mpiexec}
[ -x "$MPIEXEC" ] || MPIEXEC=$(command -v mpiexec)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
args=(-n "$NPROCS")
if [ -n "${HOSTFILE:-}" ]; then
  args+=(-f "$HOSTFILE")                       # MPICH (Hydra); Open MPI's mpirun takes --hostfile
  [ -n "${PER_NODE:-}" ] && args+=(-ppn "$PER_NODE")
fi
# Hydra passes the whole environment to every rank (-genvall is its default), PYTHONPATH and the venv included.
exec "$MPIEXEC" "${args[@]}" "$PYTHON" -u "$@"
