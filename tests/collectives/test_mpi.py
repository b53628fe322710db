"""The MPI transport on raw arrays: maps, CUDA-awareness detection, host staging, every verb against NumPy.

The verb tests run at any world size (1 under plain pytest; n under ``mpiexec -n n ... --with-mpi``).
"""

import numpy as np
import pytest

from dtorch.collectives.base import ReduceOp
from dtorch.collectives.mpi import MpiCommunicator, detect_cuda_aware, reduction

from collectives.helpers import DTYPES, FakeDeviceArray, assert_close, rank_data, reference, valid


@pytest.fixture(scope="module")
def comm():
    c = MpiCommunicator.world()
    yield c
    c.free()


# ---- pure logic ----------------------------------------------------------------------------------------------------


def test_reduction_rejects_what_mpi_cannot_do():
    with pytest.raises(TypeError, match=r"ReduceOp.AVG is not supported for int32 .*floating dtypes only"):
        reduction(ReduceOp.AVG, np.dtype("int32"))
    with pytest.raises(TypeError, match=r"ReduceOp.BAND is not supported for float32 .*integer or bool"):
        reduction(ReduceOp.BAND, np.dtype("float32"))
    with pytest.raises(TypeError, match="dtype object is not supported"):
        reduction(ReduceOp.SUM, np.dtype("O"))
    _, _, average = reduction(ReduceOp.AVG, np.dtype("float32"))
    assert average


@pytest.mark.parametrize("environ, answer, expected", [
    ({"DTORCH_MPI_CUDA_AWARE": "1"}, 0, True),
    ({"DTORCH_MPI_CUDA_AWARE": "off"}, 1, False),
    ({}, 1, True),
    ({}, 0, False),
    ({"MPICH_GPU_SUPPORT_ENABLED": "0"}, 1, False),
    ({"MV2_USE_CUDA": "0"}, 1, False),
    ({"MPIR_CVAR_ENABLE_GPU": "1"}, 0, False),  # a switch alone is not enough: the library must say yes
])
def test_detect_cuda_aware(environ, answer, expected):
    assert detect_cuda_aware(environ, query=lambda: answer) is expected


def test_pypi_mpich_is_not_cuda_aware():
    assert detect_cuda_aware({}) is False


# ---- verbs (any world size) ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", list(ReduceOp))
def test_allreduce(comm, dtype, op):
    if not valid(op, dtype):
        with pytest.raises(TypeError, match=f"ReduceOp.{op.name}"):
            comm.allreduce(None, rank_data(comm.rank, 5, dtype), op)
        return
    inputs = [rank_data(r, (3, 5), dtype, seed=1, op=op) for r in range(comm.size)]
    x = inputs[comm.rank].copy()
    comm.allreduce(None, x, op)
    assert_close(x, reference(inputs, op))
    out = np.empty_like(x)
    comm.allreduce(inputs[comm.rank], out, op)
    assert_close(out, reference(inputs, op))


@pytest.mark.parametrize("op", [ReduceOp.SUM, ReduceOp.MAX, ReduceOp.AVG])
def test_reduce_and_reduce_scatter(comm, op):
    n = comm.size
    inputs = [rank_data(r, (n, 4), "float64", seed=2) for r in range(n)]
    expected = reference(inputs, op)
    for root in range(n):
        x = inputs[comm.rank].copy()
        comm.reduce(None, x, op, root)
        assert_close(x, expected if comm.rank == root else inputs[comm.rank])
    out = np.empty(4)
    comm.reduce_scatter(inputs[comm.rank], out, op)
    assert_close(out, expected[comm.rank])


@pytest.mark.parametrize("dtype", ["float32", "int8", "bool", "complex64"])
def test_data_movement(comm, dtype):
    n, me = comm.size, comm.rank
    inputs = [rank_data(r, 6, "float64", seed=3).astype(dtype) for r in range(n)]
    for root in range(n):
        x = inputs[me].copy()
        comm.bcast(x, root)
        assert_close(x, inputs[root])
    gathered = np.empty((n, 6), dtype)
    comm.allgather(inputs[me], gathered)
    assert_close(gathered, np.stack(inputs))
    root = n - 1
    gathered[...] = 0
    comm.gather(inputs[me], gathered if me == root else None, root)
    if me == root:
        assert_close(gathered, np.stack(inputs))
    mine = np.empty(6, dtype)
    comm.scatter(np.stack(inputs) if me == 0 else None, mine, 0)
    assert_close(mine, inputs[me])
    blocks = np.stack([np.full(2, 10 * me + j).astype(dtype) for j in range(n)])
    received = np.empty_like(blocks)
    comm.alltoall(blocks, received)
    assert_close(received, np.stack([np.full(2, 10 * j + me).astype(dtype) for j in range(n)]))


