"""Checkpoints: ``save`` and ``load`` in PyTorch's zip layout, loaded without running code from the file.

The file is the one ``torch.save`` writes (format version 3), so ``torch.load(path, weights_only=True)`` reads a
dtorch checkpoint and ``dtorch.load`` reads one that ``torch.save`` wrote; neither side needs the other installed.
A zip archive (entries stored, not compressed) whose entries share one top folder, ``archive/`` here:

- ``archive/data.pkl``: the object as a protocol-2 pickle. A tensor is the call
  ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, OrderedDict())``, whose
  ``storage`` is a *persistent id* ``('storage', torch.FloatStorage, '0', 'cpu', numel)`` naming a data entry.
- ``archive/data/N``: the raw little-endian bytes of storage ``N``, aligned to 64 bytes in the file.
- ``archive/byteorder`` (``little``), ``archive/version`` (``3``), ``archive/.format_version`` (``1``),
  ``archive/.storage_alignment`` (``64``).

Saving writes that pickle with a small encoder of its own (a dtorch object never needs torch's classes at hand),
and tensors that are NumPy views of one base array share one storage, as views do in PyTorch.
Loading uses a restricted unpickler: only the handful of globals a checkpoint needs resolve (tensor and parameter
rebuilders, storage types, dtypes, ``torch.device``, ``OrderedDict``, ``set``, ``complex``, ``_codecs.encode``), so a
pickle that names anything else, ``os.system`` say, raises ``pickle.UnpicklingError`` before anything runs.

Saving to a path is atomic: the archive is written to a temporary file in the target's folder, flushed, fsynced and
renamed over the target with ``os.replace``, so a process killed mid-save leaves the previous file whole (and a
stray ``.<name>.*.tmp`` file behind). A file-like object is written directly, without those guarantees.

Thread-safety: ``save`` and ``load`` keep no global state; concurrent saves to one path race only for the final rename.
"""

import codecs
import collections
import io
import os
import pickle
import struct
import sys
import tempfile
import zipfile

import numpy as np

from dtorch import _backend
from dtorch.tensor import Size, Tensor

__all__ = ["save", "load"]

_RECORD = "archive"
_ALIGNMENT = 64
_ZIP64_LIMIT = (1 << 31) - 1  # zipfile's own threshold for switching an entry to zip64

# torch storage class name <-> NumPy dtype; the typed storages torch writes for the dtypes dtorch has
_STORAGE_BY_DTYPE = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.int16): "ShortStorage",
    np.dtype(np.int8): "CharStorage",
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}
_DTYPE_BY_STORAGE = {name: dt for dt, name in _STORAGE_BY_DTYPE.items()}
# storages torch can write but dtorch has no dtype for: loading them is a clear error
_UNSUPPORTED_STORAGES = {
    "BFloat16Storage": "bfloat16",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
}
# torch dtype attribute name -> NumPy dtype (None: dtorch has no such dtype)
_TORCH_DTYPE_NAMES = {
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "int64": np.int64, "long": np.int64, "int32": np.int32,
    "int": np.int32, "int16": np.int16, "short": np.int16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_,
    "bfloat16": None, "complex64": None, "complex128": None, "uint16": None, "uint32": None, "uint64": None,
}


# ----------------------------------------------------------------------------------------------------------------------
# the pickle encoder

# protocol-2 opcodes used below
_PROTO, _STOP = b"\x80", b"."
_NONE, _TRUE, _FALSE = b"N", b"\x88", b"\x89"
_BININT, _BININT1, _BININT2, _LONG1, _BINFLOAT = b"J", b"K", b"M", b"\x8a", b"G"
_BINUNICODE, _MARK = b"X", b"("
_EMPTY_TUPLE, _TUPLE, _TUPLE1, _TUPLE2, _TUPLE3 = b")", b"t", b"\x85", b"\x86", b"\x87"
_EMPTY_LIST, _APPENDS, _EMPTY_DICT, _SETITEMS = b"]", b"e", b"}", b"u"
_GLOBAL, _REDUCE, _BINPERSID = b"c", b"R", b"Q"
_BINPUT, _LONG_BINPUT, _BINGET, _LONG_BINGET = b"q", b"r", b"h", b"j"
_BATCH = 1000


