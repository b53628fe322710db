"""Checkpoints: ``save`` and ``load`` in PyTorch's zip format, with PyTorch 2.13's loading rules.

The file is the one ``torch.save`` writes (format version 3), so ``torch.load`` reads a dtorch checkpoint and
``dtorch.load`` reads one that ``torch.save`` wrote; neither side needs the other installed. A zip archive
(entries stored, not compressed) whose entries share one top folder, ``archive/`` here:

- ``archive/data.pkl``: the object as a protocol-2 pickle. A tensor is the call
  ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, OrderedDict())``, whose
  ``storage`` is a *persistent id* ``('storage', torch.FloatStorage, '0', 'cpu', numel)`` naming a data entry.
- ``archive/data/N``: the raw little-endian bytes of storage ``N``, aligned to 64 bytes in the file.
- ``archive/byteorder`` (``little``), ``archive/version`` (``3``), ``archive/.format_version`` (``1``),
  ``archive/.storage_alignment`` (``64``).

Saving. ``save`` writes anything ``torch.save`` writes: tensors and parameters (as torch's rebuild calls), dtypes,
devices and ``Size`` (as torch's names), and every other picklable object the way Python's pickle writes it at
protocol 2 (NumPy arrays, ``argparse.Namespace``, named tuples, a whole ``nn.Module``: their classes are named by
module and qualified name). NumPy scalars are written as the Python number they hold (a documented difference: a
loss from ``np.float32`` stays loadable with ``weights_only=True``). Tensors that are NumPy views of one base array
share one storage, as views do in PyTorch. A whole dtorch module names dtorch's classes, so it loads in dtorch;
move models between the libraries as ``state_dict()``\\ s.

Loading with ``weights_only=True`` (the default, as in PyTorch >= 2.6) runs a pickle interpreter of its own that
cannot run or change anything outside the objects the file builds. It accepts exactly:

- opcodes that build data: ints, floats, strings, bytes, ``None``/``True``/``False``, tuples, lists, dicts, sets,
  the memo (``PUT``/``GET``), ``MARK``/``POP``/``DUP``, ``BINPERSID`` for storages; never ``INST``, ``OBJ``,
  ``EXT*``, text persistent ids or out-of-band buffers;
- globals, by name: ``collections.OrderedDict``, ``collections.Counter``, ``builtins.set``, ``frozenset`` (which
  PyTorch's list lacks), ``complex``, ``bytearray``, ``_codecs.encode`` (bytes), ``torch.Size``, ``torch.device``,
  ``torch.Tensor``,
  ``torch.nn.parameter.Parameter``, ``torch.<dtype>`` (every dtype), ``torch.<Type>Storage`` and
  ``torch.storage.UntypedStorage``, the tensor rebuilders of ``torch._utils`` and
  ``torch._tensor._rebuild_from_type_v2``, plus what ``add_safe_globals`` or ``safe_globals`` allow; any other
  global raises ``pickle.UnpicklingError`` with PyTorch's message naming it and how to allow it (sparse and
  quantized tensors and dtypes dtorch lacks are named as such);
- calls (``REDUCE``/``NEWOBJ``) only of the callables above;
- changes (``BUILD``, ``SETITEM(S)``, ``APPEND(S)``, ``ADDITEMS``) only to objects this file created: dicts, lists
  and sets it built, an ``OrderedDict``'s attributes, and instances of allowlisted classes. A global (a class, a
  dtype, a storage type, a function) is never changed, so a file cannot affect anything loaded after it.

Tensor records are checked before a view is made: sizes and strides are non-negative ints, every element the
record reaches lies inside its storage, and a record whose elements repeat (zero strides, as ``expand`` writes)
declares at most ``2**40`` elements.

``weights_only=False`` unpickles everything, which runs code the file names: use it only for files you trust. The
names of PyTorch's classes in it (``torch.nn.modules.linear.Linear``) are read as dtorch's (``dtorch.nn.Linear``),
and ``torch`` is never imported.

Saving to a path. ``save`` first pickles the object (so an object it cannot write raises before the target is
touched), then writes a temporary file ``.<name>.<pid>.<host>.<random>.tmp`` next to the target, flushes, fsyncs
and renames it over the target with ``os.replace``: a process killed at any point leaves the previous checkpoint
whole, and the next save to that path removes the temporaries that killed saves left (those of processes of this
host that are gone, and of other hosts after an hour). The saved file keeps an existing target's mode (and owner,
where the process may set it); a new file gets ``0o666`` less the umask, applied by the kernel when the file is
created (the umask is never changed). A target the user may not write (a ``0o444`` file, as a non-root user)
raises ``PermissionError``, as ``open(path, 'wb')`` does. Where the folder is not writable but the file is, no
temporary file can be made (nor can another user's file in a sticky folder such as ``/tmp`` be replaced); the file
is then overwritten in place, not atomically, with a ``UserWarning`` saying so. A file-like object is written
directly.

Thread-safety: saves and loads share no state except the safe-globals list (changed by ``add_safe_globals``);
concurrent saves to one path race only for the final rename.
"""

import _compat_pickle
import codecs
import collections
import copyreg
import errno
import hashlib
import importlib
import io
import os
import pickle
import pickletools
import secrets
import socket
import stat
import struct
import sys
import time
import types
import warnings
import zipfile

import numpy as np

from dtorch import _backend
from dtorch.tensor import Size, Tensor

__all__ = ["save", "load", "add_safe_globals", "get_safe_globals", "clear_safe_globals", "safe_globals",
           "get_unsafe_globals_in_checkpoint"]

_RECORD = "archive"
_ALIGNMENT = 64
_ZIP64_LIMIT = (1 << 31) - 1  # zipfile's own threshold for switching an entry to zip64
_MAX_REPEATED_ELEMENTS = 1 << 40  # a zero-stride record may not declare more elements than this
_FOREIGN_TEMPORARY_AGE = 3600  # seconds after which another host's temporary file counts as abandoned

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
    _backend.BFLOAT16_NUMPY: "BFloat16Storage",  # ml_dtypes' bfloat16: the same 2-byte layout as torch's
}
_DTYPE_BY_STORAGE = {name: dt for dt, name in _STORAGE_BY_DTYPE.items()}
# storages torch can write but dtorch has no dtype for: loading them is a clear error
_UNSUPPORTED_STORAGES = {
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
}
# every dtype name torch pickles (``torch.float32`` and its aliases); those dtorch lacks load as a clear error
_TORCH_DTYPE_NAMES = (
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32", "int",
    "int16", "short", "int8", "uint8", "bool", "uint16", "uint32", "uint64", "complex32", "complex64",
    "complex128", "cfloat", "cdouble", "chalf", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
    "float8_e5m2fnuz", "qint8", "quint8", "qint32",
)


# ----------------------------------------------------------------------------------------------------------------------
# the safe-globals list of weights-only loads


_safe_globals = []  # objects, or (object, "module.name") pairs, in the order they were added


def add_safe_globals(safe_globals):
    """Allow these globals in ``weights_only=True`` loads (classes may then be created and their state set).

    Args:
        safe_globals: a list of classes or functions, or ``(object, "module.qualified.name")`` pairs for an object
            that a file names by another path.

    >>> import argparse, io, dtorch
    >>> buffer = io.BytesIO(); dtorch.save({"args": argparse.Namespace(lr=0.1)}, buffer); _ = buffer.seek(0)
    >>> dtorch.serialization.add_safe_globals([argparse.Namespace])
    >>> dtorch.load(buffer)["args"].lr
    0.1
    >>> dtorch.serialization.clear_safe_globals()
    """
    for item in safe_globals:
        _check_safe_global(item)
    for item in safe_globals:
        if not any(_same_entry(item, known) for known in _safe_globals):
            _safe_globals.append(item)


