"""DistributedDataParallel: N ranks train as one process on the concatenated batch, and every option behaves as
PyTorch's. Every test runs at any world size (1 under plain pytest; 2 and 4 under mpiexec); each rank takes rows
``[rank * b, (rank + 1) * b)`` of one global batch that every rank draws from the same seed."""

import contextlib
import os
import re
import tempfile

import numpy as np
import pytest

import dtorch
import dtorch.distributed as dist
from dtorch import nn
from dtorch.nn.modules.utils import consume_prefix_in_state_dict_if_present
from dtorch.nn.parallel import DataParallel, DistributedDataParallel as DDP, _reducer, data_parallel

PER_RANK = 4


def _rank_world():
    return dist.get_rank(), dist.get_world_size()


def _mine(array, rank):
    return array[PER_RANK * rank:PER_RANK * (rank + 1)]


def _batches(steps, world, shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((PER_RANK * world,) + shape), rng.integers(0, classes, PER_RANK * world))
            for _ in range(steps)]


def _params(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def _train(model, batches, rank=None, lr=0.1, momentum=0.9, loss_fn=nn.functional.cross_entropy):
    """SGD steps on each batch (this rank's rows of it when ``rank`` is given)."""
    optimizer = dtorch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for x, y in batches:
        if rank is not None:
            x, y = _mine(x, rank), _mine(y, rank)
        optimizer.zero_grad()
        loss_fn(model(dtorch.tensor(x)), dtorch.tensor(y)).backward()
        optimizer.step()


def _assert_same(ours, theirs, atol=1e-6):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)


def _all_equal_across_ranks(arrays):
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, [np.asarray(a) for a in arrays])
    for other in everyone[1:]:
        _assert_same(other, everyone[0], atol=0)


# ---- equal to one process on the concatenated batch ------------------------------------------------------------


def _mlp():
    dtorch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)).double()