class _Global:
    """A name written as a GLOBAL opcode: ``module.name`` on the loading side (e.g. ``torch._utils._rebuild_tensor_v2``)."""

    __slots__ = ("module", "name")

    def __init__(self, module, name):
        self.module, self.name = module, name


class _Storage:
    """One storage to write: a flat C-contiguous host array and its key in ``archive/data/``."""

    __slots__ = ("key", "array", "location")

    def __init__(self, key, array, location):
        self.key, self.array, self.location = key, array, location


class _Encoder:
    """Writes a protocol-2 pickle of dtorch objects without Python's pickler, so torch's global names need no torch.

    Memoises containers and tensors by identity, so an object referenced twice is loaded as one object; tensors
    that view one NumPy base array are written as views of one storage.
    """

    def __init__(self):
        self.out = io.BytesIO()
        self.memo = {}  # id(obj) -> (memo index, obj): obj is kept alive so its id is not reused
        self.globals = {}  # (module, name) -> memo index
        self.storages = []
        self._storage_by_base = {}  # id(base array) -> (_Storage, base, first element written)
        self._spans = {}  # id(base array) -> [first, end) elements that the saved tensors view

    def dump(self, obj):
        self._collect_spans(obj)
        self.out.write(_PROTO + b"\x02")
        self._save(obj)
        self.out.write(_STOP)
        return self.out.getvalue()

    # -- memo

    def _put(self, obj):
        index = len(self.memo) + len(self.globals)
        self.memo[id(obj)] = (index, obj)
        self._write_put(index)

    def _write_put(self, index):
        if index < 256:
            self.out.write(_BINPUT + bytes((index,)))
        else:
            self.out.write(_LONG_BINPUT + struct.pack("<I", index))

    def _get(self, index):
        if index < 256:
            self.out.write(_BINGET + bytes((index,)))
        else:
            self.out.write(_LONG_BINGET + struct.pack("<I", index))

    # -- values

    def _save(self, obj):
        write = self.out.write
        if obj is None:
            write(_NONE)
            return
        kind = type(obj)
        if kind is bool:
            write(_TRUE if obj else _FALSE)
        elif kind is int:
            self._save_int(obj)
        elif kind is float:
            write(_BINFLOAT + struct.pack(">d", obj))
        elif kind is str:
            self._save_str(obj)
        elif isinstance(obj, np.generic):
            # NumPy scalars (from .item()-less reductions) become the Python scalar they hold
            self._save(obj.item())
        else:
            found = self.memo.get(id(obj))
            if found is not None:
                self._get(found[0])
            elif isinstance(obj, Tensor):
                self._save_tensor(obj)
            elif kind is tuple:
                self._save_tuple(obj)
            elif kind is Size:
                self._save_reduce(_Global("torch", "Size"), (tuple(obj),))
                self._put(obj)
            elif isinstance(obj, tuple):
                # a namedtuple or other tuple subclass is written as a plain tuple
                self._save_tuple(tuple(obj))
            elif kind is list:
                write(_EMPTY_LIST)
                self._put(obj)
                self._save_items(obj, _APPENDS)
            elif kind is dict:
                write(_EMPTY_DICT)
                self._put(obj)
                self._save_items(obj.items(), _SETITEMS, pairs=True)
            elif isinstance(obj, collections.OrderedDict):
                self._save_reduce(_Global("collections", "OrderedDict"), ())
                self._put(obj)
                self._save_items(obj.items(), _SETITEMS, pairs=True)
            elif kind is bytes or kind is bytearray:
                self._save_reduce(_Global("_codecs", "encode"), (bytes(obj).decode("latin1"), "latin1"))
                self._put(obj)
            elif kind is set or kind is frozenset:
                self._save_reduce(_Global("__builtin__", kind.__name__), (list(obj),))
                self._put(obj)
            elif kind is complex:
                self._save_reduce(_Global("__builtin__", "complex"), (obj.real, obj.imag))
            elif kind is _backend.dtype:
                self._save_global(_Global("torch", obj.name))
            elif kind is _backend.device:
                self._save_reduce(_Global("torch", "device"), (str(obj),))
            elif isinstance(obj, dict):
                # another dict subclass (e.g. a defaultdict) is written as a plain dict
                write(_EMPTY_DICT)
                self._put(obj)
                self._save_items(obj.items(), _SETITEMS, pairs=True)
            elif isinstance(obj, np.ndarray):
                raise TypeError(
                    "dtorch.save does not write bare NumPy arrays; wrap them in a tensor (dtorch.from_numpy(a))"
                )
            else:
                raise TypeError(
                    f"dtorch.save cannot write an object of type {kind.__module__}.{kind.__qualname__}: a checkpoint "
                    "holds tensors and nested dicts/lists/tuples of Python scalars and strings"
                )

    def _save_int(self, value):
        write = self.out.write
        if 0 <= value < 256:
            write(_BININT1 + bytes((value,)))
        elif 0 <= value < 65536:
            write(_BININT2 + struct.pack("<H", value))
        elif -(1 << 31) <= value < (1 << 31):
            write(_BININT + struct.pack("<i", value))
        else:
            n = (value.bit_length() >> 3) + 1
            data = value.to_bytes(n, "little", signed=True)
            write(_LONG1 + bytes((len(data),)) + data)

    def _save_str(self, value):
        data = value.encode("utf-8", "surrogatepass")
        self.out.write(_BINUNICODE + struct.pack("<I", len(data)) + data)

    def _save_tuple(self, items):
        n = len(items)
        if n == 0:
            self.out.write(_EMPTY_TUPLE)
            return
        if n <= 3:
            for item in items:
                self._save(item)
            self.out.write((_TUPLE1, _TUPLE2, _TUPLE3)[n - 1])
        else:
            self.out.write(_MARK)
            for item in items:
                self._save(item)
            self.out.write(_TUPLE)
        self._put(items)

    def _save_items(self, items, opcode, pairs=False):
        batch = []
        for item in items:
            batch.append(item)
            if len(batch) == _BATCH:
                self._write_batch(batch, opcode, pairs)
                batch = []
        if batch:
            self._write_batch(batch, opcode, pairs)

    def _write_batch(self, batch, opcode, pairs):
        self.out.write(_MARK)
        for item in batch:
            if pairs:
                self._save(item[0])
                self._save(item[1])
            else:
                self._save(item)
        self.out.write(opcode)

    def _save_global(self, glob):
        key = (glob.module, glob.name)
        index = self.globals.get(key)
        if index is not None:
            self._get(index)
            return
        self.out.write(_GLOBAL + f"{glob.module}\n{glob.name}\n".encode("ascii"))
        index = len(self.memo) + len(self.globals)
        self.globals[key] = index
        self._write_put(index)

    def _save_reduce(self, glob, args):
        self._save_global(glob)
        self._save_tuple_unmemoised(args)
        self.out.write(_REDUCE)

    def _save_tuple_unmemoised(self, args):
        # argument tuples are fresh objects: memoising them by id could alias a later tuple at the same address
        if not args:
            self.out.write(_EMPTY_TUPLE)
            return
        self.out.write(_MARK)
        for item in args:
            self._save(item)
        self.out.write(_TUPLE)

    # -- tensors

    def _save_tensor(self, tensor):
        array = tensor._array
        storage, offset, size, stride = self._storage_for(array)
        is_parameter = type(tensor).__name__ == "Parameter"
        if is_parameter:
            self._save_global(_Global("torch._utils", "_rebuild_parameter"))
            self.out.write(_MARK)
        self._save_global(_Global("torch._utils", "_rebuild_tensor_v2"))
        self.out.write(_MARK)
        self._save_persistent_storage(storage)
        self._save_int(offset)
        self._save_tuple_unmemoised(size)
        self._save_tuple_unmemoised(stride)
        # requires_grad is written False inside the parameter wrapper, as torch does, and for plain tensors
        self.out.write(_TRUE if (tensor.requires_grad and not is_parameter) else _FALSE)
        self._save_reduce(_Global("collections", "OrderedDict"), ())
        self.out.write(_TUPLE + _REDUCE)
        if is_parameter:
            self.out.write(_TRUE if tensor.requires_grad else _FALSE)
            self._save_reduce(_Global("collections", "OrderedDict"), ())
            self.out.write(_TUPLE + _REDUCE)
        self._put(tensor)

    def _save_persistent_storage(self, storage):
        found = self.memo.get(id(storage))
        if found is not None:
            self._get(found[0])
        else:
            name = _STORAGE_BY_DTYPE.get(storage.array.dtype)
            if name is None:
                raise TypeError(f"dtorch.save: no torch storage type for dtype {storage.array.dtype}")
            self.out.write(_MARK)
            self._save_str("storage")
            self._save_global(_Global("torch", name))
            self._save_str(storage.key)
            self._save_str(storage.location)
            self._save_int(storage.array.size)
            self.out.write(_TUPLE)
            self._put(storage)
        self.out.write(_BINPERSID)

    def _collect_spans(self, obj):
        """Record, per NumPy base array, the element range the saved tensors view, so a storage holds only that
        range: a parameter that the optimizer's flat path made a view of one buffer is written alone, not with
        every other parameter of the buffer (``torch.save`` writes whole storages; its parameters own theirs)."""
        seen = set()
        stack = [obj]
        while stack:
            item = stack.pop()
            if isinstance(item, (str, bytes, int, float, type(None))):
                continue
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, Tensor):
                array = item._array
                if type(array) is not np.ndarray:
                    continue
                base = _base_of(array)
                view = _view_of(array, base)
                if view is None:
                    continue
                span = self._spans.setdefault(id(base), [base.size, 0])
                if array.size:  # an empty view reads nothing (it is written at offset 0)
                    offset, stride = view
                    end = offset + sum((n - 1) * st for n, st in zip(array.shape, stride)) + 1
                    span[0], span[1] = min(span[0], offset), max(span[1], end)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, (list, tuple, set, frozenset)):
                stack.extend(item)

    def _storage_for(self, array):
        """(storage, offset, size, stride) for an array, sharing one storage among views of one NumPy base."""
        shape = tuple(int(n) for n in array.shape)
        if type(array) is np.ndarray:
            location = "cpu"
            base = _base_of(array)
            view = _view_of(array, base)
            if view is not None:
                found = self._storage_by_base.get(id(base))
                if found is None:
                    first, end = self._spans.get(id(base), (0, base.size))
                    first = min(first, end)
                    flat = base.reshape(-1)[first:end]
                    if flat.dtype.byteorder == ">":
                        flat = flat.astype(flat.dtype.newbyteorder("<"))
                    storage = _Storage(str(len(self.storages)), flat, location)
                    self.storages.append(storage)
                    self._storage_by_base[id(base)] = (storage, base, first)
                else:
                    storage, _, first = found
                offset, stride = view
                return storage, (offset - first if array.size else 0), shape, stride
            host = np.ascontiguousarray(array)
        else:  # a CuPy array: copied to the host as a storage of its own
            location = str(_backend.device_of(array))
            host = np.ascontiguousarray(array.get())
        if host.dtype.byteorder == ">":
            host = host.astype(host.dtype.newbyteorder("<"))
        storage = _Storage(str(len(self.storages)), host.reshape(-1), location)
        self.storages.append(storage)
        return storage, 0, shape, _contiguous_strides(shape)