def get_safe_globals():
    """The globals ``add_safe_globals`` allowed, as a list.

    >>> import dtorch
    >>> dtorch.serialization.get_safe_globals()
    []
    """
    return list(_safe_globals)


def clear_safe_globals():
    """Forget every global that ``add_safe_globals`` allowed.

    >>> import dtorch
    >>> dtorch.serialization.clear_safe_globals()
    """
    del _safe_globals[:]


class safe_globals:
    """A context manager that allows globals in ``weights_only=True`` loads inside its block.

    >>> import argparse, io, dtorch
    >>> buffer = io.BytesIO(); dtorch.save(argparse.Namespace(a=1), buffer); _ = buffer.seek(0)
    >>> with dtorch.serialization.safe_globals([argparse.Namespace]):
    ...     dtorch.load(buffer).a
    1
    """

    def __init__(self, safe_globals):
        for item in safe_globals:
            _check_safe_global(item)
        self.safe_globals = list(safe_globals)
        self._added = []

    def __enter__(self):
        self._added = [item for item in self.safe_globals
                       if not any(_same_entry(item, known) for known in _safe_globals)]
        _safe_globals.extend(self._added)
        return self

    def __exit__(self, *exc_info):
        for item in self._added:
            for index, known in enumerate(_safe_globals):
                if _same_entry(item, known):
                    del _safe_globals[index]
                    break
        return False


def get_unsafe_globals_in_checkpoint(f):
    """The globals a checkpoint names that a ``weights_only=True`` load would refuse, as ``"module.name"`` strings
    (neither allowed by default nor by ``add_safe_globals``). Reads the pickle's opcodes only; runs nothing.

    >>> import argparse, io, dtorch
    >>> buffer = io.BytesIO(); dtorch.save({"args": argparse.Namespace()}, buffer); _ = buffer.seek(0)
    >>> dtorch.serialization.get_unsafe_globals_in_checkpoint(buffer)
    ['argparse.Namespace']
    """
    if isinstance(f, (str, bytes, os.PathLike)):
        with open(os.fsdecode(f), "rb") as handle:
            return get_unsafe_globals_in_checkpoint(handle)
    with zipfile.ZipFile(f) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise RuntimeError("dtorch.load: the archive has no single '<name>/data.pkl' entry")
        data = archive.read(pickles[0])
    user, found, strings = _user_allowed(), [], []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            module, name = arg.split(" ", 1)
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            module, name = strings[-2], strings[-1]
        else:
            if isinstance(arg, str) and "UNICODE" in op.name:
                strings.append(arg)
            continue
        module, name = _python3_name(module, name)
        full = f"{module}.{name}"
        if full not in _DEFAULT_ALLOWED and full not in user and full not in found:
            found.append(full)
    return found


def _check_safe_global(item):
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValueError(
                f"Expected tuple of length 2 (global, str of callable full path), but got tuple of length: {len(item)}"
            )
        if type(item[1]) is not str:
            raise TypeError(f"Expected second item in tuple to be str of callable full path, but got: {type(item[1])}")
    elif getattr(item, "__module__", None) is None or getattr(item, "__qualname__", None) is None:
        raise TypeError(
            f"add_safe_globals expects classes or functions (or (object, 'module.name') pairs), got {item!r}"
        )


def _same_entry(a, b):
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and a[0] is b[0] and a[1] == b[1]
    return a is b


def _user_allowed():
    """``{"module.qualname": object}`` for the globals the user allowed."""
    allowed = {}
    for item in _safe_globals:
        if isinstance(item, tuple):
            allowed[item[1]] = item[0]
        else:
            allowed[f"{item.__module__}.{item.__qualname__}"] = item
    return allowed


# ----------------------------------------------------------------------------------------------------------------------
# the pickle encoder

# protocol-2 opcodes used below
_PROTO, _STOP, _POP, _POP_MARK = b"\x80", b".", b"0", b"1"
_NONE, _TRUE, _FALSE = b"N", b"\x88", b"\x89"
_BININT, _BININT1, _BININT2, _LONG1, _LONG4, _BINFLOAT = b"J", b"K", b"M", b"\x8a", b"\x8b", b"G"
_BINUNICODE, _MARK = b"X", b"("
_EMPTY_TUPLE, _TUPLE, _TUPLE1, _TUPLE2, _TUPLE3 = b")", b"t", b"\x85", b"\x86", b"\x87"
_EMPTY_LIST, _APPENDS, _EMPTY_DICT, _SETITEMS = b"]", b"e", b"}", b"u"
_GLOBAL, _REDUCE, _NEWOBJ, _BUILD, _BINPERSID = b"c", b"R", b"\x81", b"b", b"Q"
_BINPUT, _LONG_BINPUT, _BINGET, _LONG_BINGET = b"q", b"r", b"h", b"j"
_BATCH = 1000


class _Global:
    """A name written as a GLOBAL opcode: ``module.name`` on the loading side (``torch._utils._rebuild_tensor_v2``)."""

    __slots__ = ("module", "name")

    def __init__(self, module, name):
        self.module, self.name = module, name


class _Storage:
    """One storage to write: a flat C-contiguous host array and its key in ``archive/data/``."""

    __slots__ = ("key", "array", "location")

    def __init__(self, key, array, location):
        self.key, self.array, self.location = key, array, location