def test_mlp_matches_pytorch_one_process_on_the_concatenated_batch(world):
    import torch

    rank, size = _rank_world()
    batches = _batches(4, size, (6,), 3)
    model = DDP(_mlp())
    _train(model, batches, rank)

    start = _mlp()
    oracle = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 12), torch.nn.Tanh(),
                                 torch.nn.Linear(12, 3)).double()
    with torch.no_grad():
        for theirs, ours in zip(oracle.parameters(), start.parameters()):
            theirs.copy_(torch.from_numpy(ours.detach().numpy()))
    optimizer = torch.optim.SGD(oracle.parameters(), lr=0.1, momentum=0.9)
    for x, y in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(oracle(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        optimizer.step()
    _assert_same(_params(model.module), [p.detach().numpy() for p in oracle.parameters()])


class _ConvNet(nn.Module):
    def __init__(self, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = norm(4)
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = nn.functional.relu(self.bn(self.conv1(x)))
        x = nn.functional.max_pool2d(nn.functional.relu(self.conv2(x)), 1)
        return self.head(x.flatten(1))


def _cnn(norm):
    dtorch.manual_seed(2)
    return _ConvNet(norm).double()


def test_cnn_with_sync_batchnorm_matches_one_process_with_batchnorm(world):
    rank, size = _rank_world()
    batches = _batches(3, size, (2, 6, 6), 3, seed=5)
    model = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(_cnn(nn.BatchNorm2d)))
    _train(model, batches, rank, momentum=0.5)
    reference = _cnn(nn.BatchNorm2d)
    _train(reference, batches, momentum=0.5)
    _assert_same(_params(model.module), _params(reference))
    _assert_same([b.numpy() for b in model.module.buffers()], [b.numpy() for b in reference.buffers()])


class _Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def _lstm():
    dtorch.manual_seed(4)
    return _Tagger().double()


def test_lstm_matches_one_process(world):
    rank, size = _rank_world()
    batches = _batches(3, size, (7, 3), 2, seed=9)
    model = DDP(_lstm())
    _train(model, batches, rank)
    reference = _lstm()
    _train(reference, batches)
    _assert_same(_params(model.module), _params(reference))


def test_no_sync_accumulation_equals_the_large_batch_step(world):
    rank, size = _rank_world()
    (x1, y1), (x2, y2) = _batches(2, size, (6,), 3, seed=3)
    model = DDP(_mlp())
    loss = nn.functional.cross_entropy
    with model.no_sync():
        loss(model(dtorch.tensor(_mine(x1, rank))), dtorch.tensor(_mine(y1, rank))).backward()
    local = [p.grad.numpy().copy() for p in model.parameters()]
    loss(model(dtorch.tensor(_mine(x2, rank))), dtorch.tensor(_mine(y2, rank))).backward()

    reference = _mlp()
    loss(reference(dtorch.tensor(_mine(x1, rank))), dtorch.tensor(_mine(y1, rank))).backward()
    _assert_same(local, [p.grad.numpy() for p in reference.parameters()], atol=1e-12)  # no reduction inside
    reference.zero_grad()
    (loss(reference(dtorch.tensor(x1)), dtorch.tensor(y1)) +
     loss(reference(dtorch.tensor(x2)), dtorch.tensor(y2))).backward()
    _assert_same([p.grad.numpy() for p in model.parameters()], [p.grad.numpy() for p in reference.parameters()])


# ---- unused parameters ----------------------------------------------------------------------------------------------


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(4, 6)
        self.left = nn.Linear(6, 2)
        self.right = nn.Linear(6, 2)
        self.never = nn.Linear(6, 2)

    def forward(self, x, use_right=True):
        h = dtorch.tanh(self.trunk(x))
        out = self.left(h)
        if use_right:
            out = out + self.right(h)
        return out


def _branchy():
    dtorch.manual_seed(6)
    return _Branchy().double()


def test_unused_parameter_error_names_it_on_every_rank(world):
    rank, _ = _rank_world()
    model = DDP(_branchy())
    x = dtorch.randn(3, 4, dtype=dtorch.float64)
    with pytest.raises(RuntimeError, match="find_unused_parameters=True") as info:
        model(x).sum().backward()
    message = str(info.value)
    assert f"did not receive grad for rank {rank}: never.weight, never.bias" in message or \
        f"did not receive grad for rank {rank}: never.bias, never.weight" in message
    # the error leaves the model usable once the cause is fixed
    model.module.never.weight.requires_grad_(False)


def test_unused_parameter_on_one_rank_only_fails_on_every_rank(world):
    rank, size = _rank_world()
    if size == 1:
        pytest.skip("needs two ranks")
    model = DDP(_branchy())  # the same model everywhere, but rank 0 skips a branch
    x = dtorch.randn(3, 4, dtype=dtorch.float64)
    with pytest.raises(RuntimeError, match=r"did not receive grad for rank 0: .*right\.(weight|bias)"):
        model(x, use_right=rank != 0).sum().backward()


def test_find_unused_parameters_trains_a_branch_some_ranks_skip(world):
    rank, size = _rank_world()
    batches = _batches(3, size, (4,), 2, seed=8)

    def use_right(r):
        return r % 2 == 1  # rank 0 (the only rank of a world of one) skips it

    model = DDP(_branchy(), find_unused_parameters=True)
    optimizer = dtorch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in batches:
        optimizer.zero_grad()
        out = model(dtorch.tensor(_mine(x, rank)), use_right=use_right(rank))
        nn.functional.cross_entropy(out, dtorch.tensor(_mine(y, rank))).backward()
        optimizer.step()
    assert model.module.never.weight.grad is None  # unused everywhere: untouched, as in PyTorch
    assert (model.module.right.weight.grad is None) == (size == 1)

    reference = _branchy()
    optimizer = dtorch.optim.SGD(reference.parameters(), lr=0.1)
    for x, y in batches:
        optimizer.zero_grad()
        total = sum(nn.functional.cross_entropy(reference(dtorch.tensor(_mine(x, r)), use_right=use_right(r)),
                                                dtorch.tensor(_mine(y, r))) for r in range(size))
        (total / size).backward()
        optimizer.step()
    _assert_same(_params(model.module), _params(reference))


def test_static_graph_with_an_unused_parameter(world):
    rank, size = _rank_world()
    batches = _batches(3, size, (4,), 2, seed=12)
    model = DDP(_branchy(), static_graph=True)
    _train(model, batches, rank, momentum=0.0)
    assert model.module.never.weight.grad is None
    reference = _branchy()
    _train(reference, batches, momentum=0.0)
    _assert_same(_params(model.module), _params(reference))


def test_gradient_as_bucket_view(world):
    rank, size = _rank_world()
    batches = _batches(3, size, (6,), 3, seed=13)
    model = DDP(_mlp(), gradient_as_bucket_view=True)
    _train(model, batches, rank)
    buckets = [b.flat for b in model.reducer.buckets]
    for p in model.parameters():
        assert any(np.shares_memory(p.grad.numpy(), flat) for flat in buckets)
    reference = _mlp()
    _train(reference, batches)
    _assert_same(_params(model.module), _params(reference))


# ---- join ----------------------------------------------------------------------------------------------------------


def _join_and_reference(steps, seed, divide_by_initial_world_size=True):
    """Rank r trains ``steps[r]`` SGD steps of the MLP under DDP's join; one process trains the same MLP on every
    iteration's sum of the active ranks' losses, divided by the world size (or, when not
    ``divide_by_initial_world_size``, by the number of active ranks). Returns both models."""
    rank, size = _rank_world()
    batches = _batches(max(steps), size, (6,), 3, seed=seed)
    model = DDP(_mlp())
    optimizer = dtorch.optim.SGD(model.parameters(), lr=0.1)
    with model.join(divide_by_initial_world_size=divide_by_initial_world_size):
        for x, y in batches[:steps[rank]]:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(dtorch.tensor(_mine(x, rank))), dtorch.tensor(_mine(y, rank))).backward()
            optimizer.step()
    reference = _mlp()
    optimizer = dtorch.optim.SGD(reference.parameters(), lr=0.1)
    for step, (x, y) in enumerate(batches):
        optimizer.zero_grad()
        active = [r for r in range(size) if step < steps[r]]
        total = sum(nn.functional.cross_entropy(reference(dtorch.tensor(_mine(x, r))), dtorch.tensor(_mine(y, r)))
                    for r in active)
        (total / (size if divide_by_initial_world_size else len(active))).backward()
        optimizer.step()
    return model, reference


def test_join_finishes_with_a_different_number_of_batches_per_rank(world):
    size = _rank_world()[1]
    model, reference = _join_and_reference([2 + r for r in range(size)], seed=21)
    # every rank ends with the parameters of the rank that ran longest ...
    _all_equal_across_ranks(_params(model.module))
    # ... which saw, in each iteration, the sum over the active ranks divided by the whole world
    _assert_same(_params(model.module), _params(reference))


def test_join_can_throw_on_early_termination(world):
    rank, size = _rank_world()
    if size == 1:
        pytest.skip("needs two ranks")
    model = DDP(_mlp())
    x = dtorch.randn(2, 6, dtype=dtorch.float64)
    with pytest.raises(RuntimeError, match="exhausted inputs"):
        with model.join(throw_on_early_termination=True):
            for _ in range(1 + (rank != 0)):
                model(x).sum().backward()


# ---- buckets and overlap -------------------------------------------------------------------------------------------


class _Wide(nn.Module):
    """Four layers of about 1.2 MB each (float32): with bucket_cap_mb=1 every layer is a bucket of its own."""

    def __init__(self, registration=("l0", "l1", "l2", "l3"), width=560):
        super().__init__()
        for name in registration:
            setattr(self, name, nn.Linear(width, width))
        self.marks = []

    def forward(self, x):
        first = self.l0(x)
        if first.requires_grad:
            first.register_hook(lambda g: self.marks.append("backward reached the first layer"))
        return self.l3(dtorch.tanh(self.l2(dtorch.tanh(self.l1(dtorch.tanh(first))))))


def _wide(**kwargs):
    dtorch.manual_seed(7)
    return _Wide(**kwargs)


@contextlib.contextmanager
def _recorded_all_reduces(marks):
    """Patch ``dist.all_reduce`` (the public entry the reducer calls) to log each call's size."""
    real = dist.all_reduce

    def spy(tensor, *args, **kwargs):
        marks.append(("all_reduce", tensor.numel()))
        return real(tensor, *args, **kwargs)

    dist.all_reduce = spy
    try:
        yield
    finally:
        dist.all_reduce = real


def test_one_all_reduce_per_bucket_in_reverse_parameter_order(world):
    model = DDP(_wide(), bucket_cap_mb=1)
    layout = model.reducer.layout()
    assert len(layout) == 4
    assert layout[0] == [7, 6]  # l3.bias, l3.weight: the last layer's gradients are ready first
    assert layout[-1] == [1, 0]
    calls = []
    with _recorded_all_reduces(calls):
        model(dtorch.randn(2, 560)).sum().backward()
    width = 560 * 560 + 560
    assert calls == [("all_reduce", width)] * 3 + [("all_reduce", width + 1)]  # + the missing-gradient count


class _Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3).double()
        self.b = nn.Linear(3, 3)

    def forward(self, x):
        return self.b(self.a(x.double()).float())