def _base_of(array):
    base = array
    while isinstance(base.base, np.ndarray):
        base = base.base
    return base


def _contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _is_contiguous(size, stride):
    expected = 1
    for n, s in zip(reversed(size), reversed(stride)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _view_of(array, base):
    """(element offset, element strides) of ``array`` inside a C-contiguous ``base`` of its dtype, or None."""
    if base.dtype != array.dtype or not base.flags.c_contiguous or base.size == 0:
        return None
    itemsize = array.dtype.itemsize
    start = array.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    if start < 0 or start % itemsize:
        return None
    strides = []
    for n, s in zip(array.shape, array.strides):
        if n == 1:
            s = 0 if s < 0 else s
        if s < 0 or s % itemsize:
            return None
        strides.append(s // itemsize)
    return start // itemsize, tuple(strides)


# ----------------------------------------------------------------------------------------------------------------------
# the zip archive


def _write_archive(fileobj, obj):
    encoder = _Encoder()
    pickled = encoder.dump(obj)
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        _write_entry(archive, "data.pkl", pickled)
        _write_entry(archive, ".format_version", b"1")
        _write_entry(archive, ".storage_alignment", str(_ALIGNMENT).encode())
        _write_entry(archive, "byteorder", b"little")
        for storage in encoder.storages:
            _write_entry(archive, f"data/{storage.key}", storage.array)
        _write_entry(archive, "version", b"3\n")


def _write_entry(archive, name, payload):
    """Write one stored entry whose data starts on a 64-byte boundary (torch mmaps storages at aligned offsets)."""
    name = f"{_RECORD}/{name}"
    if isinstance(payload, np.ndarray):
        data = memoryview(payload).cast("B") if payload.size else memoryview(b"")
    else:
        data = memoryview(payload)
    size = data.nbytes
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    zip64 = size > _ZIP64_LIMIT
    # the local header is 30 bytes + name + extra (+ a 20-byte zip64 field that zipfile appends for big entries)
    start = archive.fp.tell() + 30 + len(name.encode("utf-8")) + 4 + (20 if zip64 else 0)
    pad = (-start) % _ALIGNMENT
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # an 'FB' padding field, as torch writes
    with archive.open(info, "w", force_zip64=zip64) as entry:
        chunk = 1 << 24
        for begin in range(0, size, chunk):
            entry.write(data[begin : begin + chunk])


def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True):
    """Save tensors and nested containers of them to a file that ``dtorch.load`` and ``torch.load`` read.

    Args:
        obj: a Tensor, or dicts (also ``OrderedDict``), lists and tuples nesting tensors, Python scalars, strings,
            bytes and ``None`` (module and optimizer ``state_dict()``\\ s, scheduler state, epoch counters).
        f: a path (``str`` or ``os.PathLike``), written atomically: temporary file in the same folder, fsync,
            ``os.replace``; or a writable binary file-like object, written directly.
        pickle_module, pickle_protocol, _use_new_zipfile_serialization: accepted for PyTorch compatibility; the
            format is always the zip layout with a protocol-2 pickle.

    Raises:
        TypeError: for objects outside that set (custom classes, bare NumPy arrays), before the target is touched.

    >>> import dtorch, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
    >>> dtorch.save({"w": dtorch.ones(2), "epoch": 3}, path)
    >>> dtorch.load(path)["epoch"]
    3
    """
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("dtorch.save writes its own restricted pickle; pickle_module must be left as None")
    if pickle_protocol != 2:
        raise ValueError(f"dtorch.save writes pickle protocol 2 (as torch does), got pickle_protocol={pickle_protocol}")
    if isinstance(f, (str, bytes, os.PathLike)):
        # through a symlink, replace the file it points to (as writing through it would), not the link
        _save_atomically(obj, os.path.realpath(os.fsdecode(f)))
    else:
        _write_archive(f, obj)


def _save_atomically(obj, path):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_archive(handle, obj)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    # makes the rename itself durable; not every platform can open a folder
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


# ----------------------------------------------------------------------------------------------------------------------
# loading


class _StorageType:
    """What ``torch.FloatStorage`` (or ``torch.storage.UntypedStorage``) resolves to while loading."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype


class _LoadedStorage:
    """A storage read from the archive: a flat array on its target device."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def _resolve_dtype(name):
    numpy_dtype = _TORCH_DTYPE_NAMES[name]
    if numpy_dtype is None:
        return _UnsupportedDtype(name)
    return _backend.from_numpy_dtype(numpy_dtype)


class _UnsupportedDtype:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    return _tensor_from_storage(storage.array, storage_offset, size, stride, requires_grad)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if isinstance(dtype, _UnsupportedDtype):
        raise pickle.UnpicklingError(f"dtorch.load: dtorch has no dtype {dtype.name}")
    data = storage.array
    numpy_dtype = dtype.numpy_dtype
    if data.nbytes % numpy_dtype.itemsize:
        raise pickle.UnpicklingError("dtorch.load: storage size is not a multiple of the dtype's size")
    return _tensor_from_storage(data.view(numpy_dtype), storage_offset, size, stride, requires_grad)


def _tensor_from_storage(flat, offset, size, stride, requires_grad):
    size, stride, offset = tuple(size), tuple(stride), int(offset)
    if len(size) != len(stride) or offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"dtorch.load: invalid tensor layout size={size} stride={stride} offset={offset}")
    # bounds are checked before any strided view: a crafted file must not read memory outside its storage
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise pickle.UnpicklingError(
                f"dtorch.load: tensor of size {size} stride {stride} offset {offset} overruns its storage "
                f"of {flat.size} elements"
            )
    xp = _backend.xp_of(flat)
    if 0 in size:
        array = xp.zeros(size, dtype=flat.dtype)
    elif _is_contiguous(size, stride):
        count = 1
        for n in size:
            count *= n
        array = flat[offset : offset + count].reshape(size)
    else:
        itemsize = flat.dtype.itemsize
        array = xp.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(s * itemsize for s in stride)
        )
    return _wrap(array, requires_grad)