class _Encoder:
    """Writes a protocol-2 pickle without Python's pickler, so torch's global names need no torch at hand.

    dtorch's tensors, dtypes, devices and sizes are written under torch's names; any other object the way
    ``pickle`` writes it at protocol 2 (``__reduce_ex__(2)``, classes and functions by module and name).
    Memoises containers, objects and tensors by identity, so an object referenced twice (or a cycle) is loaded as
    one object; tensors that view one NumPy base array are written as views of one storage.
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
        elif isinstance(obj, np.generic) and obj.dtype.kind in "biufc":
            # NumPy numbers (from reductions without .item()) become the Python number they hold
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
            elif kind is list:
                write(_EMPTY_LIST)
                self._put(obj)
                self._save_items(obj, _APPENDS)
            elif kind is dict:
                write(_EMPTY_DICT)
                self._put(obj)
                self._save_items(obj.items(), _SETITEMS, pairs=True)
            elif kind is bytes:
                self._save_reduce(_Global("_codecs", "encode"), (obj.decode("latin1"), "latin1"))
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
            else:
                self._save_object(obj)

    def _save_int(self, value):
        write = self.out.write
        if 0 <= value < 256:
            write(_BININT1 + bytes((value,)))
        elif 0 <= value < 65536:
            write(_BININT2 + struct.pack("<H", value))
        elif -(1 << 31) <= value < (1 << 31):
            write(_BININT + struct.pack("<i", value))
        else:
            data = value.to_bytes((value.bit_length() >> 3) + 1, "little", signed=True)
            if len(data) < 256:
                write(_LONG1 + bytes((len(data),)) + data)
            else:  # over 2040 bits: pickle's LONG4, as torch.save (through pickle) writes it
                write(_LONG4 + struct.pack("<i", len(data)) + data)

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
            found = self.memo.get(id(items))
            if found is not None:  # a cycle through an element built this tuple already: use that one
                self.out.write(_POP * n)
                self._get(found[0])
                return
            self.out.write((_TUPLE1, _TUPLE2, _TUPLE3)[n - 1])
        else:
            self.out.write(_MARK)
            for item in items:
                self._save(item)
            found = self.memo.get(id(items))
            if found is not None:
                self.out.write(_POP_MARK)
                self._get(found[0])
                return
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
        self.out.write(_GLOBAL + f"{glob.module}\n{glob.name}\n".encode("utf-8"))
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

    # -- any other object, as pickle writes it at protocol 2

    def _save_object(self, obj):
        if isinstance(obj, type) or type(obj) in (types.FunctionType, types.BuiltinFunctionType):
            self._save_named(obj, obj.__qualname__)
            return
        reducer = copyreg.dispatch_table.get(type(obj))
        if reducer is not None:
            reduced = reducer(obj)
        else:
            reduce_ex = getattr(obj, "__reduce_ex__", None)
            if reduce_ex is None:
                raise pickle.PicklingError(f"Can't pickle {type(obj).__name__!r} object: {obj!r}")
            reduced = reduce_ex(2)
        if isinstance(reduced, str):  # the object is a module attribute of that name
            self._save_named(obj, reduced)
            return
        if not isinstance(reduced, tuple) or not 2 <= len(reduced) <= 6:
            raise pickle.PicklingError(f"{type(obj).__name__}.__reduce_ex__ must return a string or a 2 to 6 tuple")
        self._save_reduced(obj, *reduced)

    def _save_reduced(self, obj, func, args, state=None, listitems=None, dictitems=None, state_setter=None):
        if state_setter is not None:
            raise pickle.PicklingError(f"{type(obj).__name__}: a state_setter needs pickle protocol 5")
        if not isinstance(args, tuple):
            raise pickle.PicklingError(f"{type(obj).__name__}: the arguments of its __reduce__ must be a tuple")
        if getattr(func, "__name__", "") == "__newobj__":  # copyreg.__newobj__(cls, *args): NEWOBJ
            cls = args[0]
            if cls is not type(obj):
                raise pickle.PicklingError(f"{type(obj).__name__}: args[0] of __newobj__ has the wrong class")
            self._save(cls)
            self._save_tuple_unmemoised(args[1:])
            self.out.write(_NEWOBJ)
        elif getattr(func, "__name__", "") == "__newobj_ex__":
            raise pickle.PicklingError(f"{type(obj).__name__} needs keyword arguments to be created (protocol 4)")
        else:
            self._save(func)
            self._save_tuple_unmemoised(args)
            self.out.write(_REDUCE)
        found = self.memo.get(id(obj))
        if found is not None:  # its arguments referred back to it: keep the object they built
            self.out.write(_POP)
            self._get(found[0])
        else:
            self._put(obj)
        if listitems is not None:
            self._save_items(listitems, _APPENDS)
        if dictitems is not None:
            self._save_items(dictitems, _SETITEMS, pairs=True)
        if state is not None:
            self._save(state)
            self.out.write(_BUILD)

    def _save_named(self, obj, qualname):
        """A class or function, written as the module attribute it is (protocol 2 has no dotted names)."""
        module_name = getattr(obj, "__module__", None)
        if module_name is None or "<locals>" in qualname or "<lambda>" in qualname:
            raise pickle.PicklingError(f"Can't pickle {obj!r}: it is not a module attribute (a local or lambda)")
        try:
            found = importlib.import_module(module_name)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
        if found is not obj:
            raise pickle.PicklingError(f"Can't pickle {obj!r}: it's not the same object as {module_name}.{qualname}")
        if "." in qualname:
            parent_name, _, last = qualname.rpartition(".")
            parent = importlib.import_module(module_name)
            for part in parent_name.split("."):
                parent = getattr(parent, part)
            self._save_reduce(_Global("__builtin__", "getattr"), (parent, last))
            self._put(obj)
            return
        # protocol 2 writes Python 3 names under their Python 2 spelling, as pickle does (torch reads both)
        if (module_name, qualname) in _compat_pickle.REVERSE_NAME_MAPPING:
            module_name, qualname = _compat_pickle.REVERSE_NAME_MAPPING[(module_name, qualname)]
        elif module_name in _compat_pickle.REVERSE_IMPORT_MAPPING:
            module_name = _compat_pickle.REVERSE_IMPORT_MAPPING[module_name]
        self._save_global(_Global(module_name, qualname))

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
            elif _pickles_its_dict(item):
                stack.extend(vars(item).values())  # a module's parameters, an object's tensors

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
                if not array.size:
                    return storage, 0, shape, stride
                end = offset + sum((n - 1) * st for n, st in zip(shape, stride)) + 1
                if first <= offset and end <= first + storage.array.size:
                    return storage, offset - first, shape, stride
                # a view the span walk did not reach (inside an object's slots, say): a storage of its own
            host = np.ascontiguousarray(array)
        else:  # a CuPy array: copied to the host as a storage of its own
            location = str(_backend.device_of(array))
            host = np.ascontiguousarray(array.get())
        if host.dtype.byteorder == ">":
            host = host.astype(host.dtype.newbyteorder("<"))
        storage = _Storage(str(len(self.storages)), host.reshape(-1), location)
        self.storages.append(storage)
        return storage, 0, shape, _contiguous_strides(shape)


def _pickles_its_dict(obj):
    """Whether pickle writes ``obj``'s ``__dict__`` as its state (a plain instance: not a class, module or
    function, and no ``__reduce__``/``__getstate__`` of its own), so its tensors are what will be saved."""
    kind = type(obj)
    if kind.__module__ == "builtins" or isinstance(obj, (type, types.ModuleType)) \
            or not isinstance(getattr(obj, "__dict__", None), dict):
        return False  # functions, methods, classes and modules are pickled by name
    default_getstate = getattr(object, "__getstate__", None)
    return (kind.__reduce_ex__ is object.__reduce_ex__ and kind.__reduce__ is object.__reduce__
            and getattr(kind, "__getstate__", default_getstate) is default_getstate)


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


def _write_archive(fileobj, pickled, storages):
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        _write_entry(archive, "data.pkl", pickled)
        _write_entry(archive, ".format_version", b"1")
        _write_entry(archive, ".storage_alignment", str(_ALIGNMENT).encode())
        _write_entry(archive, "byteorder", b"little")
        for storage in storages:
            _write_entry(archive, f"data/{storage.key}", storage.array)
        _write_entry(archive, "version", b"3\n")


def _write_entry(archive, name, payload):
    """Write one stored entry whose data starts on a 64-byte boundary (torch mmaps storages at aligned offsets)."""
    name = f"{_RECORD}/{name}"
    if isinstance(payload, np.ndarray):
        # the bytes (ml_dtypes' bfloat16 has no buffer-protocol format, so view it as uint8 first)
        data = memoryview(payload.reshape(-1).view(np.uint8)) if payload.size else memoryview(b"")
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




def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Save an object to a file that ``dtorch.load`` and ``torch.load`` read, as ``torch.save`` does.

    Args:
        obj: anything ``torch.save`` saves: tensors, ``state_dict()``\\ s of modules, optimizers and schedulers,
            containers of them, NumPy arrays, picklable objects (``argparse.Namespace``, a whole ``nn.Module``).
            Objects other than tensors and plain containers need ``weights_only=False`` (or ``add_safe_globals``)
            to be loaded again.
        f: a path (``str`` or ``os.PathLike``), written atomically (see the module docstring: temporary file,
            fsync, rename; the file keeps its mode); or a writable binary file-like object, written directly.
        pickle_module, pickle_protocol, _use_new_zipfile_serialization, _disable_byteorder_record: accepted for
            PyTorch compatibility; the format is always the zip layout with a protocol-2 pickle (which every
            reader loads, torch's weights-only one included).

    Raises:
        pickle.PicklingError, TypeError: an object pickle cannot write (a lambda, an open file), before the target
            is touched.
        PermissionError: a target file the user may not write.

    >>> import dtorch, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
    >>> dtorch.save({"w": dtorch.ones(2), "epoch": 3}, path)
    >>> dtorch.load(path)["epoch"]
    3
    """
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("dtorch.save writes its own pickle (protocol 2, as torch does); leave pickle_module as None")
    if isinstance(pickle_protocol, bool) or pickle_protocol not in range(2, pickle.HIGHEST_PROTOCOL + 1):
        raise ValueError(f"pickle_protocol must be an int from 2 to {pickle.HIGHEST_PROTOCOL}, got {pickle_protocol!r}")
    encoder = _Encoder()
    pickled = encoder.dump(obj)  # everything that can fail on the object fails here, before the file is touched
    if isinstance(f, (str, bytes, os.PathLike)):
        # through a symlink, replace the file it points to (as writing through it would), not the link
        _save_to_path(pickled, encoder.storages, os.path.realpath(os.fsdecode(f)))
    else:
        _write_archive(f, pickled, encoder.storages)


