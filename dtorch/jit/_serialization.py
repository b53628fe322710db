"""``jit.save``/``jit.load``: a zip archive with the graph as readable JSON and the tensors as ``.npy`` files.

Layout (all under one top-level folder, as PyTorch's archives)::

    model/graph.json      the Graph (see dtorch/jit/_graph.py), indented JSON
    model/module.json     format tag, the module's name, training flag, submodule names, one entry per tensor
    model/data/N.npy      each parameter, buffer and constant, written with allow_pickle=False
    model/extra/NAME      the caller's ``_extra_files``

Nothing is pickled, so loading runs no code from the file and needs neither the model's class nor its module:
the graph names dtorch ops only.
"""

import io
import json
import os
import tempfile
import zipfile

import numpy as np

from dtorch import _backend
from dtorch.jit._graph import Graph
from dtorch.tensor import Tensor

FORMAT = "dtorch.jit"
FORMAT_VERSION = 1
_ROOT = "model"


def _cpu_array(tensor):
    array = tensor._array
    return array.get() if _backend.is_cupy_array(array) else array


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, np.array(array, order="C"), allow_pickle=False)  # keeps 0-d arrays 0-d
    return buffer.getvalue()


def write_archive(f, graph, tensors, meta, extra_files=None, format_name=FORMAT):
    """Write ``graph``, ``tensors`` (key -> (Tensor, role)) and ``meta`` to ``f`` (a path or binary file)."""
    entries = {}
    files = {}
    first_key = {}  # a tensor stored under several names (tied weights) is written once, the others alias it
    for index, (key, (tensor, role)) in enumerate(tensors.items()):
        if id(tensor) in first_key:
            entries[key] = {"alias": first_key[id(tensor)], "role": role}
            continue
        first_key[id(tensor)] = key
        path = f"data/{index}.npy"
        entries[key] = {"file": path, "role": role, "requires_grad": bool(tensor.requires_grad)}
        files[path] = _npy_bytes(_cpu_array(tensor))
    meta = dict(meta, format=format_name, version=FORMAT_VERSION, tensors=entries,
                extra_files=sorted((extra_files or {}).keys()))

    def write(target):
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(f"{_ROOT}/graph.json", graph.dumps())
            archive.writestr(f"{_ROOT}/module.json", json.dumps(meta, indent=1))
            for path, data in files.items():
                archive.writestr(f"{_ROOT}/{path}", data)
            for name, data in (extra_files or {}).items():
                archive.writestr(f"{_ROOT}/extra/{name}", data.encode() if isinstance(data, str) else data)

    if isinstance(f, (str, os.PathLike)):
        # written next to the target and renamed into place, so a crash never leaves half a file
        path = os.fspath(f)
        directory = os.path.dirname(os.path.abspath(path))
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".dtorch-jit-")
        try:
            with os.fdopen(handle, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    else:
        write(f)


def read_archive(f, map_location=None, expected_format=FORMAT):
    """Read an archive written by ``write_archive``: ``(graph, tensors by key, meta, extra files)``."""
    try:
        archive = zipfile.ZipFile(f if not isinstance(f, os.PathLike) else os.fspath(f))
    except zipfile.BadZipFile:
        raise RuntimeError(
            f"{f!r} is not a dtorch.jit/dtorch.export archive (not a zip file); files written by torch.save load "
            "with dtorch.load"
        ) from None
    with archive:
        names = archive.namelist()
        if f"{_ROOT}/module.json" not in names:
            raise RuntimeError(f"{f!r} is not a dtorch archive: it has no {_ROOT}/module.json")
        meta = json.loads(archive.read(f"{_ROOT}/module.json"))
        if meta.get("format") != expected_format:
            raise RuntimeError(f"{f!r} holds a {meta.get('format')!r} archive, expected {expected_format!r}")
        if meta.get("version", 0) > FORMAT_VERSION:
            raise RuntimeError(f"{f!r} was written by a newer dtorch (archive version {meta['version']})")
        graph = Graph.from_json(json.loads(archive.read(f"{_ROOT}/graph.json")))
        tensors = {}
        for key, entry in meta["tensors"].items():
            if "alias" in entry:  # written after the entry it aliases
                tensors[key] = (tensors[entry["alias"]][0], entry["role"])
                continue
            with archive.open(f"{_ROOT}/{entry['file']}") as stream:
                array = np.load(io.BytesIO(stream.read()), allow_pickle=False)
            tensor = Tensor._from_array(array, None)
            if map_location is not None:
                tensor = tensor.to(_device_for(map_location))
            tensor.requires_grad = entry["requires_grad"]
            tensors[key] = (tensor, entry["role"])
        extra = {name: archive.read(f"{_ROOT}/extra/{name}") for name in meta.get("extra_files", [])}
    return graph, tensors, meta, extra


def _device_for(map_location):
    if isinstance(map_location, dict) or callable(map_location):
        raise TypeError("dtorch.jit.load: map_location must be a device or a device string")
    return map_location


def save(m, f, _extra_files=None):
    """Save a ``ScriptModule`` (from ``trace``, ``script`` or ``load``) to ``f``: see the module docstring."""
    from dtorch.jit._module import ScriptModule
    from dtorch.jit._script import RecursiveScriptModule

    if isinstance(m, RecursiveScriptModule):
        m = m._traced_for_saving()
    if not isinstance(m, ScriptModule):
        raise TypeError(
            f"dtorch.jit.save expects a ScriptModule (from dtorch.jit.trace, script or load), got "
            f"{type(m).__name__}; trace the model first: dtorch.jit.save(dtorch.jit.trace(model, example), f)"
        )
    graph = m.graph
    tensors = {}
    for name in graph.parameters:
        holder, leaf = m._places[name]
        tensors["parameter:" + name] = (holder[leaf], "parameter")
    for name in graph.buffers:
        holder, leaf = m._places[name]
        tensors["buffer:" + name] = (holder[leaf], "buffer")
    for name, tensor in m._constants.items():
        tensors["constant:" + name] = (tensor, "constant")
    module_names = {}
    for name, module in m.named_modules():
        if name:
            module_names[name] = module._get_name()
    meta = {"name": m._get_name(), "training": bool(m.training), "module_names": module_names}
    write_archive(f, graph, tensors, meta, _extra_files)


def load(f, map_location=None, _extra_files=None):
    """Load a module saved by ``jit.save``; no class of the original model is needed."""
    from dtorch.jit._module import ScriptModule

    graph, tensors, meta, extra = read_archive(f, map_location)
    parameters, buffers, constants = {}, {}, {}
    for key, (tensor, role) in tensors.items():
        name = key.split(":", 1)[1]
        {"parameter": parameters, "buffer": buffers, "constant": constants}[role][name] = tensor
    module = ScriptModule(graph, parameters, buffers, constants, name=meta.get("name", "Module"),
                          training=meta.get("training", False), module_names=meta.get("module_names"))
    if _extra_files is not None:
        for name in list(_extra_files):
            if name in extra:
                _extra_files[name] = extra[name]
    return module