def test_buckets_split_by_dtype(world):
    rank, size = _rank_world()
    x = dtorch.tensor(_batches(1, size, (3,), 3, seed=4)[0][0])
    dtorch.manual_seed(0)
    ddp = DDP(_Mixed())
    assert sorted(map(sorted, ddp.reducer.layout())) == [[0, 1], [2, 3]]
    assert {b.flat.dtype for b in ddp.reducer.buckets} == {np.dtype(np.float32), np.dtype(np.float64)}
    ddp(_mine(x, rank)).sum().backward()
    dtorch.manual_seed(0)
    reference = _Mixed()
    (reference(x).sum() / size).backward()
    _assert_same([p.grad.numpy() for p in ddp.parameters()], [p.grad.numpy() for p in reference.parameters()],
                 atol=1e-5)


def test_the_first_bucket_is_sent_before_backward_reaches_the_first_layer(world):
    model = DDP(_wide(), bucket_cap_mb=1)
    marks = model.module.marks
    with _recorded_all_reduces(marks):
        model(dtorch.randn(2, 560)).sum().backward()
    first_layer = marks.index("backward reached the first layer")
    sent = [i for i, mark in enumerate(marks) if mark != "backward reached the first layer"]
    assert len(sent) == 4
    assert sent[0] < first_layer  # overlap: the last layer's bucket was on its way while backward still ran
    assert sent[-1] > first_layer  # the first layer's bucket can only go after its gradients exist