def _save_to_path(pickled, storages, path):
    folder, name = os.path.split(path)
    if not os.path.isdir(folder or "."):
        raise RuntimeError(f"Parent directory {folder} does not exist.")  # PyTorch's message
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if stat.S_ISDIR(existing.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not _may_write(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        if not stat.S_ISREG(existing.st_mode):  # a FIFO or a device (/dev/null): write through it, as open() does
            with open(path, "wb") as handle:
                _write_archive(handle, pickled, storages)
            return
    _remove_stale_temporaries(folder, name)
    try:
        fd, tmp = _create_temporary(folder, name, 0o600 if existing is not None else 0o666)
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        if existing is None:  # as open(path, "wb") would: the target named, not the temporary
            raise OSError(error.errno, error.strerror, path) from None
        _write_in_place(pickled, storages, path, f"the folder {folder!r} is not writable")
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_archive(handle, pickled, storages)
            handle.flush()
            if existing is not None:
                _copy_mode_and_owner(handle.fileno(), existing)
            os.fsync(handle.fileno())
        try:
            os.replace(tmp, path)
        except PermissionError:
            if existing is None:
                raise
            # another user's file in a sticky folder (/tmp): it may be written, not replaced
            os.unlink(tmp)
            _write_in_place(pickled, storages, path, f"{path!r} belongs to another user in a sticky folder")
            return
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _may_write(path):
    """Whether this process may open ``path`` for writing (root may, as open() lets it)."""
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK, effective_ids=True)
    return os.access(path, os.W_OK)


def _write_in_place(pickled, storages, path, reason):
    # O_WRONLY without O_TRUNC or O_CREAT: the file's inode, mode and owner stay; the tail is cut after writing
    fd = os.open(path, os.O_WRONLY)
    with os.fdopen(fd, "wb") as handle:
        _write_archive(handle, pickled, storages)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())
    warnings.warn(
        f"dtorch.save: {reason}, so {path!r} was overwritten in place, not atomically: a crash during such a save "
        "leaves the file damaged. Save where this process may create files for crash-safe saves.",
        UserWarning,
        stacklevel=4,
    )


def _copy_mode_and_owner(fd, existing):
    os.fchmod(fd, stat.S_IMODE(existing.st_mode))
    if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        # the replaced file's owner and group, where this process may set them (root, or a group it is in)
        for uid, gid in ((existing.st_uid, existing.st_gid), (-1, existing.st_gid)):
            try:
                os.fchown(fd, uid, gid)
                break
            except OSError:
                continue
        os.fchmod(fd, stat.S_IMODE(existing.st_mode))  # chown clears setuid/setgid bits


def _host_tag():
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _temporary_prefix(name):
    # the target's name, unless that would make the temporary's name too long for the file system
    return "." + (name if len(name.encode("utf-8", "surrogateescape")) <= 160
                  else hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest())


def _create_temporary(folder, name, mode):
    """A new file ``.<name>.<pid>.<host>.<random>.tmp`` in ``folder``, created with ``mode`` less the umask."""
    prefix = _temporary_prefix(name)
    for _ in range(100):
        tmp = os.path.join(folder, f"{prefix}.{os.getpid()}.{_host_tag()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a unique temporary file", folder)


def _remove_stale_temporaries(folder, name):
    """Remove the temporaries that saves to ``folder/name`` killed mid-write left: those of this host whose process
    is gone, and other hosts' that are over an hour old (a save still running keeps its file)."""
    prefix = _temporary_prefix(name)
    host = _host_tag()
    try:
        entries = os.scandir(folder or ".")
    except OSError:
        return
    with entries:
        for entry in entries:
            parts = entry.name.rsplit(".", 4)
            if len(parts) != 5 or parts[0] != prefix or parts[4] != "tmp" or not parts[1].isdigit():
                continue
            pid, their_host = int(parts[1]), parts[2]
            if their_host == host:
                if pid == os.getpid() or _process_exists(pid):
                    continue
            else:
                try:
                    if time.time() - entry.stat().st_mtime < _FOREIGN_TEMPORARY_AGE:
                        continue
                except OSError:
                    continue
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _fsync_folder(folder):
    # makes the rename itself durable; not every platform can open a folder
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------------------------------------------
# loading: what torch's global names stand for


class _StorageType:
    """What ``torch.FloatStorage`` (or ``torch.storage.UntypedStorage``) resolves to while loading. Immutable: one
    instance serves every load."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", dtype)

    def __setattr__(self, key, value):
        raise AttributeError(f"{self.name} is read-only")

    def __repr__(self):
        return f"torch.{self.name}"


class _UnsupportedDtype:
    """A torch dtype dtorch does not have: loading a tensor of it is a clear error."""

    __slots__ = ("name",)

    def __init__(self, name):
        object.__setattr__(self, "name", name)

    def __setattr__(self, key, value):
        raise AttributeError(f"torch.{self.name} is read-only")

    def __repr__(self):
        return f"torch.{self.name}"


class _LoadedStorage:
    """A storage read from the archive: a flat array on its target device."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def _torch_dtype(name):
    found = getattr(_backend, name, None)
    return found if isinstance(found, _backend.dtype) else _UnsupportedDtype(name)


def _parameter_class():
    # the nn layer sits above this module: use its Parameter only once it has been imported
    return getattr(sys.modules.get("dtorch.nn"), "Parameter", None)


def _wrap(array, requires_grad):
    tensor = Tensor._from_array(array, None)
    tensor.requires_grad = bool(requires_grad)
    return tensor


def _make_parameter(data, requires_grad=True):
    if not isinstance(data, Tensor):
        raise pickle.UnpicklingError(f"dtorch.load: a parameter's data must be a tensor, got {type(data).__name__}")
    parameter = _parameter_class()
    if parameter is not None:
        return parameter(data, requires_grad=bool(requires_grad))
    return _wrap(data._array, requires_grad)


