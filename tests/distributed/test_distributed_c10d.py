"""Every collective of dtorch.distributed against a NumPy reference: dtypes, reduce ops, sync and async, on the
world and on sub-groups, with dtorch Tensors and raw arrays. Runs at any world size (1 under plain pytest)."""

import time

import numpy as np
import pytest

import dtorch
import dtorch.distributed as dist
from dtorch.distributed import ReduceOp

from collectives.helpers import DTYPES, assert_close, rank_data, reference, valid


def T(array):
    """A dtorch Tensor over a copy of ``array``."""
    return dtorch.from_numpy(np.array(array, copy=True))


def arr(tensor):
    return tensor._array


def finish(result, async_op):
    if async_op:
        assert isinstance(result, dist.Work)
        assert result.wait() is True and result.is_completed()
    else:
        assert result is None


@pytest.mark.parametrize("async_op", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", list(ReduceOp))
def test_all_reduce(world, dtype, op, async_op):
    n, me = dist.get_world_size(), dist.get_rank()
    inputs = [rank_data(r, (2, 3), dtype, seed=10, op=op) for r in range(n)]
    t = T(inputs[me])
    if not valid(op, dtype):
        with pytest.raises(TypeError, match=f"ReduceOp.{op.name}"):
            dist.all_reduce(t, op=op, async_op=async_op)
        return
    finish(dist.all_reduce(t, op=op, async_op=async_op), async_op)
    assert_close(arr(t), reference(inputs, op))


@pytest.mark.parametrize("async_op", [False, True], ids=["sync", "async"])
def test_broadcast_reduce_from_every_root(world, async_op):
    n, me = dist.get_world_size(), dist.get_rank()
    inputs = [rank_data(r, 5, "float64", seed=11) for r in range(n)]
    for root in range(n):
        t = T(inputs[me])
        finish(dist.broadcast(t, src=root, async_op=async_op), async_op)
        assert_close(arr(t), inputs[root])
        t = T(inputs[me])
        finish(dist.reduce(t, dst=root, op=ReduceOp.MAX, async_op=async_op), async_op)
        assert_close(arr(t), reference(inputs, ReduceOp.MAX) if me == root else inputs[me])


@pytest.mark.parametrize("async_op", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_gathers_and_scatters(world, dtype, async_op):
    n, me = dist.get_world_size(), dist.get_rank()
    inputs = [rank_data(r, (2, 2), dtype, seed=12) for r in range(n)]
    outs = [T(np.zeros((2, 2), dtype)) for _ in range(n)]
    finish(dist.all_gather(outs, T(inputs[me]), async_op=async_op), async_op)
    for r in range(n):
        assert_close(arr(outs[r]), inputs[r])
    flat = T(np.zeros((2 * n, 2), dtype))
    finish(dist.all_gather_into_tensor(flat, T(inputs[me]), async_op=async_op), async_op)
    assert_close(arr(flat), np.concatenate(inputs))
    root = n - 1
    gathered = [T(np.zeros((2, 2), dtype)) for _ in range(n)] if me == root else None
    finish(dist.gather(T(inputs[me]), gathered, dst=root, async_op=async_op), async_op)
    if me == root:
        for r in range(n):
            assert_close(arr(gathered[r]), inputs[r])
    mine = T(np.zeros((2, 2), dtype))
    finish(dist.scatter(mine, [T(a) for a in inputs] if me == 0 else None, src=0, async_op=async_op), async_op)
    assert_close(arr(mine), inputs[me])


@pytest.mark.parametrize("async_op", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("op", [ReduceOp.SUM, ReduceOp.MIN, ReduceOp.AVG])
def test_reduce_scatter(world, op, async_op):
    n, me = dist.get_world_size(), dist.get_rank()
    inputs = [rank_data(r, (n, 3), "float32", seed=13) for r in range(n)]
    expected = reference(inputs, op)
    out = T(np.zeros(3, np.float32))
    finish(dist.reduce_scatter(out, [T(row) for row in inputs[me]], op=op, async_op=async_op), async_op)
    assert_close(arr(out), expected[me])
    out = T(np.zeros(3, np.float32))
    finish(dist.reduce_scatter_tensor(out, T(inputs[me].reshape(-1)), op=op, async_op=async_op), async_op)
    assert_close(arr(out), expected[me])
    assert dist.reduce_scatter_single is dist.reduce_scatter_tensor
    assert dist.all_gather_single is dist.all_gather_into_tensor


@pytest.mark.parametrize("async_op", [False, True], ids=["sync", "async"])
def test_all_to_all(world, async_op):
    n, me = dist.get_world_size(), dist.get_rank()
    # rank i sends j+1 values 100*i+j to rank j: uneven sizes
    inputs = [T(np.full(j + 1, 100 * me + j, np.int64)) for j in range(n)]
    outputs = [T(np.zeros(me + 1, np.int64)) for _ in range(n)]
    finish(dist.all_to_all(outputs, inputs, async_op=async_op), async_op)
    for i in range(n):
        assert arr(outputs[i]).tolist() == [100 * i + me] * (me + 1)
    # even split along dim 0
    src = T(np.arange(2 * n * 3, dtype=np.float32).reshape(2 * n, 3) + 1000 * me)
    out = T(np.zeros((2 * n, 3), np.float32))
    finish(dist.all_to_all_single(out, src, async_op=async_op), async_op)
    expected = np.concatenate([(np.arange(2 * n * 3, dtype=np.float32).reshape(2 * n, 3) + 1000 * i)[2 * me:2 * me + 2]
                               for i in range(n)])
    assert_close(arr(out), expected)
    # uneven split: rank i sends j+1 rows to rank j
    rows = n * (n + 1) // 2
    src = T(np.full((rows, 2), me, np.float64))
    out = T(np.zeros(((me + 1) * n, 2)))
    finish(dist.all_to_all_single(out, src, output_split_sizes=[me + 1] * n,
                                  input_split_sizes=list(range(1, n + 1)), async_op=async_op), async_op)
    assert arr(out)[:, 0].tolist() == [i for i in range(n) for _ in range(me + 1)]


def test_barrier_and_raw_arrays(world):
    dist.barrier()
    finish(dist.barrier(async_op=True), True)
    x = np.ones(3)
    dist.all_reduce(x)  # a raw NumPy array is taken as well
    assert x.tolist() == [dist.get_world_size()] * 3


def test_async_work_future_then(world):
    t = T(np.ones(2, np.float32))
    work = dist.all_reduce(t, async_op=True)
    doubled = work.get_future().then(lambda fut: fut.value()[0]._array * 2)
    assert np.all(doubled.wait() == 2 * dist.get_world_size())
    assert work.get_future().value()[0] is t


def test_async_ordering_and_sync_after_async(world):
    n = dist.get_world_size()
    tensors = [T(np.full(512, float(i))) for i in range(50)]
    works = [dist.all_reduce(t, async_op=True) for t in tensors]
    last = T(np.ones(1))
    dist.all_reduce(last)  # sync: runs after every queued one
    assert all(w.is_completed() for w in works)
    assert [arr(t)[0] for t in tensors] == [i * n for i in range(50)]
    assert arr(last)[0] == n


def test_async_overlaps_with_computation(world):
    """Queued work progresses while the main thread computes, with no wait() or polling."""
    works = [dist.all_reduce(T(np.ones(4096, np.float32)), async_op=True) for _ in range(20)]
    deadline = time.monotonic() + 30
    while not all(w.is_completed() for w in works) and time.monotonic() < deadline:
        sum(range(20000))  # busy in Python, never inside an MPI call
    assert all(w.is_completed() for w in works)
    assert works[0].get_future().value()[0]._array[0] == dist.get_world_size()


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("async_op", [False, True], ids=["sync", "async"])
def test_sub_groups(world, async_op):
    n, me = dist.get_world_size(), dist.get_rank()
    evens = [r for r in range(n) if r % 2 == 0]
    odds = [r for r in range(n) if r % 2 == 1]
    g_even, g_odd = dist.new_group(evens), dist.new_group(odds)
    mine, other = (g_even, g_odd) if me % 2 == 0 else (g_odd, g_even)
    members = evens if me % 2 == 0 else odds
    assert other is dist.GroupMember.NON_GROUP_MEMBER
    assert dist.get_rank(mine) == members.index(me) and dist.get_world_size(mine) == len(members)
    assert dist.get_rank(other) == -1
    assert dist.get_process_group_ranks(mine) == members
    assert dist.get_global_rank(mine, 0) == members[0] and dist.get_group_rank(mine, me) == members.index(me)
    t = T(np.full(3, float(me)))
    finish(dist.all_reduce(t, group=mine, async_op=async_op), async_op)
    assert arr(t).tolist() == [float(sum(members))] * 3
    t = T(np.full(2, float(me)))
    finish(dist.broadcast(t, src=members[-1], group=mine, async_op=async_op), async_op)
    assert arr(t).tolist() == [float(members[-1])] * 2
    t = T(np.full(2, float(me)))
    finish(dist.broadcast(t, group_src=0, group=mine, async_op=async_op), async_op)
    assert arr(t).tolist() == [float(members[0])] * 2
    outs = [T(np.zeros(1)) for _ in members]
    finish(dist.all_gather(outs, T(np.array([float(me)])), group=mine, async_op=async_op), async_op)
    assert [arr(o)[0] for o in outs] == [float(r) for r in members]
    with pytest.warns(UserWarning, match="does not belong"):
        assert dist.all_reduce(T(np.ones(1)), group=other) is None
    if me % 2 == 0:
        with pytest.raises(ValueError, match=r"src 1 is not in group .*its global ranks are \[0"):
            dist.broadcast(T(np.ones(1)), src=1, group=g_even)
    dist.destroy_process_group(g_even)
    dist.destroy_process_group(g_odd)


@pytest.mark.mpi(min_size=2)
def test_unsorted_group_keeps_the_listed_order(world):
    n, me = dist.get_world_size(), dist.get_rank()
    order = list(reversed(range(n)))
    g = dist.new_group(order, sort_ranks=False)
    assert dist.get_rank(g) == order.index(me) and dist.get_process_group_ranks(g) == order
    outs = [T(np.zeros(1)) for _ in range(n)]
    dist.all_gather(outs, T(np.array([float(me)])), group=g)
    assert [arr(o)[0] for o in outs] == [float(r) for r in order]
    t = T(np.array([float(me)]))
    dist.broadcast(t, group_src=0, group=g)  # group rank 0 is global rank n-1
    assert arr(t)[0] == float(n - 1)
    sorted_group = dist.new_group(order)
    assert dist.get_process_group_ranks(sorted_group) == list(range(n))  # sorted by default, as in PyTorch
    dist.destroy_process_group(sorted_group)
    dist.destroy_process_group(g)


@pytest.mark.mpi(min_size=2)
def test_group_made_by_its_members_only(world):
    """use_local_synchronization=True: ranks outside the group do not take part in making it."""
    n, me = dist.get_world_size(), dist.get_rank()
    if me >= 2:
        return
    pair = dist.new_group([0, 1], use_local_synchronization=True)
    t = T(np.full(1, float(me + 1)))
    dist.all_reduce(t, group=pair)
    assert arr(t)[0] == 3.0
    dist.destroy_process_group(pair)


@pytest.mark.mpi(min_size=2)
def test_groups_run_independently(world):
    """Async work on one group does not block another group's collectives."""
    n = dist.get_world_size()
    sub = dist.new_group(list(range(n)))
    works = [dist.all_reduce(T(np.ones(1000)), group=sub, async_op=True) for _ in range(10)]
    t = T(np.ones(1))
    dist.all_reduce(t)
    assert arr(t)[0] == n
    assert all(w.wait() for w in works)
    dist.destroy_process_group(sub)


@pytest.mark.mpi(min_size=2)
def test_send_recv(world):
    n, me = dist.get_world_size(), dist.get_rank()
    right, left = (me + 1) % n, (me - 1) % n
    got = T(np.zeros(3))
    receive = dist.irecv(got, src=left)
    dist.isend(T(np.full(3, float(me))), dst=right).wait()
    receive.wait()
    assert arr(got).tolist() == [float(left)] * 3
    if me == 0:
        dist.send(T(np.arange(3.0)), dst=1, tag=3)
    elif me == 1:
        buf = T(np.zeros(3))
        assert dist.recv(buf, tag=3) == 0  # from any source
        assert arr(buf).tolist() == [0, 1, 2]
    ops = [dist.P2POp(dist.isend, T(np.full(2, float(me))), right), dist.P2POp(dist.irecv, T(np.zeros(2)), left)]
    works = dist.batch_isend_irecv(ops)
    assert all(w.wait() for w in works)
    assert arr(ops[1].tensor).tolist() == [float(left)] * 2
    with pytest.raises(ValueError, match="is this rank itself"):
        dist.send(T(np.ones(1)), dst=me)


@pytest.mark.mpi(min_size=2)
def test_monitored_barrier(world):
    dist.monitored_barrier(timeout=30)
    dist.monitored_barrier(timeout=30, wait_all_ranks=True)


def test_bad_input_errors(world):
    n = dist.get_world_size()
    with pytest.raises(ValueError, match="tensors must be contiguous"):
        dist.all_reduce(dtorch.from_numpy(np.zeros((4, 4))[:, ::2]))
    with pytest.raises(ValueError, match="tensor 1 of the list has shape \\(3,\\)"):
        dist.all_gather([T(np.zeros(2)), T(np.zeros(3))] + [T(np.zeros(2))] * (n - 2), T(np.zeros(2)))
    with pytest.raises(ValueError, match=f"has {n + 1} tensors but group WORLD has {n} ranks"):
        dist.all_gather([T(np.zeros(2)) for _ in range(n + 1)], T(np.zeros(2)))
    with pytest.raises(ValueError, match=f"src {n} is not in group WORLD"):
        dist.broadcast(T(np.zeros(2)), src=n)
    with pytest.raises(TypeError, match="expects a Tensor, got list"):
        dist.all_reduce([1.0, 2.0])
    with pytest.raises(TypeError, match="must be a dtorch.distributed.ReduceOp"):
        dist.all_reduce(T(np.zeros(2)), op="sum")
    with pytest.raises(ValueError, match="the output must hold"):
        dist.all_gather_into_tensor(T(np.zeros(n * 2 + 1)), T(np.zeros(2)))
    with pytest.raises(ValueError, match="input_split_sizes \\[1\\] must have"):
        dist.all_to_all_single(T(np.zeros(2 * n)), T(np.zeros(2 * n)), input_split_sizes=[1], output_split_sizes=[1])
    if n > 1:
        with pytest.raises(ValueError, match="not divisible"):
            dist.all_to_all_single(T(np.zeros(n * 2 + 1)), T(np.zeros(n * 2 + 1)))
    # non-contiguous outputs, in every form an output takes
    strided = dtorch.from_numpy(np.zeros((2 * n, 2))[:, :1])
    with pytest.raises(ValueError, match=r"contiguous; got an output tensor of shape \(2, 1\)"):
        dist.all_gather([strided[:2]] * n, T(np.zeros((2, 1))))
    with pytest.raises(ValueError, match=r"contiguous; got an output tensor of shape \(%d, 1\)" % (2 * n)):
        dist.all_gather_into_tensor(strided, T(np.zeros((2, 1))))
    with pytest.raises(ValueError, match="contiguous; got an output tensor"):
        dist.reduce_scatter_tensor(strided, T(np.zeros((2 * n * n, 1))))
    with pytest.raises(ValueError, match="contiguous; got an output tensor"):
        dist.recv(strided, src=0) if n > 1 else dist.scatter(strided, [strided] if dist.get_rank() == 0 else None)
    # dtypes the backend cannot take
    with pytest.raises(TypeError, match="dtype object is not supported"):
        dist.broadcast(np.array([None, 1], dtype=object), src=0)
    with pytest.raises(TypeError, match="dtype object is not supported"):
        dist.all_reduce(np.array([None, 1], dtype=object))
    with pytest.raises(TypeError, match="ReduceOp.BXOR is not supported for float64"):
        dist.all_reduce(T(np.zeros(2)), op=ReduceOp.BXOR, async_op=True)
    with pytest.raises(TypeError, match="ReduceOp.AVG is not supported for int64"):
        dist.reduce(T(np.zeros(2, np.int64)), dst=0, op=ReduceOp.AVG)
    # a rank outside the group, as a root, a peer or a group rank
    with pytest.raises(ValueError, match=f"dst {n} is not in group WORLD"):
        dist.gather(T(np.zeros(2)), dst=n)
    with pytest.raises(ValueError, match=f"group_src={n} is outside group WORLD of {n} ranks"):
        dist.broadcast(T(np.zeros(2)), group_src=n)
    with pytest.raises(ValueError, match=f"dst {n + 3} is not in group WORLD"):
        dist.isend(T(np.zeros(2)), dst=n + 3)
    # nothing above communicated: the group is still in step
    t = T(np.ones(1))
    dist.all_reduce(t)
    assert arr(t)[0] == n


@pytest.mark.gpu
def test_cuda_arrays_over_the_mpi_backend(world):
    """Ranks sharing a GPU through the MPI group: CuPy arrays staged through host memory (the PyPI MPI is not
    CUDA-aware), every rank's result equal to the NumPy reference."""
    import cupy

    n, me = dist.get_world_size(), dist.get_rank()
    inputs = [rank_data(r, (3, 4), "float32", seed=20) for r in range(n)]
    x = cupy.asarray(inputs[me])
    dist.all_reduce(x)
    assert_close(cupy.asnumpy(x), reference(inputs, ReduceOp.SUM))
    out = cupy.empty((3 * n, 4), cupy.float32)
    dist.all_gather_into_tensor(out, cupy.asarray(inputs[me]))
    assert_close(cupy.asnumpy(out), np.concatenate(inputs))
    y = cupy.asarray(inputs[me])
    work = dist.broadcast(y, src=n - 1, async_op=True)
    work.wait()
    assert_close(cupy.asnumpy(y), inputs[n - 1])


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("async_op", [False, True], ids=["sync", "async"])
def test_every_collective_on_a_sub_group(world, async_op):
    """A group of all ranks but the last, in reversed order (sort_ranks=False): roots, peers and results are the
    group's ranks, checked against NumPy on the members; the rank left out takes no part."""
    n, me = dist.get_world_size(), dist.get_rank()
    members = list(reversed(range(n - 1))) if n > 2 else [1, 0]
    g = dist.new_group(members, sort_ranks=False)
    if me not in members:
        assert g is dist.GroupMember.NON_GROUP_MEMBER
        return
    k, gr = len(members), members.index(me)
    inputs = [rank_data(r, (k, 3), "float64", seed=30) for r in members]  # by group rank
    mine = inputs[gr]
    root = members[-1]  # global rank of group rank k-1
    t = T(mine)
    finish(dist.reduce(t, dst=root, op=ReduceOp.SUM, group=g, async_op=async_op), async_op)
    assert_close(arr(t), reference(inputs, ReduceOp.SUM) if me == root else mine)
    out = T(np.zeros(3))
    finish(dist.reduce_scatter_tensor(out, T(mine.reshape(-1)), op=ReduceOp.MAX, group=g, async_op=async_op),
           async_op)
    assert_close(arr(out), reference(inputs, ReduceOp.MAX)[gr])
    flat = T(np.zeros((k * k, 3)))
    finish(dist.all_gather_into_tensor(flat, T(mine), group=g, async_op=async_op), async_op)
    assert_close(arr(flat), np.concatenate(inputs))
    gathered = [T(np.zeros((k, 3))) for _ in range(k)] if gr == 0 else None
    finish(dist.gather(T(mine), gathered, group_dst=0, group=g, async_op=async_op), async_op)
    if gr == 0:
        for r in range(k):
            assert_close(arr(gathered[r]), inputs[r])
    got = T(np.zeros((k, 3)))
    finish(dist.scatter(got, [T(a) for a in inputs] if me == root else None, src=root, group=g,
                        async_op=async_op), async_op)
    assert_close(arr(got), inputs[gr])
    received = T(np.zeros((k, 3)))
    finish(dist.all_to_all_single(received, T(mine), group=g, async_op=async_op), async_op)
    assert_close(arr(received), np.stack([inputs[r][gr] for r in range(k)]))
    objects = [None] * k
    dist.all_gather_object(objects, ("rank", me), group=g)
    assert objects == [("rank", r) for r in members]
    dist.destroy_process_group(g)


@pytest.mark.mpi(min_size=2)
def test_group_made_by_its_members_while_world_work_is_queued(world):
    """use_local_synchronization=True does not meet the world group's queued collectives on their communicator."""
    n, me = dist.get_world_size(), dist.get_rank()
    tensors = [T(np.full(1000, float(i))) for i in range(10)]
    works = [dist.all_reduce(t, async_op=True) for t in tensors]
    if me < 2:
        pair = dist.new_group([0, 1], use_local_synchronization=True)
        t = T(np.full(1, float(me + 1)))
        dist.all_reduce(t, group=pair)
        assert arr(t)[0] == 3.0
        dist.destroy_process_group(pair)
    assert all(w.wait() for w in works)
    assert [arr(t)[0] for t in tensors] == [float(i * n) for i in range(10)]


def test_is_torchelastic_launched_follows_the_launcher_variable(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert dist.is_torchelastic_launched() is False
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "dtorchrun-1234")
    assert dist.is_torchelastic_launched() is True