def test_buckets_are_rebuilt_once_from_the_observed_order(world):
    # registered l3 first, so the reverse registration order guesses wrong; backward reveals the real order
    model = DDP(_wide(registration=("l3", "l2", "l1", "l0")), bucket_cap_mb=1)
    layouts = []
    for _ in range(4):
        layouts.append(model.reducer.layout())
        model(dtorch.randn(2, 560)).sum().backward()
    layouts.append(model.reducer.layout())
    changes = [i for i in range(1, len(layouts)) if layouts[i] != layouts[i - 1]]
    assert changes == [2]  # rebuilt in the second iteration's forward, never again
    assert model.reducer.layout_changes == 1
    assert 0 in layouts[-1][0]  # l3 (registered first) is the last layer of the forward: its weight goes first
    _all_equal_across_ranks([np.concatenate([np.asarray(b) for b in layouts[-1]])])


# ---- construction --------------------------------------------------------------------------------------------------


def test_a_shape_mismatch_across_ranks_fails_at_construction_on_every_rank(world):
    rank, size = _rank_world()
    if size == 1:
        pytest.skip("needs two ranks")
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5 if rank == size - 1 else 2))
    others = re.escape(str(list(range(size - 1))))
    with pytest.raises(RuntimeError, match=rf"ranks {others} have '1.weight' of shape \[2, 3\].*ranks \[{size - 1}\] "
                                           rf"have '1.weight' of shape \[5, 3\]"):
        DDP(model)


def test_construction_broadcasts_rank_zero_parameters_and_buffers(world):
    rank, _ = _rank_world()
    dtorch.manual_seed(100 + rank)  # different weights on every rank
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model[1].running_mean.fill_(float(rank))
    ddp = DDP(model)
    _all_equal_across_ranks(_params(ddp.module) + [b.numpy() for b in ddp.module.buffers()])
    assert float(model[1].running_mean[0]) == 0.0


def test_buffers_are_broadcast_before_each_forward(world):
    rank, _ = _rank_world()
    model = DDP(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))
    model.module[1].running_var.fill_(float(rank + 2))
    dtorch.manual_seed(0)
    model(dtorch.randn(5, 3)).sum().backward()
    # rank 0's buffer went out first, then the same batch updated it the same way everywhere
    _all_equal_across_ranks([model.module[1].running_var.numpy()])


def test_bad_arguments():
    with pytest.raises(TypeError, match="nn.Module"):
        DDP(lambda x: x)


def test_a_module_without_trainable_parameters_is_refused(world):
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="doesn't have any parameter that requires a gradient"):
        DDP(model)
    with pytest.raises(ValueError, match="device_ids"):
        DDP(nn.Linear(2, 2), device_ids=[0])


# ---- comm hooks ----------------------------------------------------------------------------------------------------