def _checked_layout(flat, offset, size, stride):
    """``(offset, size, stride)`` of a tensor record, refused unless it stays inside its storage."""
    def ints(values):
        return isinstance(values, tuple) and all(type(v) is int for v in values)

    if type(offset) is not int or not ints(tuple(size) if isinstance(size, (tuple, list)) else size) \
            or not ints(tuple(stride) if isinstance(stride, (tuple, list)) else stride):
        raise pickle.UnpicklingError(
            f"dtorch.load: a tensor record needs an int offset and int tuples for size and stride, got "
            f"offset={offset!r} size={size!r} stride={stride!r}"
        )
    size, stride = tuple(size), tuple(stride)
    layout = f"size={list(size)} stride={list(stride)} offset={offset}"
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"dtorch.load: tensor record with {len(size)} sizes but {len(stride)} strides")
    if offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"dtorch.load: negative size, stride or offset in a tensor record ({layout})")
    if any(n >= 1 << 63 for n in size) or any(s >= 1 << 63 for s in stride):
        raise pickle.UnpicklingError(f"dtorch.load: a size or stride overflows int64 in a tensor record ({layout})")
    numel = 1
    for n in size:
        numel *= n
    if numel == 0:
        if offset > flat.size:
            raise pickle.UnpicklingError(f"dtorch.load: offset past the end of a {flat.size}-element storage "
                                         f"({layout})")
        return offset, size, stride
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    # bounds are checked before any strided view: a crafted file must not reach memory outside its storage
    if last >= flat.size:
        raise pickle.UnpicklingError(
            f"dtorch.load: tensor of size {list(size)} stride {list(stride)} offset {offset} overruns its storage "
            f"of {flat.size} elements"
        )
    if numel > last - offset + 1 and numel > _MAX_REPEATED_ELEMENTS:
        raise pickle.UnpicklingError(
            f"dtorch.load: a tensor record repeats {last - offset + 1} stored elements as {numel} ({layout}); "
            f"more than 2**40 elements through zero strides is refused as a crafted record"
        )
    return offset, size, stride


def _tensor_from_storage(storage, offset, size, stride, requires_grad):
    if not isinstance(storage, _LoadedStorage):
        raise pickle.UnpicklingError(f"dtorch.load: a tensor record's storage is a {type(storage).__name__}")
    flat = storage.array
    offset, size, stride = _checked_layout(flat, offset, size, stride)
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
        array = xp.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=tuple(s * itemsize for s in stride))
    return _wrap(array, requires_grad)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _tensor_from_storage(storage, storage_offset, size, stride, False)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    return _tensor_from_storage(storage, storage_offset, size, stride, requires_grad)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if isinstance(dtype, _UnsupportedDtype):
        raise pickle.UnpicklingError(f"dtorch.load: the file holds a tensor of torch.{dtype.name}, a dtype dtorch does "
                                     "not have")
    if not isinstance(dtype, _backend.dtype) or not isinstance(storage, _LoadedStorage):
        raise pickle.UnpicklingError("dtorch.load: malformed _rebuild_tensor_v3 record")
    data = storage.array
    if data.nbytes % dtype.numpy_dtype.itemsize:
        raise pickle.UnpicklingError("dtorch.load: storage size is not a multiple of the dtype's size")
    return _tensor_from_storage(_LoadedStorage(data.view(dtype.numpy_dtype)), storage_offset, size, stride,
                                requires_grad)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    return _make_parameter(data, requires_grad)


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    if state:
        raise pickle.UnpicklingError("dtorch.load: a parameter with Python attributes (state) is not supported")
    return _make_parameter(data, requires_grad)


def _rebuild_from_type_v2(func, new_type, args, state):
    """torch's rebuild of a tensor through its class: only plain tensors and parameters, without extra state."""
    if func not in (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter) \
            or not isinstance(args, tuple):
        raise pickle.UnpicklingError(f"dtorch.load: _rebuild_from_type_v2 of {func!r} is not supported")
    tensor = func(*args)
    if state:
        raise pickle.UnpicklingError("dtorch.load: a tensor with Python attributes (state) is not supported")
    if new_type is Tensor:
        return tensor
    if new_type is _ParameterName or (new_type is not None and new_type is _parameter_class()):
        return _make_parameter(tensor, tensor.requires_grad)
    raise pickle.UnpicklingError(f"dtorch.load: a tensor subclass {new_type!r} is not supported")


def _unsupported_rebuilder(name, what):
    def refuse(*args, **kwargs):
        raise pickle.UnpicklingError(f"dtorch.load: the file holds {what} (torch._utils.{name}); dtorch has none")

    refuse.__name__ = name
    return refuse


class _ParameterName:
    """What ``torch.nn.parameter.Parameter`` stands for in a weights-only load: creating one makes a dtorch
    ``nn.Parameter`` (a plain tensor needing grad when ``dtorch.nn`` is not imported)."""

    def __new__(cls, data=None, requires_grad=True):
        return _make_parameter(data, requires_grad)


def _make_device(kind, index=None):
    return _backend.device(kind, index)


def _decode_bytes(text, encoding="latin1"):
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"dtorch.load: refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _make_bytearray(data=b"", *args):
    # never bytearray(n): a crafted count would allocate that many bytes
    if not isinstance(data, (bytes, bytearray, str)):
        raise pickle.UnpicklingError(f"dtorch.load: bytearray from a {type(data).__name__} is refused")
    return bytearray(data, *args)


def _refs(obj):
    return sys.getrefcount(obj)


def _fresh_refs():
    probe = object()  # held the way the interpreter holds a call's result: one local name
    return _refs(probe)


_FRESH_REFS = _fresh_refs() if hasattr(sys, "getrefcount") else -1


def _build_default_allowed():
    """``{"module.name": object}`` that a weights-only load resolves, and the set of those that may be called."""
    callables = {
        "collections.OrderedDict": collections.OrderedDict,
        "collections.Counter": collections.Counter,
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.complex": complex,
        "builtins.bytearray": _make_bytearray,
        "_codecs.encode": _decode_bytes,
        "torch.Size": Size,
        "torch.device": _make_device,
        "torch.nn.parameter.Parameter": _ParameterName,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    }
    for name, what in (("_rebuild_qtensor", "a quantized tensor"), ("_rebuild_sparse_tensor", "a sparse tensor"),
                       ("_rebuild_meta_tensor_no_storage", "a meta tensor"),
                       ("_rebuild_nested_tensor", "a nested tensor"),
                       ("_rebuild_wrapper_subclass", "a tensor subclass"),
                       ("_rebuild_device_tensor_from_numpy", "a tensor of another device type"),
                       ("_rebuild_device_tensor_from_cpu_tensor", "a tensor of another device type")):
        callables[f"torch._utils.{name}"] = _unsupported_rebuilder(name, what)
    values = {"torch.Tensor": Tensor,
              "torch.storage.UntypedStorage": _StorageType("UntypedStorage", np.dtype(np.uint8))}
    for name, numpy_dtype in _DTYPE_BY_STORAGE.items():
        values[f"torch.{name}"] = _StorageType(name, numpy_dtype)
    for name in _UNSUPPORTED_STORAGES:
        values[f"torch.{name}"] = _StorageType(name, None)
    for name in _TORCH_DTYPE_NAMES:
        values[f"torch.{name}"] = _torch_dtype(name)
    return {**values, **callables}, frozenset(id(obj) for obj in callables.values())


_DEFAULT_ALLOWED, _DEFAULT_CALLABLE_IDS = _build_default_allowed()
# torch names that only files holding tensors dtorch does not have (sparse, quantized) use: a clear error at the name
_MISSING_FEATURES = {
    "torch.serialization._get_layout": "a sparse tensor",
    **{f"torch.{name}": "a sparse tensor" for name in ("sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr",
                                                         "sparse_bsc")},
    **{f"torch.{name}": "a quantized tensor" for name in ("per_tensor_affine", "per_tensor_symmetric",
                                                            "per_channel_affine", "per_channel_symmetric",
                                                            "per_channel_affine_float_qparams")},
}


def _refuse_missing_feature(full):
    what = _MISSING_FEATURES.get(full)
    if what is not None:
        raise pickle.UnpicklingError(f"dtorch.load: the file holds {what} ({full}), which dtorch does not have")
_BLOCKED_MODULES = ("sys", "os", "posix", "nt")


