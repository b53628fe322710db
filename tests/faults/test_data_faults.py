"""Faults injected into data loading and tensor creation (issue 11): failing worker set-up, batches of mixed
sample types, impossible allocations and seeds. Each must give PyTorch's error type and a message that names the
problem, once, never an unrelated error later."""

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate as torch_collate

import dtorch
from dtorch.utils.data import DataLoader, Dataset, IterableDataset, default_collate


class Squares(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        return np.array([index * index], dtype=np.int64)


class Stream(IterableDataset):
    def __iter__(self):
        return iter(range(4))


def fail_in_worker_zero(worker_id):
    if worker_id == 0:
        raise ValueError("bad init in worker 0")


def fail_everywhere(worker_id):
    raise KeyError("missing setting")


def drain(loader, limit=40):
    """Every outcome of one pass: ("batch", values) or ("error", exception), until StopIteration."""
    outcomes = []
    iterator = iter(loader)
    for _ in range(limit):
        try:
            outcomes.append(("batch", next(iterator).numpy().ravel().tolist()))
        except StopIteration:
            return outcomes
        except Exception as error:  # noqa: BLE001 - every error is recorded and checked
            outcomes.append(("error", error))
    raise AssertionError(f"the loader did not finish in {limit} calls: {outcomes[-3:]}")


def test_failing_worker_init_fn_is_named_once_then_on_every_later_batch():
    loader = DataLoader(Squares(), batch_size=1, num_workers=2, worker_init_fn=fail_in_worker_zero)
    outcomes = drain(loader)
    errors = [value for kind, value in outcomes if kind == "error"]
    batches = sorted(value[0] for kind, value in outcomes if kind == "batch")
    assert batches == [1, 9, 25, 49], "the healthy worker's batches all arrive"
    assert len(errors) == 4, "the broken worker answers each of its 4 batches with an error"
    first, later = errors[0], errors[1:]
    assert type(first) is ValueError and "Caught ValueError in DataLoader worker process 0" in str(first)
    assert "bad init in worker 0" in str(first) and "fail_in_worker_zero" in str(first)  # its traceback
    for error in later:
        assert type(error) is RuntimeError, repr(error)
        assert "DataLoader worker process 0 could not start: its worker_init_fn raised ValueError: bad init in " \
               "worker 0" in str(error)
    assert not any(isinstance(error, AttributeError) for error in errors)


def test_failing_worker_init_fn_with_an_iterable_dataset_and_persistent_workers():
    loader = DataLoader(Stream(), batch_size=2, num_workers=1, worker_init_fn=fail_everywhere,
                        persistent_workers=True)
    errors = []
    for _epoch in range(2):
        iterator = iter(loader)
        for _ in range(3):
            with pytest.raises((KeyError, RuntimeError)) as caught:
                next(iterator)
            errors.append(caught.value)
    assert type(errors[0]) is KeyError and "missing setting" in str(errors[0])
    assert all(type(e) is RuntimeError and "worker_init_fn raised KeyError" in str(e) for e in errors[1:])


MIXED = {
    "tensor_then_int": lambda lib: [lib.zeros(2), 1],
    "tensor_then_array": lambda lib: [lib.zeros(2), np.zeros(2)],
    "int_then_str": lambda lib: [1, "a"],
    "float_then_str": lambda lib: [1.5, "x"],
    "dict_then_list": lambda lib: [{"a": 1}, [1]],
    "list_then_dict": lambda lib: [[1], {"a": 1}],
    "tuple_then_int": lambda lib: [(1, 2), 3],
    "int_then_tuple": lambda lib: [3, (1, 2)],
    "int_then_array": lambda lib: [1, np.zeros(2)],
    "nested_int_then_str": lambda lib: [{"k": 1}, {"k": "a"}],
}


@pytest.mark.filterwarnings("ignore:Creating a tensor from a list of numpy")
@pytest.mark.parametrize("name", sorted(MIXED))
def test_samples_of_inconsistent_types_give_pytorchs_type_error(name):
    with pytest.raises(TypeError) as theirs:
        torch_collate(MIXED[name](torch))
    with pytest.raises(TypeError) as ours:
        default_collate(MIXED[name](dtorch))
    assert type(ours.value) is type(theirs.value)
    if name.startswith("tensor_then"):
        assert str(ours.value) == str(theirs.value)
    else:
        assert "element 1 of the batch" in str(ours.value)


@pytest.mark.parametrize("batch,dtype", [([1, 2.5], "float32"), ([True, 2], "int64"), ([2, np.float32(1)], "float32")])
def test_mixed_numbers_promote_as_pytorch(batch, dtype):
    """Numbers of different kinds are promoted as torch.tensor does (an int batch never truncates a float)."""
    theirs, ours = torch_collate(batch), default_collate(batch)
    assert str(theirs.dtype).split(".")[1] == dtype and str(ours.dtype).split(".")[1] == dtype
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_none_in_a_batch_is_pytorchs_runtime_error():
    with pytest.raises(RuntimeError, match="Could not infer dtype of NoneType"):
        torch_collate([1, None])
    with pytest.raises(RuntimeError, match="Could not infer dtype of NoneType"):
        default_collate([1, None])


@pytest.mark.parametrize("make", [lambda lib: lib.empty(10 ** 12), lambda lib: lib.zeros(10 ** 6, 10 ** 6),
                                  lambda lib: lib.ones(10 ** 12, dtype=lib.float64)])
def test_impossible_allocation_is_a_runtime_error(make):
    with pytest.raises(RuntimeError) as theirs:
        make(torch)
    with pytest.raises(RuntimeError, match="can't allocate memory: you tried to allocate \\d+ bytes") as ours:
        make(dtorch)
    number = [word for word in str(theirs.value).split() if word.isdigit()]
    assert number and number[0] in str(ours.value), "the same byte count as PyTorch reports"
    assert dtorch.zeros(3).shape == (3,)


def test_size_overflow_is_pytorchs_message():
    with pytest.raises(RuntimeError) as theirs:
        torch.empty(2 ** 62)
    with pytest.raises(RuntimeError) as ours:
        dtorch.empty(2 ** 62)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("seed", [2 ** 70, 2 ** 64, -(2 ** 63) - 1])
def test_seed_out_of_64_bits_raises_as_pytorch(seed):
    with pytest.raises(ValueError) as theirs:
        torch.manual_seed(seed)
    with pytest.raises(ValueError) as ours:
        dtorch.manual_seed(seed)
    assert str(ours.value).startswith(str(theirs.value))  # "Overflow when unpacking long long", then the seed
    with pytest.raises(ValueError, match="Overflow when unpacking long long"):
        dtorch.Generator().manual_seed(seed)
    torch.manual_seed(0)
    dtorch.manual_seed(0)


@pytest.mark.parametrize("seed", [2 ** 64 - 1, -(2 ** 63), -1, 0])
def test_seeds_pytorch_accepts_are_accepted(seed):
    torch.manual_seed(seed)
    dtorch.manual_seed(seed)
    a = dtorch.rand(3)
    dtorch.manual_seed(seed)
    assert dtorch.equal(a, dtorch.rand(3))
    dtorch.manual_seed(0)