def _wrap(array, requires_grad):
    tensor = Tensor._from_array(array, None)
    tensor.requires_grad = bool(requires_grad)
    return tensor


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    # the nn layer sits above this module: use its Parameter only when it has been imported already
    nn = sys.modules.get("dtorch.nn")
    parameter = getattr(nn, "Parameter", None)
    if parameter is not None:
        return parameter(data, requires_grad=bool(requires_grad))
    return _wrap(data._array, requires_grad)


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _make_device(kind, index=None):
    return _backend.device(kind, index)


def _decode_bytes(text, encoding):
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"dtorch.load: refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed_globals():
    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch", "device"): _make_device,
        ("torch", "Size"): Size,
        ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage", np.dtype(np.uint8)),
        ("_codecs", "encode"): _decode_bytes,
    }
    for builtins in ("builtins", "__builtin__"):
        allowed[(builtins, "set")] = set
        allowed[(builtins, "frozenset")] = frozenset
        allowed[(builtins, "complex")] = complex
    for name, numpy_dtype in _DTYPE_BY_STORAGE.items():
        allowed[("torch", name)] = _StorageType(name, numpy_dtype)
    for name in _UNSUPPORTED_STORAGES:
        allowed[("torch", name)] = _StorageType(name, None)
    for name in _TORCH_DTYPE_NAMES:
        allowed[("torch", name)] = _resolve_dtype(name)
    return allowed