def _python3_name(module, name):
    """A global's Python 3 name for its Python 2 spelling (``__builtin__.set`` -> ``builtins.set``), as pickle does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


# torch classes that are another class under a different name (MultiheadAttention's output projection)
_TORCH_ALIASES = {("torch.nn.modules.linear", "NonDynamicallyQuantizableLinear"): ("dtorch.nn", "Linear")}


def _dtorch_paths(module, name):
    """The dtorch names a torch global may stand for: ``torch.nn.modules.linear.Linear`` ->
    ``dtorch.nn.modules.linear.Linear``, then ``dtorch.nn.Linear``."""
    paths = [("d" + module, name)]
    if (module, name) in _TORCH_ALIASES:
        paths.insert(0, _TORCH_ALIASES[(module, name)])
    for torch_prefix, dtorch_module in (("torch.nn.modules", "dtorch.nn"), ("torch.optim", "dtorch.optim"),
                                        ("torch.nn.parameter", "dtorch.nn")):
        if module.startswith(torch_prefix) and "." not in name:
            paths.append((dtorch_module, name))
    return paths


def _torch_equivalent(module, name):
    """dtorch's object for a torch global that a ``weights_only=False`` load meets (imports dtorch, never torch)."""
    for candidate_module, candidate_name in _dtorch_paths(module, name):
        try:
            found = importlib.import_module(candidate_module)
        except ImportError:
            continue
        for part in candidate_name.split("."):
            found = getattr(found, part, None)
            if found is None:
                break
        if found is not None:
            return found
    return None


# ----------------------------------------------------------------------------------------------------------------------
# loading: the weights-only interpreter

_UNSAFE_MESSAGE = (
    "Re-running `dtorch.load` with `weights_only` set to `False` will likely succeed, but it can result in "
    "arbitrary code execution. Do it only if you got the file from a trusted source."
)


def _weights_only_error(message):
    """pickle.UnpicklingError with PyTorch's wording around ``message``."""
    if "was not an allowed global by default" in message:
        text = (
            "Weights only load failed. This file can still be loaded, to do so you have two options, do those steps "
            f"only if you trust the source of the checkpoint. \n\t(1) {_UNSAFE_MESSAGE}\n\t(2) Alternatively, to load "
            "with `weights_only=True` please check the recommended steps in the following error message."
            f"\n\tWeightsUnpickler error: {message}"
        )
    else:
        text = f"Weights only load failed. {_UNSAFE_MESSAGE}\n\nWeightsUnpickler error: {message}"
    return pickle.UnpicklingError(text)


def _opcode_name(code):
    op = pickletools.code2op.get(chr(code))
    return f"{op.name} ({code:#04x})" if op is not None else f"{code:#04x}"