def test_a_custom_comm_hook_is_honoured(world):
    rank, size = _rank_world()
    calls = []

    def sum_without_averaging(state, bucket):
        calls.append((state, bucket.index(), len(bucket.parameters())))
        work = dist.all_reduce(bucket.buffer(), async_op=True)
        return work.get_future().then(lambda fut: fut.value()[0])

    x = dtorch.tensor(_batches(1, size, (6,), 3)[0][0])
    model = DDP(_mlp())
    model.register_comm_hook("my state", sum_without_averaging)
    model(x[PER_RANK * rank:PER_RANK * (rank + 1)]).pow(2).sum().backward()
    assert calls and all(state == "my state" for state, _, _ in calls)
    reference = _mlp()
    reference(x).pow(2).sum().backward()  # the sum of the ranks' losses: no averaging, as the hook asked
    _assert_same([p.grad.numpy() for p in model.parameters()], [p.grad.numpy() for p in reference.parameters()])
    with pytest.raises(RuntimeError, match="only be called once"):
        model.register_comm_hook(None, sum_without_averaging)


# ---- state dicts, checkpoints, DataParallel -------------------------------------------------------------------------


def test_state_dict_has_the_module_prefix_and_loads_into_the_bare_model(world):
    model = DDP(_mlp())
    state = model.state_dict()
    assert list(state)[:2] == ["module.0.weight", "module.0.bias"]
    consume_prefix_in_state_dict_if_present(state, "module.")
    bare = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)).double()
    bare.load_state_dict(state)
    _assert_same(_params(bare), _params(model.module), atol=0)


def test_a_checkpoint_saved_from_ddp_loads_into_a_plain_model(world):
    rank, size = _rank_world()
    model = DDP(_mlp())
    _train(model, _batches(2, size, (6,), 3, seed=30), rank)
    folder = [tempfile.mkdtemp() if rank == 0 else None]
    dist.broadcast_object_list(folder)
    path = os.path.join(folder[0], "ddp.pt")
    if rank == 0:
        dtorch.save(model.state_dict(), path)
    dist.barrier()
    state = dtorch.load(path)
    consume_prefix_in_state_dict_if_present(state, "module.")
    plain = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)).double()
    plain.load_state_dict(state)
    _assert_same(_params(plain), _params(model.module), atol=0)
    dist.barrier()
    if rank == 0:
        os.remove(path)
        os.rmdir(folder[0])


def test_data_parallel_runs_the_module_as_it_is():
    dtorch.manual_seed(0)
    module = nn.Linear(3, 2)
    x = dtorch.randn(4, 3)
    np.testing.assert_array_equal(DataParallel(module)(x).detach().numpy(), module(x).detach().numpy())
    np.testing.assert_array_equal(data_parallel(module, x).detach().numpy(), module(x).detach().numpy())
    assert list(DataParallel(module).state_dict()) == ["module.weight", "module.bias"]
    assert dtorch.nn.parallel.DistributedDataParallel is DDP


def test_join_can_average_over_the_active_ranks_only(world):
    size = _rank_world()[1]
    model, reference = _join_and_reference([1 + r for r in range(size)], seed=22, divide_by_initial_world_size=False)
    _assert_same(_params(model.module), _params(reference))


def test_a_backward_that_stopped_midway_is_reported_at_the_next_forward(world):
    model = DDP(_wide(), bucket_cap_mb=1)
    x = dtorch.randn(2, 560)

    def fail(grad):
        raise ValueError("stop here")

    out = model(x)
    handle = model.module.l1.weight.register_hook(fail)  # l1's gradient arrives after l3's bucket has gone out
    with pytest.raises(ValueError, match="stop here"):
        out.sum().backward()
    handle.remove()
    with pytest.raises(RuntimeError, match="Expected to have finished reduction in the prior iteration"):
        model(x)
    model(x).sum().backward()  # the error reset the reducer: training can go on
    _all_equal_across_ranks([p.grad.numpy() for p in model.parameters()])


@pytest.mark.gpu
def test_ddp_on_cuda_arrays_matches_one_process(world):
    # the buckets live on the GPU; the MPI transport stages them through host memory
    rank, size = _rank_world()
    batches = _batches(2, size, (6,), 3, seed=40)
    model = DDP(_mlp().cuda())
    assert all(b.flat.__class__.__module__.startswith("cupy") for b in model.reducer.buckets)
    optimizer = dtorch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in batches:
        optimizer.zero_grad()
        out = model(dtorch.tensor(_mine(x, rank), device="cuda"))
        nn.functional.cross_entropy(out, dtorch.tensor(_mine(y, rank), device="cuda")).backward()
        optimizer.step()
    reference = _mlp()
    _train(reference, batches, momentum=0.0)
    _assert_same([p.detach().cpu().numpy() for p in model.module.parameters()], _params(reference))


