"""default_collate / default_convert against torch.utils.data's on the same samples."""
import collections

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate as torch_collate
from torch.utils.data import default_convert as torch_convert

import dtorch
from dtorch.utils.data import default_collate, default_convert

Point = collections.namedtuple("Point", "x y")


def to_plain(obj):
    """Nested lists/dicts of (dtype name, shape, values) so both libraries' batches compare equal."""
    if isinstance(obj, (dtorch.Tensor, torch.Tensor)):
        array = obj.numpy()
        return ("T", str(array.dtype), tuple(array.shape), array.tolist())
    if isinstance(obj, np.ndarray):
        return ("N", str(obj.dtype), tuple(obj.shape), obj.tolist())
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return (type(obj).__name__,) + tuple(to_plain(v) for v in obj)
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [to_plain(v) for v in obj])
    return obj


BATCHES = {
    "ints": [1, 2, 3],
    "floats": [0.5, 1.5],
    "bools": [True, False],
    "strings": ["a", "bc"],
    "arrays": [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32)],
    "uint8": [np.zeros((1, 4, 4), np.uint8), np.full((1, 4, 4), 255, np.uint8)],
    "np_scalars": [np.float32(1.5), np.float32(2.5)],
    "np_int64": [np.int64(3), np.int64(-1)],
    "tuples": [(np.zeros(2), 1), (np.ones(2), 0)],
    "lists": [[1, 2.0], [3, 4.0]],
    "dicts": [{"x": np.zeros(3), "y": 1, "name": "a"}, {"x": np.ones(3), "y": 2, "name": "b"}],
    "namedtuples": [Point(np.zeros(2), 1), Point(np.ones(2), 2)],
    "nested": [{"p": (1, [np.int32(2), 3.0])}, {"p": (4, [np.int32(5), 6.0])}],
    "bytes": [b"a", b"bc"],
    "np_bools": [np.bool_(True), np.bool_(False)],
    "np_uint8": [np.uint8(3), np.uint8(250)],
    "zero_d_arrays": [np.array(1.5), np.array(2.5)],
    "int8_arrays": [np.array([-1, 2], np.int8), np.array([3, -4], np.int8)],
    "ordered_dicts": [collections.OrderedDict(b=1, a=np.zeros(1)), collections.OrderedDict(b=2, a=np.ones(1))],
    "namedtuple_of_strings_and_dicts": [Point("p", {"k": 1.0}), Point("q", {"k": 2.0})],
    "list_of_tuples": [[(1, "a"), (2.0, "b")], [(3, "c"), (4.0, "d")]],
}


@pytest.mark.parametrize("name", sorted(BATCHES))
def test_collate_matches_torch(name):
    batch = BATCHES[name]
    assert to_plain(default_collate(batch)) == to_plain(torch_collate(batch))


def test_collate_stacks_dtorch_tensors():
    batch = [dtorch.from_numpy(np.full((2,), float(i))) for i in range(3)]
    out = default_collate(batch)
    assert isinstance(out, dtorch.Tensor) and tuple(out.shape) == (3, 2)


def test_collate_keeps_mapping_type():
    batch = BATCHES["ordered_dicts"]
    assert type(default_collate(batch)) is type(torch_collate(batch)) is collections.OrderedDict
    assert list(default_collate(batch)) == ["b", "a"]


def _error(fn, batch):
    try:
        fn(batch)
    except Exception as error:  # noqa: BLE001 - the point is to compare the kind of error
        return type(error), str(error)
    return None


@pytest.mark.parametrize("batch", [
    [[1, 2], [3]],
    [np.zeros(2), np.zeros(3)],
    [np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((3, 2))],
    [1 + 2j, 3j],
    [None, None],
    [object(), object()],
    [np.array(["a"]), np.array(["b"])],
], ids=["ragged_lists", "ragged_arrays", "ragged_third", "complex", "none", "object", "str_arrays"])
def test_collate_error_kinds_match_torch(batch):
    mine, ref = _error(default_collate, batch), _error(torch_collate, batch)
    assert mine is not None and ref is not None
    assert mine[0] is ref[0], (mine, ref)
    if mine[0] is RuntimeError:
        assert mine[1] == ref[1]


def test_collate_errors_like_torch():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([np.array(["a"]), np.array(["b"])])


@pytest.mark.parametrize("sample", [np.arange(3), (np.zeros(2), 1, "s"), {"a": np.ones(1), "b": [np.zeros(1)]}, 5,
                                    Point(np.zeros(1), 2)])
def test_convert_matches_torch(sample):
    assert to_plain(default_convert(sample)) == to_plain(torch_convert(sample))