class _WeightsOnlyUnpickler:
    """A pickle interpreter that builds data and calls only allowlisted callables (see the module docstring).

    It never calls ``find_class`` or ``__setstate__`` of anything the file did not create: ``BUILD`` and the
    container-filling opcodes apply only to objects created during this load, so the globals a file names (dtypes,
    storage types, classes) come out of it unchanged.
    """

    def __init__(self, data, persistent_load, encoding="utf-8"):
        self._file = io.BytesIO(data)
        self._persistent_load = persistent_load
        self._encoding = encoding
        self._user = _user_allowed()
        self._names = {}  # id(global) -> its name, for messages and for telling globals apart
        self._owned = {}  # id -> object, for the mutable objects this load created (kept alive: ids stay unique)

    # -- reading

    def _read(self, n):
        data = self._file.read(n)
        if len(data) < n:
            raise _weights_only_error("the pickle ends in the middle of an opcode (a truncated or damaged file)")
        return data

    def _readline(self):
        line = self._file.readline()
        if not line.endswith(b"\n"):
            raise _weights_only_error("the pickle ends in the middle of a GLOBAL opcode")
        return line[:-1]

    def _own(self, obj):
        self._owned[id(obj)] = obj
        return obj

    def _describe(self, obj):
        name = self._names.get(id(obj))
        return f"the global {name}" if name is not None else f"an object of type {type(obj).__name__}"

    # -- globals and calls

    def _find_global(self, module, name):
        module, name = _python3_name(module, name)
        full = f"{module}.{name}"
        if module in _BLOCKED_MODULES:
            raise _weights_only_error(f"Trying to load unsupported GLOBAL {full} whose module {module} is blocked.")
        found = _DEFAULT_ALLOWED.get(full, _MISSING)
        if found is _MISSING:
            found = self._user.get(full, _MISSING)
        if found is _MISSING:
            _refuse_missing_feature(full)
        if found is _MISSING and (module == "torch" or module.startswith("torch.")):
            # the dtorch object that stands for it, if the user allowed that (looked up among imported modules)
            for dtorch_module, dtorch_name in _dtorch_paths(module, name):
                candidate = sys.modules.get(dtorch_module, _MISSING)
                for part in dtorch_name.split("."):
                    candidate = getattr(candidate, part, _MISSING)
                if candidate is not _MISSING and any(candidate is allowed for allowed in self._user.values()):
                    found = candidate
                    break
        if found is _MISSING:
            shown = full[len("builtins."):] if full.startswith("builtins.") else full
            # a torch name is allowed through the dtorch object that stands for it
            allow = ".".join(_dtorch_paths(module, name)[-1]) if module.startswith("torch.") else shown
            raise _weights_only_error(
                f"Unsupported global: GLOBAL {shown} was not an allowed global by default. Please use "
                f"`dtorch.serialization.add_safe_globals([{allow}])` or the "
                f"`dtorch.serialization.safe_globals([{allow}])` context manager to allowlist this global if you "
                "trust this class/function."
            )
        self._names.setdefault(id(found), full)
        return found

    def _may_call(self, func):
        if id(func) in _DEFAULT_CALLABLE_IDS:
            return True
        return any(func is allowed for allowed in self._user.values())

    def _created(self, result, refs):
        # A call's result is this load's own only when nothing else refers to it: a function that returns a
        # cached or global object (a singleton) must not let BUILD or SETITEM change that object for the
        # process. The loop counts the references while it holds the result in one local name, as
        # _fresh_refs holds its probe.
        if refs <= _FRESH_REFS and id(result) not in self._names:
            self._owned[id(result)] = result

    def _build(self, inst, state):
        if id(inst) not in self._owned:
            raise _weights_only_error(
                f"BUILD on {self._describe(inst)} is refused: a weights-only load sets the state only of objects "
                "the file created, never of a global or shared object"
            )
        kind = type(inst)
        if kind is collections.OrderedDict or kind is collections.Counter:
            if not isinstance(state, dict) or not all(type(key) is str for key in state):
                raise _weights_only_error(f"BUILD of an {kind.__name__} needs a dict of attributes, got {state!r:.80}")
            inst.__dict__.update(state)
        elif isinstance(inst, Tensor):
            if state:
                raise _weights_only_error("BUILD with state on a tensor (Python attributes) is not supported")
        elif any(kind is allowed for allowed in self._user.values()):
            setstate = getattr(inst, "__setstate__", None)
            if setstate is not None:
                setstate(state)
                return
            slotstate = None
            if isinstance(state, tuple) and len(state) == 2:
                state, slotstate = state
            if state:
                inst.__dict__.update(state)
            if slotstate:
                for key, value in slotstate.items():
                    setattr(inst, key, value)
        else:
            raise _weights_only_error(
                f"Can only build Tensor, Parameter, OrderedDict or types allowlisted via `add_safe_globals`, but got "
                f"{kind}"
            )

    def _check_target(self, target, kinds, opcode):
        if type(target) not in kinds:
            names = ", ".join(kind.__name__ for kind in kinds)
            raise _weights_only_error(f"{opcode} applies only to {names}, but got {type(target)}")
        if id(target) not in self._owned:
            raise _weights_only_error(f"{opcode} on {self._describe(target)}, which the file did not create")

    # -- the loop

    def load(self):
        try:
            return self._run()
        except IndexError:
            raise _weights_only_error("malformed pickle: an opcode found too few values on its stack") from None
        except (TypeError, ValueError, UnicodeDecodeError) as error:  # a call or key the data cannot make
            raise _weights_only_error(f"malformed pickle: {type(error).__name__}: {error}") from error

    def _run(self):
        read, read1 = self._read, self._file.read
        stack, metastack, memo = [], [], {}
        dicts = (dict, collections.OrderedDict, collections.Counter)
        while True:
            key = read1(1)
            if not key:
                raise _weights_only_error("the pickle ends before its STOP opcode (a truncated or damaged file)")
            op = key[0]
            if op == 0x71:  # BINPUT
                memo[read(1)[0]] = stack[-1]
            elif op == 0x68:  # BINGET
                index = read(1)[0]
                if index not in memo:
                    raise _weights_only_error(f"memo key {index} is read before it is written")
                stack.append(memo[index])
            elif op == 0x28:  # MARK
                metastack.append(stack)
                stack = []
            elif op == 0x58:  # BINUNICODE
                stack.append(str(read(struct.unpack("<I", read(4))[0]), "utf-8", "surrogatepass"))
            elif op == 0x4B:  # BININT1
                stack.append(read(1)[0])
            elif op == 0x4D:  # BININT2
                stack.append(struct.unpack("<H", read(2))[0])
            elif op == 0x4A:  # BININT
                stack.append(struct.unpack("<i", read(4))[0])
            elif op == 0x74:  # TUPLE
                items, stack = stack, metastack.pop()
                stack.append(tuple(items))
            elif op == 0x85:  # TUPLE1
                stack[-1] = (stack[-1],)
            elif op == 0x86:  # TUPLE2
                stack[-2:] = [(stack[-2], stack[-1])]
            elif op == 0x87:  # TUPLE3
                stack[-3:] = [(stack[-3], stack[-2], stack[-1])]
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
            elif op == 0x63:  # GLOBAL
                module = self._readline().decode("utf-8")
                name = self._readline().decode("utf-8")
                stack.append(self._find_global(module, name))
            elif op == 0x93:  # STACK_GLOBAL
                name, module = stack.pop(), stack.pop()
                if type(module) is not str or type(name) is not str:
                    raise _weights_only_error("STACK_GLOBAL needs two strings")
                stack.append(self._find_global(module, name))
            elif op == 0x52:  # REDUCE
                args = stack.pop()
                func = stack[-1]
                if not self._may_call(func) or not isinstance(args, tuple):
                    raise _weights_only_error(f"Trying to call reduce for unrecognized function {func!r}")
                result = func(*args)
                refs = _refs(result)  # before any other reference is taken
                self._created(result, refs)
                stack[-1] = result
                del result
            elif op == 0x81 or op == 0x92:  # NEWOBJ, NEWOBJ_EX
                kwargs = stack.pop() if op == 0x92 else {}
                args = stack.pop()
                cls = stack.pop()
                if not isinstance(cls, type) or not self._may_call(cls) or not isinstance(args, tuple) \
                        or not isinstance(kwargs, dict):
                    raise _weights_only_error(
                        "Can only create new object for nn.Parameter or classes allowlisted via `add_safe_globals` "
                        f"but got {cls!r}"
                    )
                result = cls(*args, **kwargs) if cls is _ParameterName else cls.__new__(cls, *args, **kwargs)
                refs = _refs(result)  # before any other reference is taken
                self._created(result, refs)
                stack.append(result)
                del result
            elif op == 0x62:  # BUILD
                state = stack.pop()
                self._build(stack[-1], state)
            elif op == 0x51:  # BINPERSID
                pid = stack.pop()
                if type(pid) is not tuple or not pid or pid[0] not in ("storage", b"storage"):
                    raise _weights_only_error(f"Only persistent_load of storage is allowed, but got {pid!r:.80}")
                stack.append(self._persistent_load(pid))
            elif op == 0x88:  # NEWTRUE
                stack.append(True)
            elif op == 0x89:  # NEWFALSE
                stack.append(False)
            elif op == 0x4E:  # NONE
                stack.append(None)
            elif op == 0x47:  # BINFLOAT
                stack.append(struct.unpack(">d", read(8))[0])
            elif op == 0x8A or op == 0x8B:  # LONG1, LONG4
                n = read(1)[0] if op == 0x8A else struct.unpack("<i", read(4))[0]
                if n < 0:
                    raise _weights_only_error("LONG4 with a negative length")
                stack.append(int.from_bytes(read(n), "little", signed=True))
            elif op == 0x5D:  # EMPTY_LIST
                stack.append(self._own([]))
            elif op == 0x7D:  # EMPTY_DICT
                stack.append(self._own({}))
            elif op == 0x8F:  # EMPTY_SET
                stack.append(self._own(set()))
            elif op == 0x6C:  # LIST
                items, stack = stack, metastack.pop()
                stack.append(self._own(items))
            elif op == 0x64:  # DICT
                items, stack = stack, metastack.pop()
                if len(items) % 2:
                    raise _weights_only_error("DICT with an odd number of items")
                stack.append(self._own({items[i]: items[i + 1] for i in range(0, len(items), 2)}))
            elif op == 0x61:  # APPEND
                item = stack.pop()
                self._check_target(stack[-1], (list,), "APPEND")
                stack[-1].append(item)
            elif op == 0x65:  # APPENDS
                items, stack = stack, metastack.pop()
                self._check_target(stack[-1], (list,), "APPENDS")
                stack[-1].extend(items)
            elif op == 0x73:  # SETITEM
                value, name = stack.pop(), stack.pop()
                self._check_target(stack[-1], dicts, "SETITEM")
                stack[-1][name] = value
            elif op == 0x75:  # SETITEMS
                items, stack = stack, metastack.pop()
                self._check_target(stack[-1], dicts, "SETITEMS")
                if len(items) % 2:
                    raise _weights_only_error("SETITEMS with an odd number of items")
                target = stack[-1]
                for i in range(0, len(items), 2):
                    target[items[i]] = items[i + 1]
            elif op == 0x90:  # ADDITEMS
                items, stack = stack, metastack.pop()
                self._check_target(stack[-1], (set,), "ADDITEMS")
                stack[-1].update(items)
            elif op == 0x91:  # FROZENSET
                items, stack = stack, metastack.pop()
                stack.append(frozenset(items))
            elif op == 0x72:  # LONG_BINPUT
                memo[struct.unpack("<I", read(4))[0]] = stack[-1]
            elif op == 0x94:  # MEMOIZE
                memo[len(memo)] = stack[-1]
            elif op == 0x6A:  # LONG_BINGET
                index = struct.unpack("<I", read(4))[0]
                if index not in memo:
                    raise _weights_only_error(f"memo key {index} is read before it is written")
                stack.append(memo[index])
            elif op == 0x30:  # POP (a mark when the stack is empty, as pickle does)
                if stack:
                    stack.pop()
                else:
                    stack = metastack.pop()
            elif op == 0x31:  # POP_MARK
                stack = metastack.pop()
            elif op == 0x32:  # DUP
                stack.append(stack[-1])
            elif op == 0x8C:  # SHORT_BINUNICODE
                stack.append(str(read(read(1)[0]), "utf-8", "surrogatepass"))
            elif op == 0x8D:  # BINUNICODE8
                stack.append(str(read(struct.unpack("<Q", read(8))[0]), "utf-8", "surrogatepass"))
            elif op in (0x42, 0x43, 0x8E, 0x96):  # BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                length = {0x42: "<I", 0x43: "<B", 0x8E: "<Q", 0x96: "<Q"}[op]
                data = read(struct.unpack(length, read(struct.calcsize(length)))[0])
                stack.append(bytearray(data) if op == 0x96 else data)
            elif op == 0x55 or op == 0x54:  # SHORT_BINSTRING, BINSTRING (Python 2 str)
                n = read(1)[0] if op == 0x55 else struct.unpack("<i", read(4))[0]
                if n < 0:
                    raise _weights_only_error("BINSTRING with a negative length")
                data = read(n)
                stack.append(data if self._encoding == "bytes" else data.decode(self._encoding, "strict"))
            elif op == 0x80:  # PROTO: any protocol; the opcodes decide what loads
                read(1)
            elif op == 0x95:  # FRAME: the length of the next frame, nothing to do
                read(8)
            elif op == 0x2E:  # STOP
                if len(stack) != 1 or metastack:
                    raise _weights_only_error("malformed pickle: STOP with an unbalanced stack")
                return stack.pop()
            else:
                raise _weights_only_error(f"Unsupported operand {_opcode_name(op)}")


