"""The NCCL adapter's logic on CPU with a fake ``cupy.cuda.nccl`` (maps, unique-id handling, device choice, and
every verb of a world of one), and, where a GPU is, a real world-of-one NCCL communicator."""

import ctypes
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from dtorch.collectives.base import ReduceOp
from dtorch.collectives.nccl import (NcclCommunicator, decode_uid, encode_uid, load_nccl, nccl_dtype, nccl_op,
                                     pick_device)

_TYPES = ["INT8", "UINT8", "INT32", "UINT32", "INT64", "UINT64", "FLOAT16", "FLOAT32", "FLOAT64", "BFLOAT16"]
_SIZES = [1, 1, 4, 4, 8, 8, 2, 4, 8, 2]


class FakeComm:
    """Records calls; moves bytes as a world of one would (sends pair with receives at groupEnd)."""

    def __init__(self, module, ndev, uid, rank):
        self.module, self.ndev, self.uid, self.rank = module, ndev, uid, rank
        self.calls = []

    def _move(self, dst, src, count, dtype):
        if dst != src:
            ctypes.memmove(dst, src, count * _SIZES[dtype])

    def allReduce(self, send, recv, count, dtype, op, stream):
        self.calls.append(("allReduce", count, dtype, op))
        self._move(recv, send, count, dtype)

    def bcast(self, ptr, count, dtype, root, stream):
        self.calls.append(("bcast", count, dtype, root))

    def reduce(self, send, recv, count, dtype, op, root, stream):
        self.calls.append(("reduce", count, dtype, op, root))
        self._move(recv, send, count, dtype)

    def allGather(self, send, recv, count, dtype, stream):
        self.calls.append(("allGather", count, dtype))
        self._move(recv, send, count, dtype)

    def reduceScatter(self, send, recv, count, dtype, op, stream):
        self.calls.append(("reduceScatter", count, dtype, op))
        self._move(recv, send, count, dtype)

    def send(self, ptr, count, dtype, peer, stream):
        assert self.module.in_group, "send outside groupStart/groupEnd"
        self.module.sends.append((ptr, count, dtype))

    def recv(self, ptr, count, dtype, peer, stream):
        assert self.module.in_group, "recv outside groupStart/groupEnd"
        self.module.recvs.append((ptr, count, dtype))

    def abort(self):
        self.calls.append(("abort",))

    def check_async_error(self):
        self.calls.append(("check_async_error",))

    def destroy(self):
        self.calls.append(("destroy",))


def fake_nccl():
    module = SimpleNamespace(available=True, in_group=False, sends=[], recvs=[])
    for code, name in enumerate(_TYPES):
        setattr(module, f"NCCL_{name}", code)
    for code, name in enumerate(["SUM", "PROD", "MAX", "MIN", "AVG"]):
        setattr(module, f"NCCL_{name}", 100 + code)
    module.get_unique_id = lambda: tuple((i * 37) % 256 - 128 for i in range(128))
    module.NcclCommunicator = lambda ndev, uid, rank: FakeComm(module, ndev, uid, rank)

    def group_start():
        module.in_group = True

    def group_end():
        module.in_group = False
        assert len(module.sends) == len(module.recvs)
        for (src, count, dtype), (dst, rcount, _) in zip(module.sends, module.recvs):
            assert count == rcount
            ctypes.memmove(dst, src, count * _SIZES[dtype])
        module.sends.clear()
        module.recvs.clear()

    module.groupStart, module.groupEnd = group_start, group_end
    return module


class DeviceArray(np.ndarray):
    """A NumPy array that shows a device pointer the way CuPy does (``a.data.ptr``)."""

    @property
    def data(self):
        return SimpleNamespace(ptr=self.ctypes.data)


def dev(values, dtype="float32"):
    return np.array(values, dtype=dtype).view(DeviceArray)


class FakeBootstrap:
    rank, size = 0, 1

    def __init__(self):
        self.broadcasts = []

    def bcast(self, buf, root):
        self.broadcasts.append(buf.copy())

    def barrier(self):
        pass


def fake_cupy(devices=2):
    used = []
    cuda = SimpleNamespace(
        runtime=SimpleNamespace(getDeviceCount=lambda: devices),
        Device=lambda i: SimpleNamespace(use=lambda: used.append(i)),
        get_current_stream=lambda: SimpleNamespace(ptr=0),
        Event=lambda: SimpleNamespace(record=lambda: None, query=lambda: True),
    )
    return SimpleNamespace(cuda=cuda, used=used)


@pytest.fixture
def world():
    module = fake_nccl()
    boot = FakeBootstrap()
    return NcclCommunicator.from_mpi(boot, local_rank=3, nccl=module, cupy=fake_cupy(devices=2)), module, boot


# ---- maps and bootstrap --------------------------------------------------------------------------------------------


def test_dtype_map():
    module = fake_nccl()
    assert nccl_dtype(np.dtype("float32"), module) == module.NCCL_FLOAT32
    assert nccl_dtype(np.dtype("bool"), module) == module.NCCL_UINT8
    assert nccl_dtype(np.dtype("int64"), module) == module.NCCL_INT64
    with pytest.raises(TypeError, match="dtype int16 is not supported by the nccl backend"):
        nccl_dtype(np.dtype("int16"), module)


