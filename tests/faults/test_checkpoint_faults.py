"""Faults injected into checkpoints as an attacker or a crash would cause them (issue 11).

Each crafted file must be refused with a clear error (never run code, never change a global, never read outside
its storage), and a legitimate checkpoint loaded right after must come back intact. Saves killed at random points
must never damage the previous checkpoint, and the next save must remove what they left.
"""

import collections
import io
import json
import os
import pickle
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile

import numpy as np
import pytest
import torch

import dtorch
from dtorch import serialization

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEGIT = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)


@pytest.fixture
def legit_checkpoint(tmp_path):
    path = tmp_path / "legit.pt"
    torch.save({"w": torch.from_numpy(LEGIT.copy()), "h": torch.tensor([1.5, -2.0], dtype=torch.float16)}, path)
    return path


def assert_process_unharmed(legit_path):
    """A legitimate checkpoint still loads exactly, and dtorch's globals are what they were."""
    loaded = dtorch.load(legit_path)
    assert loaded["w"].dtype is dtorch.float32
    np.testing.assert_array_equal(loaded["w"].numpy(), LEGIT)
    assert loaded["h"].numpy().tolist() == [1.5, -2.0]
    assert dtorch.zeros(2).dtype is dtorch.float32 and dtorch.float32.itemsize == 4
    assert dtorch.float32.numpy_dtype == np.float32 and str(dtorch.float32) == "dtorch.float32"
    assert repr(dtorch.Size([2])) == "dtorch.Size([2])" and "__repr__" not in vars(dtorch.Size) or \
        vars(dtorch.Size)["__repr__"].__module__ == "dtorch.tensor"
    assert not hasattr(collections.OrderedDict, "poisoned")
    for name in ("FloatStorage", "HalfStorage"):
        stand_in = serialization._DEFAULT_ALLOWED[f"torch.{name}"]
        assert stand_in.dtype == serialization._DTYPE_BY_STORAGE[name]


def write_archive(path, payload, storages=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)


def pickled(body):
    """A protocol-2 pickle: PROTO 2, the opcodes, STOP."""
    return b"\x80\x02" + body + b"."