_ALLOWED = _allowed_globals()


class _Unpickler(pickle.Unpickler):
    """Resolves only the globals in ``_ALLOWED`` (all of them, with ``weights_only=False``) and loads storages."""

    def __init__(self, handle, storage_loader, weights_only):
        super().__init__(handle, encoding="utf-8")
        self._load_storage = storage_loader
        self._weights_only = weights_only

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if not self._weights_only:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"Weights only load failed: unsupported global {module}.{name}. dtorch.load(weights_only=True) resolves "
            "only tensor rebuilders, storage types, dtypes, devices and plain containers; pass weights_only=False "
            "only for a file you trust, since that runs code from it."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"dtorch.load: unsupported persistent id {pid!r}")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
            raise pickle.UnpicklingError(f"dtorch.load: malformed storage id {pid!r}")
        if storage_type.dtype is None:
            raise pickle.UnpicklingError(
                f"dtorch.load: the file holds a {storage_type.name} "
                f"({_UNSUPPORTED_STORAGES[storage_type.name]}), a dtype dtorch does not have"
            )
        return self._load_storage(key, storage_type.dtype, location, numel)


def _target_location(location, map_location):
    if map_location is None:
        return location
    if isinstance(map_location, (str, _backend.device)):
        return str(_backend.as_device(map_location))
    if isinstance(map_location, dict):
        return str(map_location.get(location, location))
    raise TypeError(f"map_location must be None, a str, a dtorch.device, a dict or a callable, got {map_location!r}")


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **pickle_load_args):
    """Load an object that ``dtorch.save`` or ``torch.save`` wrote, never running code from the file by default.

    Args:
        f: a path or a readable, seekable binary file-like object.
        map_location: where tensors go: ``None`` (the device each was saved from), a device or string such as
            ``'cpu'``, a dict remapping saved locations (``{'cuda:1': 'cuda:0'}``), or a callable
            ``(array, location) -> array`` given each storage as a flat host array and its saved location.
        weights_only: True (the default) resolves only the few globals a checkpoint needs and raises
            ``pickle.UnpicklingError`` at any other; False resolves any global, which runs code from the file.
        pickle_module, mmap: accepted for PyTorch compatibility (``mmap`` is ignored: storages are read into memory).

    Returns:
        the saved object, with dtorch Tensors in place of torch tensors; parameters come back as
        ``dtorch.nn.Parameter`` once ``dtorch.nn`` is imported, else as tensors with ``requires_grad=True``.

    Raises:
        pickle.UnpicklingError: a disallowed global or a malformed tensor record.
        RuntimeError: a file that is not a zip checkpoint (the legacy pre-1.6 format is not read).

    >>> import dtorch, io
    >>> buffer = io.BytesIO(); dtorch.save([dtorch.zeros(1)], buffer); _ = buffer.seek(0)
    >>> dtorch.load(buffer, map_location="cpu")[0].shape
    dtorch.Size([1])
    """
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("dtorch.load uses its own restricted unpickler; pickle_module must be left as None")
    if isinstance(f, (str, bytes, os.PathLike)):
        with open(os.fsdecode(f), "rb") as handle:
            return _load_archive(handle, map_location, weights_only)
    return _load_archive(f, map_location, weights_only)