_MISSING = object()


class _FullUnpickler(pickle.Unpickler):
    """``weights_only=False``: Python's unpickler, with torch's names read as dtorch's (and storages loaded)."""

    def __init__(self, file, persistent_load, encoding="utf-8"):
        super().__init__(file, encoding=encoding)
        self._storage = persistent_load

    def find_class(self, module, name):
        module, name = _python3_name(module, name)
        found = _DEFAULT_ALLOWED.get(f"{module}.{name}", _MISSING)
        if found is _ParameterName:
            found = _parameter_class() or _make_parameter
        if found is not _MISSING:
            return found
        if module == "torch" or module.startswith("torch."):
            _refuse_missing_feature(f"{module}.{name}")
            found = _torch_equivalent(module, name)
            if found is None:
                raise pickle.UnpicklingError(
                    f"dtorch.load: the file names {module}.{name}, which dtorch does not have (torch is never imported)"
                )
            return found
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if type(pid) is not tuple or not pid or pid[0] not in ("storage", b"storage"):
            raise pickle.UnpicklingError(f"dtorch.load: unsupported persistent id {pid!r:.80}")
        return self._storage(pid)


def _target_location(location, map_location):
    if map_location is None:
        return location
    if isinstance(map_location, (str, _backend.device)):
        return str(_backend.as_device(map_location))
    if isinstance(map_location, dict):
        return str(map_location.get(location, location))
    raise TypeError(f"map_location must be None, a str, a dtorch.device, a dict or a callable, got {map_location!r}")


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Load an object that ``dtorch.save`` or ``torch.save`` wrote, with PyTorch 2.13's rules.

    Args:
        f: a path or a readable binary file-like object.
        map_location: where tensors go: ``None`` (the device each was saved from), a device or string such as
            ``'cpu'``, a dict remapping saved locations (``{'cuda:1': 'cuda:0'}``), or a callable
            ``(array, location) -> array`` given each storage as a flat host array and its saved location.
        weights_only: True (the default, also for ``None``) loads tensors, containers and primitive types and the
            globals ``add_safe_globals`` allowed, never running or changing anything (the module docstring lists
            exactly what it accepts); anything else raises ``pickle.UnpicklingError`` naming the global and how to
            allow it. False unpickles everything, which runs code the file names: only for files you trust.
        pickle_module, mmap: accepted for PyTorch compatibility (``mmap`` is ignored: storages are read into memory).
        pickle_load_args: ``encoding`` for Python 2 strings (default ``'utf-8'``).

    Returns:
        the saved object, with dtorch Tensors in place of torch tensors; parameters come back as
        ``dtorch.nn.Parameter`` once ``dtorch.nn`` is imported, else as tensors with ``requires_grad=True``.

    Raises:
        pickle.UnpicklingError: a global or opcode a weights-only load refuses, or a malformed tensor record.
        RuntimeError: a file that is not a zip checkpoint (the legacy pre-1.6 format is not read), or a damaged
            archive (a storage record missing).

    >>> import dtorch, io
    >>> buffer = io.BytesIO(); dtorch.save([dtorch.zeros(1)], buffer); _ = buffer.seek(0)
    >>> dtorch.load(buffer, map_location="cpu")[0].shape
    dtorch.Size([1])
    """
    if weights_only is None:
        weights_only = True
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("dtorch.load reads with its own unpickler; pickle_module must be left as None (or pickle)")
    encoding = pickle_load_args.pop("encoding", "utf-8")
    if pickle_load_args:
        raise TypeError(f"dtorch.load got unexpected keyword arguments {sorted(pickle_load_args)}")
    if isinstance(f, (str, bytes, os.PathLike)):
        with open(os.fsdecode(f), "rb") as handle:
            return _load_archive(handle, map_location, weights_only, encoding)
    return _load_archive(f, map_location, weights_only, encoding)


def _load_archive(handle, map_location, weights_only, encoding):
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
            byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise RuntimeError(f"dtorch.load: unknown byteorder {byteorder!r}")
        read_storage = _storage_reader(archive, prefix, byteorder, map_location)
        pickled = archive.read(pickles[0])
        if weights_only:
            return _WeightsOnlyUnpickler(pickled, read_storage, encoding).load()
        return _FullUnpickler(io.BytesIO(pickled), read_storage, encoding).load()


def _storage_reader(archive, prefix, byteorder, map_location):
    """The persistent-id loader: ``('storage', storage type, key, location, numel)`` -> a ``_LoadedStorage``."""
    loaded = {}

    def read_storage(pid):
        if len(pid) != 5:
            raise pickle.UnpicklingError(f"dtorch.load: malformed storage id {pid!r:.80}")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
            raise pickle.UnpicklingError(f"dtorch.load: malformed storage id {pid!r:.80}")
        if storage_type.dtype is None:
            raise pickle.UnpicklingError(
                f"dtorch.load: the file holds a {storage_type.name} "
                f"({_UNSUPPORTED_STORAGES[storage_type.name]}), a dtype dtorch does not have"
            )
        found = loaded.get(key)
        if found is not None:
            return found
        record = f"{prefix}data/{key}"
        try:
            info = archive.getinfo(record)
        except KeyError:
            raise RuntimeError(
                f"dtorch.load: the checkpoint has no record '{record}' for storage '{key}' that data.pkl uses "
                "(a damaged or crafted file)"
            ) from None
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise RuntimeError(f"dtorch.load: record '{record}' declares {info.file_size} bytes but stores "
                               f"{info.compress_size} (a damaged or crafted file)")
        raw = np.empty(info.file_size, dtype=np.uint8)
        with archive.open(info) as entry:
            view, filled = memoryview(raw), 0
            while filled < info.file_size:
                count = entry.readinto(view[filled:])
                if not count:
                    raise RuntimeError(f"dtorch.load: record '{record}' is truncated")
                filled += count
        numpy_dtype = np.dtype(storage_type.dtype)
        dt = numpy_dtype.newbyteorder("<" if byteorder == "little" else ">")
        if len(raw) % dt.itemsize:
            raise pickle.UnpicklingError(f"dtorch.load: storage {key} has a size that is not whole elements")
        array = np.frombuffer(raw, dtype=dt)
        if byteorder != sys.byteorder:
            array = array.astype(numpy_dtype)
        if callable(map_location):
            array = map_location(array, location)
        else:
            target = _target_location(location, map_location)
            if target != "cpu":
                array = _backend.to_device(array, target)
        storage = loaded[key] = _LoadedStorage(array)
        return storage

    return read_storage