def test_op_map():
    module = fake_nccl()
    assert nccl_op(ReduceOp.SUM, np.float32, module) == module.NCCL_SUM
    assert nccl_op(ReduceOp.AVG, np.float16, module) == module.NCCL_AVG
    assert nccl_op(ReduceOp.SUM, np.bool_, module) == module.NCCL_MAX  # or
    assert nccl_op(ReduceOp.BAND, np.bool_, module) == module.NCCL_MIN  # and
    with pytest.raises(TypeError, match="ReduceOp.BXOR is not supported by the nccl backend"):
        nccl_op(ReduceOp.BXOR, np.int32, module)
    with pytest.raises(TypeError, match="ReduceOp.AVG is not supported for int32"):
        nccl_op(ReduceOp.AVG, np.int32, module)
    del module.NCCL_AVG  # an NCCL older than 2.10
    with pytest.raises(TypeError, match="ReduceOp.AVG is not supported by this NCCL build"):
        nccl_op(ReduceOp.AVG, np.float32, module)


def test_uid_round_trip():
    uid = fake_nccl().get_unique_id()
    encoded = encode_uid(uid)
    assert encoded.dtype == np.int64 and encoded.shape == (128,)
    assert decode_uid(encoded) == uid
    assert decode_uid(encode_uid(bytes(range(128)))) == tuple(range(128))


def test_pick_device():
    assert pick_device(3, 2) == 1
    with pytest.raises(RuntimeError, match="needs a GPU"):
        pick_device(0, 0)


def test_bootstrap_broadcasts_the_uid_and_uses_the_local_device(world):
    comm, module, boot = world
    assert decode_uid(boot.broadcasts[0]) == module.get_unique_id()
    assert comm.comm.uid == module.get_unique_id() and comm.comm.ndev == 1 and comm.comm.rank == 0


def test_missing_cupy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setitem(sys.modules, "cupy.cuda", None)
    with pytest.raises(RuntimeError, match=r"dtorch\[cuda12\]"):
        load_nccl()


# ---- every verb, world of one --------------------------------------------------------------------------------------


def test_verbs_world_of_one(world):
    comm, module, _ = world
    x = dev([1, 2, 3])
    comm.allreduce(None, x, ReduceOp.AVG)
    assert comm.comm.calls[-1] == ("allReduce", 3, module.NCCL_FLOAT32, module.NCCL_AVG)
    out = dev([0, 0, 0])
    comm.allreduce(dev([4, 5, 6]), out, ReduceOp.MAX)
    assert out.tolist() == [4, 5, 6]
    comm.bcast(x, 0)
    comm.reduce(dev([7, 8, 9]), out, ReduceOp.SUM, 0)
    assert out.tolist() == [7, 8, 9]
    gathered = dev([[0, 0]])
    comm.allgather(dev([1, 2]), gathered)
    assert gathered.tolist() == [[1, 2]]
    comm.gather(dev([3, 4]), gathered, 0)
    assert gathered.tolist() == [[3, 4]]
    mine = dev([0, 0])
    comm.scatter(dev([[5, 6]]), mine, 0)
    assert mine.tolist() == [5, 6]
    comm.reduce_scatter(dev([1, 1]), mine, ReduceOp.SUM)
    assert mine.tolist() == [1, 1]
    received = dev([0, 0, 0], "int64")
    comm.alltoall(dev([1, 2, 3], "int64"), received)
    assert received.tolist() == [1, 2, 3]
    comm.allgatherv(dev([9, 8], "int64"), received[:2], [2])
    assert received.tolist() == [9, 8, 3]
    with pytest.raises(TypeError, match="int16"):
        comm.allreduce(None, dev([1], "int16"), ReduceOp.SUM)
    with pytest.raises(ValueError, match="any source"):
        comm.recv(mine, None)
    comm.check_async_error()
    comm.free()
    assert comm.comm.calls[-2:] == [("check_async_error",), ("destroy",)]


# ---- a real GPU ----------------------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_real_nccl_world_of_one():
    import cupy

    from dtorch.collectives.mpi import MpiCommunicator, mpi

    boot = MpiCommunicator(mpi().COMM_SELF)
    comm = NcclCommunicator.from_mpi(boot, local_rank=0)
    x = cupy.arange(4, dtype=cupy.float32)
    comm.allreduce(None, x, ReduceOp.SUM)
    comm.bcast(x, 0)
    out = cupy.empty((1, 4), cupy.float32)
    comm.allgather(x, out)
    comm.reduce_scatter(x, out[0], ReduceOp.MAX)
    comm.alltoall(x, out.reshape(-1))
    comm.gather(x, out, 0)
    comm.scatter(out, x, 0)
    cupy.cuda.get_current_stream().synchronize()
    assert cupy.asnumpy(x).tolist() == [0, 1, 2, 3]
    comm.free()