def _load_archive(handle, map_location, weights_only):
    seekable = getattr(handle, "seekable", None)
    if seekable is None or not seekable():
        handle = io.BytesIO(handle.read())  # a pipe or socket: zip needs random access
    if not zipfile.is_zipfile(handle):
        raise RuntimeError(
            "dtorch.load reads PyTorch's zip checkpoint format (torch >= 1.6); this file is not a zip archive "
            "(a legacy torch.save(_use_new_zipfile_serialization=False) file, or not a checkpoint at all)"
        )
    handle.seek(0)
    with zipfile.ZipFile(handle) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise RuntimeError("dtorch.load: the archive has no single '<name>/data.pkl' entry")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode("ascii").strip()
        if byteorder not in ("little", "big"):
            raise RuntimeError(f"dtorch.load: unknown byteorder {byteorder!r}")
        loaded = {}

        def load_storage(key, numpy_dtype, location, numel):
            found = loaded.get(key)
            if found is not None:
                return found
            info = archive.getinfo(prefix + "data/" + key)
            raw = np.empty(info.file_size, dtype=np.uint8)
            with archive.open(info) as entry:
                view, filled = memoryview(raw), 0
                while filled < info.file_size:
                    count = entry.readinto(view[filled:])
                    if not count:
                        raise pickle.UnpicklingError(f"dtorch.load: storage {key} is truncated")
                    filled += count
            dt = np.dtype(numpy_dtype).newbyteorder("<" if byteorder == "little" else ">")
            if len(raw) % dt.itemsize:
                raise pickle.UnpicklingError(f"dtorch.load: storage {key} has a size that is not whole elements")
            array = np.frombuffer(raw, dtype=dt)
            if byteorder != sys.byteorder:
                array = array.astype(np.dtype(numpy_dtype))
            if callable(map_location):
                array = map_location(array, location)
            else:
                target = _target_location(location, map_location)
                if target != "cpu":
                    array = _backend.to_device(array, target)
            storage = loaded[key] = _LoadedStorage(array)
            return storage

        with archive.open(pickles[0]) as pickled:
            return _Unpickler(io.BytesIO(pickled.read()), load_storage, weights_only).load()
