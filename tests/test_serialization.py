"""dtorch.save / dtorch.load: PyTorch's zip format both ways, a restricted unpickler, atomic saves under SIGKILL."""

import argparse
import collections
import io
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest
import torch

import dtorch
import dtorch.nn
from dtorch import serialization
from dtorch.tensor import Tensor

save, load = serialization.save, serialization.load
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def T(array, requires_grad=False):
    tensor = Tensor._from_array(np.asarray(array), None)
    tensor.requires_grad = requires_grad
    return tensor


def as_numpy(value):
    return value._array if isinstance(value, Tensor) else value.detach().numpy()


def assert_same(ours, theirs):
    """Structural equality between a dtorch object and a torch one (tensors by dtype, shape and values)."""
    if isinstance(ours, Tensor) or isinstance(theirs, torch.Tensor):
        a, b = as_numpy(ours), as_numpy(theirs)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
        assert ours.requires_grad == theirs.requires_grad
    elif isinstance(ours, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs)
        for key in ours:
            assert_same(ours[key], theirs[key])
    elif isinstance(ours, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    else:
        assert ours == theirs and type(ours) is type(theirs)


def sample(lib):
    """The same nested object in either library."""
    rng = np.random.default_rng(0)
    arrays = {
        "w": rng.standard_normal((3, 4)).astype(np.float32),
        "d": rng.standard_normal(5),
        "h": rng.standard_normal(3).astype(np.float16),
        "i": np.arange(6, dtype=np.int64).reshape(2, 3),
        "i32": np.array([1, -2], dtype=np.int32),
        "i16": np.array([3], dtype=np.int16),
        "i8": np.array([-4], dtype=np.int8),
        "u8": np.array([250], dtype=np.uint8),
        "b": np.array([True, False]),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    make = (lambda a: T(a.copy())) if lib == "dtorch" else (lambda a: torch.from_numpy(a.copy()))
    obj = {name: make(a) for name, a in arrays.items()}
    obj["nested"] = [1, 2.5, "text", None, True, (1, (2, 3)), {"k": [make(arrays["d"])]}, -(2**40), 2**70, b"\x00\xff"]
    obj["ordered"] = collections.OrderedDict([("b", 1), ("a", make(arrays["i32"]))])
    obj["epoch"] = 7
    return obj


def test_dtorch_file_loads_in_torch(tmp_path):
    path = tmp_path / "ours.pt"
    save(sample("dtorch"), path)
    assert_same(sample("dtorch"), torch.load(path, weights_only=True))


def test_torch_file_loads_in_dtorch(tmp_path):
    path = tmp_path / "theirs.pt"
    torch.save(sample("torch"), path)
    assert_same(load(path), sample("torch"))


def test_round_trip_through_dtorch_and_requires_grad(tmp_path):
    obj = sample("dtorch")
    obj["grad"] = T(np.ones(2), requires_grad=True)
    buffer = io.BytesIO()
    save(obj, buffer)
    buffer.seek(0)
    back = load(buffer)
    assert_same(back, obj)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["grad"].requires_grad


def test_module_state_dict_from_torch(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    loaded = load(path)
    assert isinstance(loaded, collections.OrderedDict)
    assert list(loaded) == list(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded[key]._array, value.numpy())
    assert loaded["1.num_batches_tracked"]._array.dtype == np.int64


def test_parameters_both_ways(tmp_path):
    path = tmp_path / "param.pt"
    torch.save({"p": torch.nn.Parameter(torch.ones(2))}, path)
    loaded = load(path)["p"]
    assert loaded.requires_grad and loaded._array.dtype == np.float32
    parameter = dtorch.nn.Parameter
    assert isinstance(loaded, parameter)
    save({"p": parameter(T(np.ones(3)))}, path)
    back = torch.load(path, weights_only=True)["p"]
    assert isinstance(back, torch.nn.Parameter) and back.requires_grad


def test_views_share_one_storage_both_ways(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    obj = {"base": T(base), "row": T(base[1]), "col": T(base[:, 2]), "t": T(base.T), "step": T(base[::2, ::3]), "same": None}
    obj["same"] = obj["base"]
    path = tmp_path / "views.pt"
    save(obj, path)
    with zipfile.ZipFile(path) as archive:
        assert [n for n in archive.namelist() if "/data/" in n] == ["archive/data/0"]
    theirs = torch.load(path, weights_only=True)
    for key in ("row", "col", "t", "step"):
        np.testing.assert_array_equal(theirs[key].numpy(), obj[key]._array)
        assert theirs[key].untyped_storage().data_ptr() == theirs["base"].untyped_storage().data_ptr()
    assert theirs["same"] is theirs["base"]
    ours = load(path)
    assert ours["same"] is ours["base"]
    for key in ("row", "col", "t", "step"):
        np.testing.assert_array_equal(ours[key]._array, obj[key]._array)
        assert np.shares_memory(ours[key]._array, ours["base"]._array)
    ours["base"]._array[1, 0] = -1
    assert ours["row"]._array[0] == -1

    tbase = torch.arange(12.0).reshape(3, 4)
    torch.save({"a": tbase, "v": tbase[:, 1:3], "tt": tbase.t()}, path)
    ours = load(path)
    np.testing.assert_array_equal(ours["v"]._array, tbase[:, 1:3].numpy())
    np.testing.assert_array_equal(ours["tt"]._array, tbase.t().numpy())
    assert np.shares_memory(ours["v"]._array, ours["a"]._array)


def test_storages_are_64_byte_aligned(tmp_path):
    path = tmp_path / "aligned.pt"
    save({"a": T(np.ones(3, np.float32)), "b": T(np.ones(5))}, path)
    with open(path, "rb") as handle, zipfile.ZipFile(path) as archive:
        raw = handle.read()
        for info in archive.infolist():
            name_len, extra_len = np.frombuffer(raw[info.header_offset + 26 : info.header_offset + 30], "<u2")
            start = info.header_offset + 30 + int(name_len) + int(extra_len)
            if "/data/" in info.filename:
                assert start % 64 == 0
            assert raw[start : start + info.file_size] == archive.read(info.filename)


def test_unpicklable_objects_raise_before_touching_the_target(tmp_path):
    path = tmp_path / "keep.pt"
    save({"v": 1}, path)

    class Local:
        pass

    for bad in ({"x": Local()}, {"f": lambda x: x}, [1, open(os.devnull)]):
        with pytest.raises((pickle.PicklingError, TypeError)):
            save(bad, path)
        with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
            torch.save(bad, io.BytesIO())  # PyTorch refuses them too
    bad[1].close()
    assert load(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["keep.pt"], "no temporary file is left behind"


def test_numpy_scalars_become_python_scalars():
    buffer = io.BytesIO()
    save({"loss": np.float32(0.5), "n": np.int64(3)}, buffer)
    buffer.seek(0)
    assert load(buffer) == {"loss": 0.5, "n": 3}


def test_dtypes_and_devices_round_trip(tmp_path):
    path = tmp_path / "meta.pt"
    save({"dtype": dtorch._backend.float64, "device": dtorch._backend.device("cpu"), "s": {1, 2}, "c": 1 + 2j}, path)
    theirs = torch.load(path, weights_only=True)
    assert theirs == {"dtype": torch.float64, "device": torch.device("cpu"), "s": {1, 2}, "c": 1 + 2j}
    torch.save(theirs, path)
    ours = load(path)
    assert ours["dtype"] is dtorch._backend.float64 and ours["device"] == dtorch._backend.device("cpu")
    assert ours["s"] == {1, 2} and ours["c"] == 1 + 2j


def test_map_location(tmp_path):
    path = tmp_path / "m.pt"
    save({"a": T(np.ones(2))}, path)
    for location in ("cpu", dtorch._backend.device("cpu"), {"cpu": "cpu"}):
        assert load(path, map_location=location)["a"]._array.tolist() == [1.0, 1.0]
    seen = []

    def mapper(array, where):
        seen.append(where)
        return array * 2

    assert load(path, map_location=mapper)["a"]._array.tolist() == [2.0, 2.0]
    assert seen == ["cpu"]


@pytest.mark.skipif(dtorch._backend.cuda_is_available(), reason="checks the no-GPU error")
def test_cuda_tensor_without_gpu_is_a_clear_error(tmp_path):
    path = tmp_path / "cuda.pt"
    torch.save({"a": torch.ones(2)}, path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        entries = {n: archive.read(n) for n in names}
    pkl = [n for n in names if n.endswith("data.pkl")][0]
    entries[pkl] = entries[pkl].replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(RuntimeError, match="CuPy"):
        load(path)
    assert load(path, map_location="cpu")["a"]._array.tolist() == [1.0, 1.0]
    assert load(path, map_location={"cuda:0": "cpu"})["a"]._array.tolist() == [1.0, 1.0]


def _archive_with_pickle(path, payload):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")


class _RunsCode:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_runs_nothing(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    _archive_with_pickle(path, pickle.dumps({"x": _RunsCode(f"touch {marker}")}, protocol=protocol))
    with pytest.raises(pickle.UnpicklingError, match="(?i)unsupported global"):
        load(path)
    assert not marker.exists()
    # hand-written opcodes naming builtins.eval and subprocess too
    for module, name in (("builtins", "eval"), ("subprocess", "check_call"), ("torch", "load")):
        payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x04\x00\x00\x00argsq\x00\x85R."
        _archive_with_pickle(path, payload)
        with pytest.raises(pickle.UnpicklingError):
            load(path)


def test_tensor_record_outside_its_storage_is_rejected(tmp_path):
    path = tmp_path / "oob.pt"
    torch.save({"a": torch.ones(4)}, path)
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    pkl = [n for n in entries if n.endswith("data.pkl")][0]
    # the size tuple (4,) becomes (200,): reading it would run past the 4-element storage
    entries[pkl] = entries[pkl].replace(b"K\x04\x85", b"K\xc8\x85", 1)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(pickle.UnpicklingError, match="overruns its storage"):
        load(path)


def test_not_a_zip_file(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"a": 1}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(RuntimeError, match="zip"):
        load(path)


def test_save_to_path_leaves_no_temporary_and_sets_permissions(tmp_path):
    path = tmp_path / "ckpt.pt"
    save({"a": T(np.ones(2))}, str(path))
    save({"a": T(np.zeros(2))}, path)
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    assert load(path)["a"]._array.tolist() == [0.0, 0.0]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_optimizer_state_through_a_file_continues_in_torch(tmp_path):
    """dtorch Adam (flat path) for 5 steps -> dtorch.save -> torch.load -> torch Adam continues = torch all along."""
    rng = np.random.default_rng(0)
    init = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    grads = [[rng.standard_normal(a.shape) for a in init] for _ in range(10)]

    tparams = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    topt = torch.optim.Adam(tparams, lr=0.1, amsgrad=True, foreach=False)
    for step in range(10):
        for p, g in zip(tparams, grads[step]):
            p.grad = torch.from_numpy(g)
        topt.step()

    from dtorch import optim

    params = []
    for a in init:
        p = T(a.copy())
        p.requires_grad = True
        params.append(p)
    opt = optim.Adam(params, lr=0.1, amsgrad=True)
    for step in range(5):
        for p, g in zip(params, grads[step]):
            p.grad = T(g)
        opt.step()
    path = tmp_path / "opt.pt"
    save({"model": {f"p{i}": p for i, p in enumerate(params)}, "optim": opt.state_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    resumed = [torch.nn.Parameter(loaded["model"][f"p{i}"].detach().clone()) for i in range(2)]
    ropt = torch.optim.Adam(resumed, lr=0.1, amsgrad=True, foreach=False)
    ropt.load_state_dict(loaded["optim"])
    for step in range(5, 10):
        for p, g in zip(resumed, grads[step]):
            p.grad = torch.from_numpy(g)
        ropt.step()
    for a, b in zip(resumed, tparams):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=1e-12)

    # and the other way: torch's optimizer state into dtorch
    torch.save(topt.state_dict(), path)
    sd = load(path)
    assert isinstance(sd["state"][0]["step"], Tensor) and sd["state"][0]["step"]._array.dtype == np.float32
    opt.load_state_dict(sd)
    assert float(opt.state[params[0]]["step"]._array) == 10.0


Point = collections.namedtuple("Point", "x y")


def test_size_and_namedtuple(tmp_path):
    """A Size is torch.Size; a named tuple is written as torch.save writes it (its class by name), so it needs
    allowing in a weights-only load, in both libraries."""
    path = tmp_path / "size.pt"
    save({"shape": dtorch.Size([2, 3]), "point": Point(1, 2)}, path)
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL test_serialization.Point was not an allowed global"):
        torch.load(path, weights_only=True)
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL test_serialization.Point was not an allowed global"):
        load(path)
    with torch.serialization.safe_globals([Point]):
        theirs = torch.load(path, weights_only=True)
    assert theirs["shape"] == torch.Size([2, 3]) and type(theirs["shape"]) is torch.Size
    assert theirs["point"] == Point(1, 2) and type(theirs["point"]) is Point
    with serialization.safe_globals([Point]):
        ours = load(path)
    assert type(ours["point"]) is Point and ours["point"] == (1, 2) and type(ours["shape"]) is dtorch.Size
    torch.save({"shape": torch.Size([4])}, path)
    ours = load(path)["shape"]
    assert type(ours) is dtorch.Size and ours == (4,)


def test_save_through_a_symlink_replaces_its_target(tmp_path):
    target = tmp_path / "real.pt"
    link = tmp_path / "link.pt"
    save({"v": 1}, target)
    os.symlink(target, link)
    save({"v": 2}, link)
    assert os.path.islink(link) and load(target) == {"v": 2}


def test_load_from_a_non_seekable_stream(tmp_path):
    path = tmp_path / "pipe.pt"
    save({"a": T(np.arange(3.0))}, path)
    reader = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    try:
        assert load(reader.stdout)["a"]._array.tolist() == [0.0, 1.0, 2.0]
    finally:
        reader.stdout.close()
        reader.wait()


@pytest.mark.gpu
def test_cuda_tensors_round_trip(tmp_path):
    cp = dtorch._backend.cupy()
    path = tmp_path / "gpu.pt"
    save({"a": T(cp.arange(4, dtype=cp.float32))}, path)
    theirs = torch.load(path, weights_only=True, map_location="cpu")
    assert theirs["a"].tolist() == [0.0, 1.0, 2.0, 3.0]
    ours = load(path)
    assert dtorch._backend.is_cupy_array(ours["a"]._array)
    assert load(path, map_location="cpu")["a"]._array.tolist() == [0.0, 1.0, 2.0, 3.0]
    torch.save({"b": torch.ones(2)}, path)
    assert dtorch._backend.is_cupy_array(load(path, map_location="cuda:0")["b"]._array)


_LOAD_WITHOUT_TORCH = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch must not be imported by dtorch.load")

    sys.meta_path.insert(0, _NoTorch())
    import numpy as np
    import dtorch
    from dtorch import nn, optim

    ck = dtorch.load(sys.argv[1])
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    model.load_state_dict(ck["model"])
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.load_state_dict(ck["optimizer"])
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    scheduler.load_state_dict(ck["scheduler"])
    model.eval()
    with dtorch.no_grad():
        out = model(dtorch.from_numpy(np.asarray(ck["x"].numpy())))
    np.save(sys.argv[3], out.numpy())
    assert ck["epoch"] == 3 and ck["note"] == "torch wrote me"
    assert float(opt.state[model[0].weight]["momentum_buffer"].abs().sum()) > 0
    print("lr", scheduler.get_last_lr()[0], "torch" in sys.modules, flush=True)
    """
)


def test_torch_checkpoint_loads_in_a_process_without_torch(tmp_path):
    """A full training checkpoint written by torch.save is read by dtorch with torch made unimportable."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x = torch.randn(5, 3)
    for _ in range(3):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        scheduler.step()
    path, out = tmp_path / "torch_ckpt.pt", tmp_path / "out.npy"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": 3, "note": "torch wrote me", "x": x}, path)
    result = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_TORCH, str(path), REPO, str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lr", str(scheduler.get_last_lr()[0]), "False"]
    model.eval()
    np.testing.assert_allclose(np.load(out), model(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_storage_holds_only_the_range_the_saved_views_use(tmp_path):
    """Views of one array still share one storage, trimmed to the elements they use; a parameter the optimizer's
    flat path turned into a slice of one buffer is written alone."""
    path = tmp_path / "views.pt"
    base = T(np.arange(20, dtype=np.float32))
    a, b = T(base._array[2:4]), T(base._array[6:12].reshape(2, 3)[:, ::2])
    save({"a": a, "b": b, "empty": T(base._array[15:15])}, path)
    theirs = torch.load(path, weights_only=True)
    assert theirs["a"].tolist() == [2.0, 3.0] and theirs["b"].tolist() == [[6.0, 8.0], [9.0, 11.0]]
    assert theirs["empty"].shape == (0,)
    assert theirs["a"].untyped_storage().data_ptr() == theirs["b"].untyped_storage().data_ptr()
    assert theirs["a"].untyped_storage().nbytes() == 10 * 4  # elements 2..11
    ours = load(path)
    assert ours["b"]._array.tolist() == [[6.0, 8.0], [9.0, 11.0]]
    assert ours["a"]._array.tolist() == [2.0, 3.0] and ours["empty"].shape == (0,)

    model = dtorch.nn.Sequential(dtorch.nn.Linear(50, 40), dtorch.nn.Linear(40, 30))
    opt = dtorch.optim.Adam(model.parameters())
    model(dtorch.randn(2, 50)).sum().backward()
    opt.step()
    # the flat path's single buffer
    assert serialization._base_of(model[0].weight._array) is serialization._base_of(model[1].weight._array)
    save({"w": model[1].weight}, path)
    single = torch.load(path, weights_only=True)["w"]
    assert single.untyped_storage().nbytes() == 40 * 30 * 4
    np.testing.assert_array_equal(single.detach().numpy(), model[1].weight._array)
    save(model.state_dict(), path)
    whole = torch.load(path, weights_only=True)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(whole[key].numpy(), value._array)


# ---- everything torch.save saves (issue 16): NumPy arrays, whole modules, arbitrary objects, PyTorch's load rules


def _weights_only_reason(error):
    """The part of a weights-only refusal after 'WeightsUnpickler error:', with library names made equal."""
    text = str(error).split("WeightsUnpickler error: ", 1)[1].split("\n\nCheck the documentation")[0]
    return text.replace("dtorch.serialization", "torch.serialization")


def test_refusal_names_the_global_and_how_to_allow_it_as_pytorch_does(tmp_path):
    path = tmp_path / "args.pt"
    torch.save({"args": argparse.Namespace(lr=0.1), "w": torch.ones(2)}, path)
    with pytest.raises(pickle.UnpicklingError) as theirs:
        torch.load(path)
    with pytest.raises(pickle.UnpicklingError) as ours:
        load(path)
    assert _weights_only_reason(ours.value) == _weights_only_reason(theirs.value)
    assert "dtorch.serialization.add_safe_globals([argparse.Namespace])" in str(ours.value)
    assert "weights_only` set to `False`" in str(ours.value)
    # weights_only=None is PyTorch's default, True
    with pytest.raises(pickle.UnpicklingError):
        load(path, weights_only=None)


def test_namespace_in_a_checkpoint_both_ways(tmp_path):
    """argparse.Namespace beside a state dict (the MNIST and word-language-model examples save their args)."""
    model = dtorch.nn.Linear(3, 2)
    path = tmp_path / "ck.pt"
    save({"args": argparse.Namespace(lr=0.5, epochs=3), "model": model.state_dict()}, path)
    assert load(path, weights_only=False)["args"] == argparse.Namespace(lr=0.5, epochs=3)
    with torch.serialization.safe_globals([argparse.Namespace]):
        theirs = torch.load(path)
    assert theirs["args"] == argparse.Namespace(lr=0.5, epochs=3)
    np.testing.assert_array_equal(theirs["model"]["weight"].numpy(), model.weight._array)
    torch.save(theirs, path)
    serialization.add_safe_globals([argparse.Namespace])
    try:
        assert serialization.get_safe_globals() == [argparse.Namespace]
        back = load(path)
    finally:
        serialization.clear_safe_globals()
    assert serialization.get_safe_globals() == []
    assert back["args"].lr == 0.5 and isinstance(back["args"], argparse.Namespace)
    np.testing.assert_array_equal(back["model"]["weight"]._array, model.weight._array)


def test_safe_globals_context_and_named_pairs(tmp_path):
    path = tmp_path / "p.pt"
    save({"point": Point(3, 4)}, path)
    with serialization.safe_globals([Point]):
        assert serialization.get_safe_globals() == [Point]
        assert load(path)["point"] == Point(3, 4)
    assert serialization.get_safe_globals() == []
    with pytest.raises(pickle.UnpicklingError):
        load(path)
    # a pair allows an object under the name a file uses for it
    with serialization.safe_globals([(Point, "test_serialization.Point")]):
        assert load(path)["point"].y == 4
    with pytest.raises(ValueError, match="tuple of length 2"):
        serialization.add_safe_globals([(Point,)])
    with pytest.raises(TypeError, match="str of callable full path"):
        serialization.add_safe_globals([(Point, 3)])
    assert serialization.get_safe_globals() == []


def test_numpy_arrays_both_ways(tmp_path):
    arrays = {"f": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([1, -2], dtype=np.int64),
              "scalar": np.array(2.5)}
    path = tmp_path / "np.pt"
    save(arrays, path)
    theirs = torch.load(path, weights_only=False)
    ours = load(path, weights_only=False)
    for key, value in arrays.items():
        for got in (theirs[key], ours[key]):
            assert type(got) is np.ndarray and got.dtype == value.dtype
            np.testing.assert_array_equal(got, value)
    allow = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.Float32DType,
             np.dtypes.Int64DType, np.dtypes.Float64DType]
    with pytest.raises(pickle.UnpicklingError) as refused:
        load(path)
    with pytest.raises(pickle.UnpicklingError) as torch_refused:
        torch.load(path)
    assert _weights_only_reason(refused.value) == _weights_only_reason(torch_refused.value)
    with serialization.safe_globals(allow):
        np.testing.assert_array_equal(load(path)["f"], arrays["f"])
    torch.save(arrays, path)
    back = load(path, weights_only=False)
    np.testing.assert_array_equal(back["f"], arrays["f"])
    save(arrays["f"], path)  # a bare array, as torch.save(np_array, f)
    np.testing.assert_array_equal(torch.load(path, weights_only=False), arrays["f"])


class TinyRNNModel(dtorch.nn.Module):
    """The shape of the word-language-model example's RNNModel, saved whole with torch.save(model, f)."""

    def __init__(self, ntoken=11, ninp=6, nhid=8):
        super().__init__()
        self.encoder = dtorch.nn.Embedding(ntoken, ninp)
        self.rnn = dtorch.nn.LSTM(ninp, nhid)
        self.decoder = dtorch.nn.Linear(nhid, ntoken)
        self.nhid = nhid

    def forward(self, tokens):
        output, _ = self.rnn(self.encoder(tokens))
        return self.decoder(output)


def test_whole_dtorch_model_saves_and_loads_and_keeps_training(tmp_path):
    dtorch.manual_seed(0)
    model = TinyRNNModel()
    opt = dtorch.optim.SGD(model.parameters(), lr=0.1)
    tokens = dtorch.randint(0, 11, (5, 2))
    path = tmp_path / "model.pt"
    save(model, path)
    with pytest.raises(pickle.UnpicklingError, match="TinyRNNModel was not an allowed global"):
        load(path)
    back = load(path, weights_only=False)
    assert type(back) is TinyRNNModel and back.nhid == 8
    assert all(isinstance(p, dtorch.nn.Parameter) for p in back.parameters())
    np.testing.assert_allclose(back(tokens).detach().numpy(), model(tokens).detach().numpy(), rtol=1e-6)
    # both go on training identically
    opt2 = dtorch.optim.SGD(back.parameters(), lr=0.1)
    for m, o in ((model, opt), (back, opt2)):
        o.zero_grad()
        m(tokens).pow(2).mean().backward()
        o.step()
    np.testing.assert_allclose(back.decoder.weight.detach().numpy(), model.decoder.weight.detach().numpy(), rtol=1e-6)
    # the same file read as a state dict by torch: the tensors are torch's, the classes dtorch's (not loadable there)
    sd_path = tmp_path / "sd.pt"
    save(model.state_dict(), sd_path)
    theirs = torch.load(sd_path)
    assert list(theirs) == list(model.state_dict())


def test_whole_torch_model_loads_in_dtorch_and_runs(tmp_path):
    torch.manual_seed(0)
    tmodel = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(12, 2))
    tmodel(torch.randn(4, 1, 4, 4))  # running stats move
    tmodel.eval()
    path = tmp_path / "torch_model.pt"
    torch.save(tmodel, path)
    with pytest.raises(pickle.UnpicklingError) as refused:
        load(path)
    assert "GLOBAL torch.nn.modules.container.Sequential was not an allowed global" in str(refused.value)
    assert "add_safe_globals([dtorch.nn.Sequential])" in str(refused.value)
    model = load(path, weights_only=False)
    assert "torch" not in type(model).__module__.replace("dtorch", "")
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(model(dtorch.from_numpy(x)).detach().numpy(),
                               tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    allowed = [dtorch.nn.Sequential, dtorch.nn.Conv2d, dtorch.nn.BatchNorm2d, dtorch.nn.ReLU, dtorch.nn.Flatten,
               dtorch.nn.Linear]
    with serialization.safe_globals(allowed):
        again = load(path)
    assert type(again[0]) is dtorch.nn.Conv2d and again.training is False


def test_optimizer_state_dict_both_ways_through_files(tmp_path):
    """torch.save(optimizer.state_dict()) -> dtorch.load -> dtorch resumes like torch, and the other way."""
    rng = np.random.default_rng(1)
    init = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(6)]
    tp = torch.nn.Parameter(torch.from_numpy(init.copy()))
    topt = torch.optim.Adam([tp], lr=0.05, weight_decay=0.01)
    dp = dtorch.nn.Parameter(dtorch.from_numpy(init.copy()))
    dopt = dtorch.optim.Adam([dp], lr=0.05, weight_decay=0.01)
    for g in grads[:3]:
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
    path = tmp_path / "opt.pt"
    torch.save({"p": tp.detach(), "opt": topt.state_dict()}, path)
    ck = load(path)
    dp.data.copy_(ck["p"])
    dopt.load_state_dict(ck["opt"])
    for g in grads[3:]:
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        dp.grad = dtorch.from_numpy(g.copy())
        dopt.step()
    np.testing.assert_allclose(dp.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
    save(dopt.state_dict(), path)
    back = torch.load(path)
    assert back["param_groups"][0]["lr"] == 0.05 and float(back["state"][0]["step"]) == 6.0
    np.testing.assert_allclose(back["state"][0]["exp_avg"].numpy(), topt.state_dict()["state"][0]["exp_avg"].numpy(),
                               rtol=1e-5, atol=1e-7)


def test_shared_objects_cycles_bytearrays_and_huge_ints(tmp_path):
    shared = [1, 2]
    cycle = ([],)
    cycle[0].append(cycle)
    obj = {"a": shared, "b": shared, "cycle": cycle, "ba": bytearray(b"\x00\xffx"), "big": 2 ** 3000 + 7,
           "neg": -(2 ** 2100), "od": collections.OrderedDict(z=1)}
    path = tmp_path / "shared.pt"
    save(obj, path)
    for back in (load(path), torch.load(path, weights_only=False)):
        assert back["a"] is back["b"] and back["a"] == [1, 2]
        assert back["cycle"][0][0] is back["cycle"], "a tuple-list cycle loads as one tuple"
        assert back["ba"] == bytearray(b"\x00\xffx") and type(back["ba"]) is bytearray
        assert back["big"] == 2 ** 3000 + 7 and back["neg"] == -(2 ** 2100)
    # the same cycle written by Python's pickle (as torch.save writes it) loads as one tuple too
    _archive_with_pickle(path, pickle.dumps({"cycle": cycle}, protocol=2))
    back = load(path)
    assert back["cycle"][0][0] is back["cycle"]


def test_bad_targets_are_pytorchs_errors(tmp_path):
    with pytest.raises(RuntimeError) as theirs:
        torch.save(1, tmp_path / "missing" / "f.pt")
    with pytest.raises(RuntimeError) as ours:
        save(1, tmp_path / "missing" / "f.pt")
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(IsADirectoryError):
        save(1, tmp_path)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("make", [lambda: torch.nn.LSTM(3, 4, num_layers=2), lambda: torch.nn.GRU(3, 4),
                                  lambda: torch.nn.TransformerEncoderLayer(3, 1, 8, dropout=0.0)],
                         ids=["lstm", "gru", "transformer_layer"])
def test_whole_torch_recurrent_and_attention_modules_load_and_run(tmp_path, make):
    torch.manual_seed(0)
    tmodel = make().eval()
    path = tmp_path / "m.pt"
    torch.save(tmodel, path)
    model = load(path, weights_only=False)
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    theirs, ours = tmodel(torch.from_numpy(x)), model(dtorch.from_numpy(x))
    theirs, ours = (theirs[0], ours[0]) if isinstance(theirs, tuple) else (theirs, ours)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_unsafe_globals_in_checkpoint_as_pytorch_lists_them(tmp_path):
    path = tmp_path / "ck.pt"
    torch.save({"args": argparse.Namespace(), "p": Point(1, 2), "w": torch.ones(1), "od": collections.OrderedDict()},
               path)
    ours = sorted(serialization.get_unsafe_globals_in_checkpoint(path))
    assert ours == sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    assert ours == ["argparse.Namespace", "test_serialization.Point"]
    with serialization.safe_globals([Point]):
        assert serialization.get_unsafe_globals_in_checkpoint(path) == ["argparse.Namespace"]


def test_whole_model_and_optimizer_after_flat_steps(tmp_path):
    """Parameters that the optimizer's flat path made views of one buffer, saved inside whole objects (the span
    walk follows a module's attributes, never into modules or functions), come back equal and still shared."""
    model = dtorch.nn.Sequential(dtorch.nn.Linear(5, 4), dtorch.nn.Linear(4, 3))
    opt = dtorch.optim.Adam(model.parameters(), lr=0.1)
    model(dtorch.randn(2, 5)).sum().backward()
    opt.step()
    path = tmp_path / "all.pt"
    save({"model": model, "opt": opt}, path)
    back = load(path, weights_only=False)
    x = dtorch.randn(3, 5)
    np.testing.assert_allclose(back["model"](x).detach().numpy(), model(x).detach().numpy(), rtol=1e-6)
    assert back["opt"].param_groups[0]["params"][0] is back["model"][0].weight
    for m, o in ((back["model"], back["opt"]), (model, opt)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    np.testing.assert_allclose(back["model"][1].weight.detach().numpy(), model[1].weight.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_torch_files_of_every_pickle_protocol_load(tmp_path, protocol):
    obj = {"w": torch.arange(4.0), "s": {1, 2}, "fs": frozenset([3]), "b": b"xy", "ba": bytearray(b"z"),
           "od": collections.OrderedDict(a=torch.ones(1)), "t": (1, "a", None), "c": 1 + 2j, "big": 2 ** 100}
    path = tmp_path / "p.pt"
    torch.save(obj, path, pickle_protocol=protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about protocols other than 2
        assert_same(load(path), torch.load(path, weights_only=False))
    save({"w": T(np.ones(2))}, path, pickle_protocol=protocol)  # accepted; written as protocol 2
    assert torch.load(path)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="pickle_protocol"):
        save({}, path, pickle_protocol=1)


@pytest.mark.parametrize("make,what", [
    (lambda: torch.eye(3).to_sparse(), "a sparse tensor"),
    (lambda: torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8), "quint8"),
    (lambda: torch.ones(2, dtype=torch.complex64), "complex64"),
], ids=["sparse", "quantized", "complex"])
def test_tensors_dtorch_does_not_have_are_named(tmp_path, make, what):
    path = tmp_path / "t.pt"
    torch.save({"t": make()}, path)
    for weights_only in (True, False):
        with pytest.raises(pickle.UnpicklingError, match=what):
            load(path, weights_only=weights_only)
