"""Object collectives: picklable Python objects of any size per rank."""

import pytest

import dtorch.distributed as dist


def obj(rank):
    return {"rank": rank, "payload": list(range(rank * 3)), "name": "r" * (rank + 1)}


def test_all_gather_object(world):
    n, me = dist.get_world_size(), dist.get_rank()
    out = [None] * n
    dist.all_gather_object(out, obj(me))
    assert out == [obj(r) for r in range(n)]
    with pytest.raises(ValueError, match="object_list has 0 slots"):
        dist.all_gather_object([], 1)


def test_broadcast_object_list(world):
    n, me = dist.get_world_size(), dist.get_rank()
    for root in range(n):
        items = [obj(me), me, None]
        dist.broadcast_object_list(items, src=root)
        assert items == [obj(root), root, None]


def test_gather_and_scatter_object(world):
    n, me = dist.get_world_size(), dist.get_rank()
    root = n - 1
    got = [None] * n if me == root else None
    dist.gather_object(obj(me), got, dst=root)
    if me == root:
        assert got == [obj(r) for r in range(n)]
    out = [None]
    dist.scatter_object_list(out, [obj(r) for r in range(n)] if me == 0 else None, src=0)
    assert out == [obj(me)]