def glob_op(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def text(value):
    data = value.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


SHARED = {}


def get_shared():
    """An allowlisted function that returns a shared object: a file must not be able to fill it."""
    return SHARED


class Allowed:
    """A class a user allowlists: its instances may be built (positive control)."""


# ---- objects a file must not change -----------------------------------------------------------------------------

POISON = {
    # torch.FloatStorage + BUILD {"dtype": "float16"}: the 40-byte file of the issue
    "storage_build_dict": glob_op("torch", "FloatStorage") + b"}" + text("dtype") + text("float16") + b"sb",
    "storage_build_slots": glob_op("torch", "FloatStorage") + b"N}" + text("dtype") + text("float16") + b"s\x86b",
    # BUILD on torch.Size replacing its __repr__
    "size_build": glob_op("torch", "Size") + b"N}" + text("__repr__") + glob_op("collections", "OrderedDict")
    + b"s\x86b",
    # BUILD on a dtype changing what it means for the whole process
    "dtype_build": glob_op("torch", "float32") + b"N}" + text("itemsize") + b"K\x02s\x86b",
    "dtype_build_numpy": glob_op("torch", "float32") + b"N}" + text("numpy_dtype") + glob_op("torch", "float16")
    + b"s\x86b",
    "class_build": glob_op("collections", "OrderedDict") + b"}" + text("poisoned") + b"\x88sb",
    "setitem_on_class": glob_op("collections", "OrderedDict") + text("k") + b"\x88s",
    "setitems_on_class": glob_op("collections", "OrderedDict") + b"(" + text("k") + b"\x88u",
    "append_on_global": glob_op("torch", "Size") + b"\x88a",
    "device_build": glob_op("torch", "device") + text("cpu") + b"\x85R}" + text("type") + text("cuda") + b"sb",
    "reduce_non_callable": glob_op("torch", "float32") + b")R",
    "newobj_tensor": glob_op("torch", "Tensor") + b")\x81",
    "reduce_eval": glob_op("builtins", "eval") + text("1") + b"\x85R",
    "reduce_os_system": glob_op("os", "system") + text("true") + b"\x85R",
    "stack_global_posix": text("posix") + text("system") + b"\x93",
    "inst_opcode": b"(i" + b"collections\nOrderedDict\n",
    "obj_opcode": b"(" + glob_op("collections", "OrderedDict") + b"o",
    "ext1_opcode": b"\x82\x01",
    "persid_text": b"P0\n",
    "tuple_build": b"K\x01\x85}" + text("x") + b"K\x01sb",
    "setitem_on_shared_result": glob_op("tests.faults.test_checkpoint_faults", "get_shared") + b")R" + text("k")
    + b"\x88s",
    "bytearray_count": glob_op("builtins", "bytearray") + b"J\xff\xff\xff\x7f\x85R",
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_file_that_would_change_a_global_is_refused(tmp_path, legit_checkpoint, name):
    path = tmp_path / f"{name}.pt"
    write_archive(path, pickled(POISON[name]))
    with serialization.safe_globals([get_shared]):
        with pytest.raises(pickle.UnpicklingError, match="Weights only load failed|dtorch.load"):
            dtorch.load(path)
    assert SHARED == {}
    assert_process_unharmed(legit_checkpoint)


@pytest.mark.parametrize("name", ["storage_build_dict", "storage_build_slots", "size_build", "dtype_build"])
def test_pytorch_refuses_the_same_files(tmp_path, name):
    path = tmp_path / f"{name}.pt"
    write_archive(path, pickled(POISON[name]))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_weights_only_false_cannot_retype_storages_either(tmp_path, legit_checkpoint):
    """weights_only=False runs code by design; still, the stand-ins for torch's storage types are read-only."""
    for name in ("storage_build_dict", "storage_build_slots"):
        path = tmp_path / f"{name}.pt"
        write_archive(path, pickled(POISON[name]))
        with pytest.raises((AttributeError, pickle.UnpicklingError)):
            dtorch.load(path, weights_only=False)
    assert_process_unharmed(legit_checkpoint)


def test_allowlisted_class_instances_are_built(tmp_path):
    """The positive control: BUILD on an object the file created, of a class the user allowed, is applied."""
    path = tmp_path / "allowed.pt"
    dtorch.save({"obj": Allowed(), "od": collections.OrderedDict(a=1)}, path)
    obj = Allowed()
    obj.x = 5
    dtorch.save({"obj": obj}, path)
    with serialization.safe_globals([Allowed]):
        assert dtorch.load(path)["obj"].x == 5
    assert not hasattr(Allowed, "x")


# ---- crafted tensor records -------------------------------------------------------------------------------------


class _Storage:
    pass


class _Record:
    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class _RecordPickler(pickle.Pickler):
    def __init__(self, file, key, numel):
        super().__init__(file, protocol=2)
        self.key, self.numel = key, numel

    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, self.key, "cpu", self.numel) if isinstance(obj, _Storage) else None


def crafted_tensor(path, offset, size, stride, key="0", data=LEGIT, stored_key="0"):
    buffer = io.BytesIO()
    _RecordPickler(buffer, key, data.size).dump({"t": _Record(_Storage(), offset, size, stride, False,
                                                               collections.OrderedDict())})
    write_archive(path, buffer.getvalue(), {stored_key: data.tobytes()})


BAD_RECORDS = {
    "zero_stride_2e60": (0, (2 ** 60,), (0,)),
    "zero_strides_2e80": (0, (2 ** 40, 2 ** 40), (0, 0)),
    "negative_stride": (3, (4,), (-1,)),
    "negative_size": (0, (-4,), (1,)),
    "size_overflows_int64": (0, (2 ** 63,), (0,)),
    "stride_overflows_int64": (0, (2,), (2 ** 63,)),
    "stride_reaches_past_storage": (0, (2,), (4,)),
    "size_reaches_past_storage": (0, (5,), (1,)),
    "offset_past_storage": (4, (1,), (1,)),
    "negative_offset": (-1, (2,), (1,)),
    "ranks_disagree": (0, (2, 2), (1,)),
    "float_size": (0, (4.0,), (1,)),
    "string_stride": (0, (4,), ("1",)),
    "size_not_a_tuple": (0, 4, (1,)),
}


@pytest.mark.parametrize("name", sorted(BAD_RECORDS))
def test_tensor_record_outside_its_storage_is_refused(tmp_path, legit_checkpoint, name):
    path = tmp_path / f"{name}.pt"
    crafted_tensor(path, *BAD_RECORDS[name])
    with pytest.raises(pickle.UnpicklingError, match="dtorch.load"):
        dtorch.load(path)
    with pytest.raises(pickle.UnpicklingError, match="dtorch.load"):
        dtorch.load(path, weights_only=False)
    assert_process_unharmed(legit_checkpoint)


def test_zero_strides_that_expand_writes_load(tmp_path):
    """Zero strides are legitimate (PyTorch writes expanded tensors so): they load as views of the storage."""
    path = tmp_path / "expanded.pt"
    torch.save({"e": torch.arange(3.0)[1:2].expand(2, 4)}, path)
    np.testing.assert_array_equal(dtorch.load(path)["e"].numpy(), np.ones((2, 4)))
    crafted_tensor(path, 2, (3, 2), (0, 1))
    np.testing.assert_array_equal(dtorch.load(path)["t"].numpy(), [[3, 4]] * 3)


def test_missing_storage_record_names_it(tmp_path, legit_checkpoint):
    path = tmp_path / "missing.pt"
    crafted_tensor(path, 0, (4,), (1,), key="7")
    with pytest.raises(RuntimeError, match="no record 'archive/data/7' for storage '7'"):
        dtorch.load(path)
    assert_process_unharmed(legit_checkpoint)


DAMAGED = {
    "truncated_pickle": lambda data: data[: len(data) // 2],
    "no_stop": lambda data: data[:-1],
    "garbage_opcode": lambda data: data[:2] + b"\xff" + data[2:],
    "long4_longer_than_file": lambda data: b"\x80\x02\x8b\xff\xff\xff\x7f\x00.",
    "long4_negative": lambda data: b"\x80\x02\x8b\xff\xff\xff\xff.",
    "memo_read_before_write": lambda data: b"\x80\x02h\x05.",
    "unbalanced_stop": lambda data: b"\x80\x02(K\x01.",
    "empty_stack_reduce": lambda data: b"\x80\x02R.",
    "odd_setitems": lambda data: b"\x80\x02}(K\x01u.",
    "bad_utf8": lambda data: b"\x80\x02X\x02\x00\x00\x00\xff\xfe.",
    "rebuild_with_missing_args": lambda data: b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)R.",
    "unhashable_key": lambda data: b"\x80\x02}]K\x01s.",
    "complex_from_text": lambda data: b"\x80\x02c__builtin__\ncomplex\nX\x01\x00\x00\x00z\x85R.",
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_damaged_pickle_is_a_clear_error(tmp_path, legit_checkpoint, name):
    path = tmp_path / f"{name}.pt"
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    with zipfile.ZipFile(buffer) as archive:
        data = archive.read([n for n in archive.namelist() if n.endswith("data.pkl")][0])
        storage = archive.read([n for n in archive.namelist() if "/data/" in n][0])
    write_archive(path, DAMAGED[name](data), {"0": storage})
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        dtorch.load(path)
    assert_process_unharmed(legit_checkpoint)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(RuntimeError, match="zip"):
        dtorch.load(path)


def test_huge_ints_and_cycles(tmp_path, legit_checkpoint):
    """Ints past LONG1's 2040 bits save (as LONG4, as pickle writes) and load; a tuple-list cycle is one tuple."""
    path = tmp_path / "ints.pt"
    cycle = ([],)
    cycle[0].append(cycle)
    dtorch.save({"big": 7 ** 5000, "cycle": cycle}, path)
    back = dtorch.load(path)
    assert back["big"] == 7 ** 5000 and back["cycle"][0][0] is back["cycle"]
    assert torch.load(path, weights_only=False)["big"] == 7 ** 5000
    assert_process_unharmed(legit_checkpoint)


# ---- file modes, owners and permissions ---------------------------------------------------------------------------


def test_existing_file_keeps_its_mode(tmp_path):
    for mode in (0o600, 0o640, 0o604, 0o755):
        path = tmp_path / f"m{mode:o}.pt"
        dtorch.save({"v": 1}, path)
        os.chmod(path, mode)
        dtorch.save({"v": 2}, path)
        assert os.stat(path).st_mode & 0o7777 == mode, oct(os.stat(path).st_mode)
        assert dtorch.load(path) == {"v": 2}


def test_new_file_follows_the_current_umask_which_save_never_changes(tmp_path, monkeypatch):
    old = os.umask(0o077)
    try:
        # the umask is applied by the kernel at creation, never read by setting it
        monkeypatch.setattr(os, "umask", lambda *a: pytest.fail("dtorch.save must not call os.umask"))
        dtorch.save({"v": 1}, tmp_path / "private.pt")
        monkeypatch.undo()
        assert os.stat(tmp_path / "private.pt").st_mode & 0o777 == 0o600
        os.umask(0o022)
        dtorch.save({"v": 1}, tmp_path / "shared.pt")
        assert os.stat(tmp_path / "shared.pt").st_mode & 0o777 == 0o644
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_root_saving_over_a_users_file_keeps_its_owner(tmp_path):
    path = tmp_path / "theirs.pt"
    dtorch.save({"v": 1}, path)
    os.chown(path, 65534, 65534)
    os.chmod(path, 0o640)
    dtorch.save({"v": 2}, path)
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (65534, 65534, 0o640)


def test_may_write_decides_as_open_would(tmp_path):
    path = tmp_path / "ro.pt"
    path.write_bytes(b"x")
    os.chmod(path, 0o444)
    try:
        open(path, "ab").close()
        writable = True
    except PermissionError:
        writable = False
    assert serialization._may_write(str(path)) is writable  # root may, a user may not


_AS_A_USER = textwrap.dedent(
    """
    import json, os, sys, warnings
    sys.path.insert(0, sys.argv[2])
    import numpy as np
    from dtorch import serialization
    from dtorch.tensor import Tensor

    base = sys.argv[1]
    import io, encodings.cp437  # noqa: E401 (what zipfile imports lazily: the user may not read the interpreter)
    warm = io.BytesIO()
    serialization.save({"w": Tensor._from_array(np.ones(2), None)}, warm)
    serialization.load(io.BytesIO(warm.getvalue()))
    if os.geteuid() == 0:  # everything is imported: become an ordinary user for the checks
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    out = {"uid": os.geteuid()}
    ro = os.path.join(base, "ro.pt")
    serialization.save({"v": 1}, ro)
    os.chmod(ro, 0o444)
    try:
        serialization.save({"v": 2}, ro)
        out["ro_file"] = "saved"
    except PermissionError as error:
        out["ro_file"] = "PermissionError: " + str(error)
    out["ro_file_v"] = serialization.load(ro)["v"]
    out["ro_file_listing"] = sorted(n for n in os.listdir(base) if n.endswith(".pt") or n.endswith(".tmp"))

    folder = os.path.join(base, "rodir")
    os.mkdir(folder)
    path = os.path.join(folder, "ck.pt")
    big = Tensor._from_array(np.arange(100000, dtype=np.float32), None)
    serialization.save({"v": 1, "w": big}, path)
    os.chmod(path, 0o640)
    os.chmod(folder, 0o555)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        serialization.save({"v": 2}, path)  # much smaller than before: the old tail must be cut
    out["rodir_v"] = serialization.load(path)["v"]
    out["rodir_mode"] = oct(os.stat(path).st_mode & 0o777)
    out["rodir_warning"] = [str(w.message) for w in caught]
    out["rodir_listing"] = sorted(os.listdir(folder))
    try:
        serialization.save({"v": 1}, os.path.join(folder, "new.pt"))
        out["rodir_new"] = "saved"
    except PermissionError as error:
        out["rodir_new"] = "PermissionError: " + str(error)
    theirs = os.path.join(base, "sticky", "theirs.pt")  # root's 0666 file in a sticky folder, made by the test
    if os.path.exists(theirs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            serialization.save({"v": 2}, theirs)
        out["sticky"] = [serialization.load(theirs)["v"], os.stat(theirs).st_uid, [str(w.message) for w in caught],
                         sorted(os.listdir(os.path.dirname(theirs)))]
    print(json.dumps(out))
    """
)


def test_permissions_as_an_ordinary_user():
    """As a non-root user (the test drops root in a subprocess): a 0444 file is refused and stays intact; a
    writable file in a read-only folder is saved in place, with a warning; a new file there is refused; (run as
    root) root's world-writable file in a sticky folder is written in place too."""
    base = tempfile.mkdtemp(prefix="dtorch-perm-")
    os.chmod(base, 0o777)
    if os.geteuid() == 0:
        os.mkdir(os.path.join(base, "sticky"))
        os.chmod(os.path.join(base, "sticky"), 0o1777)
        dtorch.save({"v": 1}, os.path.join(base, "sticky", "theirs.pt"))
        os.chmod(os.path.join(base, "sticky", "theirs.pt"), 0o666)
    try:
        result = subprocess.run([sys.executable, "-c", _AS_A_USER, base, REPO], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout.strip().splitlines()[-1])
        assert out["uid"] != 0
        assert out["ro_file"].startswith("PermissionError") and "ro.pt" in out["ro_file"]
        assert out["ro_file_v"] == 1 and out["ro_file_listing"] == ["ro.pt"]
        assert out["rodir_v"] == 2 and out["rodir_mode"] == "0o640" and out["rodir_listing"] == ["ck.pt"]
        assert len(out["rodir_warning"]) == 1 and "not atomically" in out["rodir_warning"][0]
        assert out["rodir_new"].startswith("PermissionError") and "new.pt" in out["rodir_new"]
        assert ("sticky" in out) == (os.geteuid() == 0)
        if "sticky" in out:  # another user's writable file in a sticky folder: written in place, as open() would
            value, owner, warned, listing = out["sticky"]
            assert value == 2 and owner == 0 and listing == ["theirs.pt"]
            assert len(warned) == 1 and "sticky folder" in warned[0] and "not atomically" in warned[0]
    finally:
        for root, dirs, _ in os.walk(base):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o777)
        shutil.rmtree(base, ignore_errors=True)


# ---- temporaries and kills ------------------------------------------------------------------------------------------


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_next_save_removes_the_temporaries_of_killed_saves(tmp_path):
    path = tmp_path / "ck.pt"
    host = serialization._host_tag()
    stale = tmp_path / f".ck.pt.{_dead_pid()}.{host}.0badf00d.tmp"
    live = tmp_path / f".ck.pt.{os.getppid()}.{host}.00000001.tmp"  # a save still running in another process
    foreign_old = tmp_path / ".ck.pt.12345.ffffffff.00000002.tmp"
    foreign_new = tmp_path / ".ck.pt.12345.ffffffff.00000003.tmp"
    other_target = tmp_path / f".other.pt.{_dead_pid()}.{host}.00000004.tmp"
    for leftover in (stale, live, foreign_old, foreign_new, other_target):
        leftover.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(foreign_old, (two_hours_ago, two_hours_ago))
    dtorch.save({"v": 1}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ck.pt", live.name, foreign_new.name, other_target.name])
    assert socket.gethostname()  # the host tag is derived from it


_SAVE_LOOP = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[3])
    from dtorch import serialization
    from dtorch.tensor import Tensor

    path, version = sys.argv[1], int(sys.argv[2])
    weights = np.zeros(1 << 21, dtype=np.float32)  # 8 MB: most of the loop's time is spent writing
    print("ready", flush=True)
    while True:
        version += 1
        weights[:] = version
        serialization.save({"version": version, "w": Tensor._from_array(weights, None)}, path)
    """
)


def test_kills_at_random_points_of_a_save_loop_never_damage_the_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"
    dtorch.save({"version": 0, "w": dtorch.zeros(1 << 21)}, path)
    rng = random.Random(0)
    kills = mid_save = 0
    for round_ in range(6):
        child = subprocess.Popen([sys.executable, "-c", _SAVE_LOOP, str(path), str(1000 * (round_ + 1)), REPO],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        kills += 1
        temporaries = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(temporaries) <= 1, "each save removes what the saves killed before it left"
        mid_save += len(temporaries)
        loaded = dtorch.load(path)
        version = loaded["version"]
        assert version == 0 or 1000 * (round_ + 1) < version < 1000 * (round_ + 2)
        assert np.all(loaded["w"].numpy() == version), "tensor data from one save, whole"
        assert int(torch.load(path)["w"][-1]) == version
    dtorch.save({"version": -1}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]
    print(f"{mid_save} of {kills} kills landed while a temporary file existed")
    assert kills == 6 and mid_save >= 1, f"{mid_save} of {kills} kills landed while a temporary file existed"