def test_allgatherv_and_alltoallv_uneven(comm):
    n, me = comm.size, comm.rank
    counts = [r + 1 for r in range(n)]
    out = np.empty(sum(counts), np.int64)
    comm.allgatherv(np.full(me + 1, me, np.int64), out, counts)
    assert out.tolist() == [r for r in range(n) for _ in range(r + 1)]
    # rank i sends j+1 copies of (i, j) to rank j
    sendcounts = [j + 1 for j in range(n)]
    send = np.concatenate([np.full(j + 1, 100 * me + j) for j in range(n)]).astype(np.int32)
    recvcounts = [me + 1] * n
    recv = np.empty(sum(recvcounts), np.int32)
    comm.alltoallv(send, sendcounts, recv, recvcounts)
    assert recv.tolist() == [100 * i + me for i in range(n) for _ in range(me + 1)]


def test_allgather_bytes_and_barrier(comm):
    got = comm.allgather_bytes(b"x" * comm.rank)
    assert got == [b"x" * r for r in range(comm.size)]
    comm.barrier()


def test_host_staging_for_device_arrays(comm):
    staged = MpiCommunicator(comm.comm, cuda_aware=False)
    inputs = [rank_data(r, 8, "float32", seed=4) for r in range(comm.size)]
    x = FakeDeviceArray(inputs[comm.rank])
    staged.allreduce(None, x, ReduceOp.SUM)
    assert x.gets == 1 and x.sets == 1
    assert_close(x.get(), reference(inputs, ReduceOp.SUM))
    y = FakeDeviceArray(inputs[comm.rank])
    staged.bcast(y, 0)
    assert_close(y.get(), inputs[0])
    out = FakeDeviceArray(np.zeros((comm.size, 8), np.float32))
    staged.allgather(FakeDeviceArray(inputs[comm.rank]), out)
    assert_close(out.get(), np.stack(inputs))


def test_split_orders_ranks_as_listed(comm):
    order = list(reversed(range(comm.size)))
    sub = comm.split(order)
    assert sub.rank == order.index(comm.rank) and sub.size == comm.size
    sub.free()
    firsts = comm.split([0])
    assert (firsts is not None) == (comm.rank == 0)
    if firsts is not None:
        firsts.free()


@pytest.mark.mpi(min_size=2)
def test_send_recv_and_requests(comm):
    me, n = comm.rank, comm.size
    right, left = (me + 1) % n, (me - 1) % n
    got = np.empty(3)
    receive = comm.irecv(got, left, tag=5)
    comm.isend(np.full(3, float(me)), right, tag=5).wait()
    assert receive.wait() == left and got.tolist() == [left] * 3
    if me == 0:
        comm.send(np.arange(4.0), 1, tag=7)
    elif me == 1:
        buf = np.empty(4)
        assert comm.recv(buf, None, tag=7) == 0 and buf.tolist() == [0, 1, 2, 3]


def test_slot_window_is_readable_by_peers(comm):
    window = comm.slot_window(2)
    window.mine[0] = 40 + comm.rank
    window.mine[1] = -comm.rank
    comm.barrier()
    assert window.read(0, timeout=5) == [40 + r for r in range(comm.size)]
    assert window.read(1, timeout=5) == [-r for r in range(comm.size)]
    comm.barrier()
    window.free()


def test_allgather_bytes_refuses_sizes_over_its_limit(comm):
    with pytest.raises(RuntimeError, match="reported 9 bytes to gather"):
        comm.allgather_bytes(b"x" * 9, limit=9 * comm.size - 1)  # every rank refuses, none allocates
    assert comm.allgather_bytes(b"ok", limit=2 * comm.size) == [b"ok"] * comm.size