def test_tail_buckets_are_reduced_in_the_callback_with_the_same_results(world, monkeypatch):
    # a generous tail window: on an oversubscribed box (-n 4 on two cores) a rank descheduled between its bucket's
    # readiness and the end of backward would otherwise launch the bucket early and fail the first assertion
    monkeypatch.setattr(_reducer, "TAIL_SECONDS", 60.0)
    rank, size = _rank_world()
    batches = _batches(4, size, (6,), 3, seed=50)
    model = DDP(_mlp())
    calls = []
    with _recorded_all_reduces(calls):
        _train(model, batches, rank)
    reducer = model.reducer
    assert reducer.defer_from < len(reducer.buckets)  # the small MLP's one bucket is ready when backward ends
    assert len(calls) == 4 * len(reducer.buckets)  # still one all_reduce per bucket and iteration
    reference = _mlp()
    _train(reference, batches)
    _assert_same(_params(model.module), _params(reference))


def test_broadcast_buffers_false_keeps_each_rank_buffers(world):
    rank, size = _rank_world()
    model = DDP(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), broadcast_buffers=False)
    assert model.broadcast_buffers is False and model.forward_sync_buffers is False
    model.module[1].running_var.fill_(float(rank + 2))
    model.module[1].eval()  # no running-stat update: the buffer shows whether anything was broadcast
    model(dtorch.randn(5, 3)).sum().backward()
    assert model.module[1].running_var.numpy().tolist() == [float(rank + 2)] * 4


def test_gradient_as_bucket_view_with_no_sync_accumulates_like_the_large_batch(world):
    rank, size = _rank_world()
    (x1, y1), (x2, y2) = _batches(2, size, (6,), 3, seed=31)
    model = DDP(_mlp(), gradient_as_bucket_view=True)
    loss = nn.functional.cross_entropy
    for _ in range(2):  # the second round runs on the rebuilt buckets, with .grad views left from the first
        model.zero_grad()
        with model.no_sync():
            loss(model(dtorch.tensor(_mine(x1, rank))), dtorch.tensor(_mine(y1, rank))).backward()
        loss(model(dtorch.tensor(_mine(x2, rank))), dtorch.tensor(_mine(y2, rank))).backward()
    reference = _mlp()
    (loss(reference(dtorch.tensor(x1)), dtorch.tensor(y1)) +
     loss(reference(dtorch.tensor(x2)), dtorch.tensor(y2))).backward()
    _assert_same([p.grad.numpy() for p in model.parameters()], [p.grad.numpy() for p in reference.parameters()])


def test_parameters_and_buffers_to_ignore(world):
    rank, _ = _rank_world()
    dtorch.manual_seed(rank)
    module = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    module._ddp_params_and_buffers_to_ignore = ["1.weight", "1.bias"]
    own = module[1].weight.detach().numpy().copy()
    model = DDP(module)
    np.testing.assert_array_equal(module[1].weight.detach().numpy(), own)  # not broadcast
    model(dtorch.ones(2, 3)).sum().backward()
    assert len(model.reducer.params) == 2
    _all_equal_across_ranks([module[0].weight.grad.numpy()])


def test_write_back_takes_the_fused_unpack_when_the_kernel_is_selected(monkeypatch):
    """On CuPy float32 buckets the averages go back through one kernels/bucket.cu launch per bucket; here the
    kernel is stood in for by its reference, and training must match the plain write-back exactly."""
    from dtorch import _kernels

    rank, world = _rank_world()
    batches = _batches(2, world, (6,), 3)

    def run():
        dtorch.manual_seed(0)
        model = DDP(nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double())
        _train(model, batches, rank)
        return _params(model.module)

    plain = run()
    calls = []

    def unpack(bucket, arrays, scale):
        calls.append((bucket.size, scale))
        _kernels.bucket_unpack_reference(bucket, arrays, scale)
        return "kernel"

    # the reducer asks about the bucket alone; the optimizer (two arrays and more) keeps its NumPy path
    monkeypatch.setattr(_kernels, "select_kernel", lambda *arrays: "kernel" if len(arrays) == 1 else "reference")
    monkeypatch.setattr(_kernels, "bucket_unpack", unpack)
    _assert_same(run(), plain, atol=0)
    assert calls and all(scale == 1.0 / world for _, scale in calls)
