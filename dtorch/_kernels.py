"""Fused CUDA kernels from ``kernels/``, their NumPy/CuPy references, and the choice between them.

The sources live in the top-level ``kernels/`` folder (shipped inside the package as ``dtorch/_kernel_sources``,
a link to it). Each kernel keeps its arithmetic in ``DT_HD`` functions and a thin CUDA index loop; see
``kernels/dtorch_kernels.cuh``. A kernel is compiled at its first use on a device with CuPy's ``RawModule``
(NVRTC underneath) and cached per (source, device).

Every fused op has a reference written once against ``xp`` (NumPy or CuPy): the reference *is* the definition,
and the kernel is only a faster way to compute it. The optimizer steps' references are the optimizers' own update
functions; the others are below. ``select_kernel`` decides which runs:
the kernel when the arrays are CuPy float32 C-contiguous arrays on one device and kernels are enabled
(``DTORCH_KERNELS=0`` turns them off), the reference otherwise (NumPy arrays, other dtypes, CuPy missing).

Contracts: the references update their arrays in place exactly as the kernels do, so a caller never
branches on which one ran. Nothing here imports CuPy at module import; ``dtorch._backend`` does that lazily.

>>> import numpy as np
>>> select_kernel(np.ones(3, np.float32))  # NumPy arrays: the reference runs
'reference'
"""

import ctypes
import glob
import os
import pathlib

import numpy as np

from dtorch import _backend

SOURCE_DIR = pathlib.Path(__file__).resolve().parent / "_kernel_sources"
HEADER = "dtorch_kernels.cuh"

# source file -> the kernels it defines (the names the tests compile and the GPU check launches)
KERNELS = {
    "adam.cu": ("adam_step_f32",),
    "sgd.cu": ("sgd_momentum_step_f32",),
    "softmax_cross_entropy.cu": ("softmax_xent_forward_f32", "softmax_xent_backward_f32"),
    "layer_norm.cu": ("layer_norm_forward_f32", "layer_norm_backward_input_f32", "layer_norm_backward_params_f32"),
    "bucket.cu": ("bucket_pack_f32", "bucket_unpack_f32"),
}

THREADS = 256
_module_cache = {}  # (source file, device id) -> cupy.RawModule


def source(name):
    """The text of kernel source ``name`` (e.g. ``"adam.cu"``) with the shared header inlined.

    NVRTC compiles one string; inlining the header keeps compilation free of include paths.
    """
    text = (SOURCE_DIR / name).read_text()
    header = (SOURCE_DIR / HEADER).read_text()
    return text.replace(f'#include "{HEADER}"', header)


def kernels_enabled():
    return os.environ.get("DTORCH_KERNELS", "1") != "0"


def select_kernel(*arrays):
    """``"kernel"`` when a fused kernel can run on these arrays, else ``"reference"``.

    A kernel needs CuPy float32 C-contiguous arrays (integer index arrays may ride along) on one device.

    >>> select_kernel(np.zeros(3, np.float32))
    'reference'
    """
    if not kernels_enabled():
        return "reference"
    first = arrays[0]
    if not _backend.is_cupy_array(first) or first.dtype != np.float32:
        return "reference"
    device = first.device.id
    for array in arrays:
        if not _backend.is_cupy_array(array) or array.device.id != device or not array.flags.c_contiguous:
            return "reference"
    return "kernel"


def get_kernel(source_name, kernel_name):
    """The compiled CUDA function ``kernel_name`` from ``source_name`` on the current device (cached)."""
    cp = _backend.cupy()
    key = (source_name, cp.cuda.runtime.getDevice())
    module = _module_cache.get(key)
    if module is None:
        module = cp.RawModule(code=source(source_name), options=("--std=c++14",))
        _module_cache[key] = module
    return module.get_function(kernel_name)


def _launch(source_name, kernel_name, n, args):
    blocks = max(1, min((n + THREADS - 1) // THREADS, 65535))
    get_kernel(source_name, kernel_name)((blocks,), (THREADS,), args)


# ---- Adam / AdamW and SGD with momentum --------------------------------------------------------------------------
# Their xp references are the optimizers' own update functions (dtorch.optim.adam.adam_update and
# dtorch.optim.sgd.sgd_update): the optimizers call these launchers only when select_kernel says "kernel".


def adam_scalars(*, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize):
    """The scalar arguments of ``adam_step_f32`` after ``n``, computed in double and rounded to float32 exactly as
    NumPy rounds adam_update's Python-float scalars."""
    f32 = np.float32
    return (f32(beta2), f32(1 - beta1), f32(1 - beta2), f32(eps), f32(weight_decay), f32(1 - lr * weight_decay),
            f32(-(lr / (1 - beta1 ** step))), f32((1 - beta2 ** step) ** 0.5), np.int32(decoupled),
            np.int32(maximize))


def adam_step(p, g, m, v, *, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False,
              maximize=False):
    """One Adam/AdamW step in place over flat CuPy float32 buffers (AMSGrad has no kernel), in one launch."""
    _launch("adam.cu", "adam_step_f32", p.size, (p, g, m, v, np.int64(p.size)) + adam_scalars(
        step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, decoupled=decoupled,
        maximize=maximize))


def sgd_scalars(*, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step):
    """The scalar arguments of ``sgd_momentum_step_f32`` after ``n``, rounded as sgd_update's are."""
    f32 = np.float32
    return (f32(-lr), f32(momentum), f32(dampening), f32(1 - dampening), f32(weight_decay), np.int32(nesterov),
            np.int32(maximize), np.int32(first_step))


def sgd_momentum_step(p, g, buf, *, lr, momentum, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
                      first_step=False):
    """One SGD-with-momentum step in place over flat CuPy float32 buffers, in one launch (``momentum != 0``)."""
    _launch("sgd.cu", "sgd_momentum_step_f32", p.size, (p, g, buf, np.int64(p.size)) + sgd_scalars(
        lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
        maximize=maximize, first_step=first_step))


# ---- softmax + cross-entropy ---------------------------------------------------------------------------------------


def softmax_xent_forward_reference(logits, targets, ignore_index=-100):
    """Per-row loss and log-sum-exp of ``(rows, classes)`` logits: the definition of ``softmax_xent_forward_f32``.

    Ignored rows (``targets == ignore_index``) give loss 0 and lse 0.
    """
    xp = _backend.xp_of(logits)
    row_max = logits.max(axis=1, keepdims=True)
    finite_max = xp.where(xp.isinf(row_max), 0, row_max)
    lse = (xp.log(xp.exp(logits - finite_max).sum(axis=1, keepdims=True)) + finite_max)[:, 0]
    ignored = targets == ignore_index
    safe_targets = xp.where(ignored, 0, targets)
    target_logits = xp.take_along_axis(logits, safe_targets[:, None], axis=1)[:, 0]
    loss = xp.where(ignored, 0, lse - target_logits).astype(logits.dtype)
    return loss, xp.where(ignored, 0, lse).astype(logits.dtype)


def softmax_xent_backward_reference(logits, targets, lse, dloss, ignore_index=-100):
    """Gradient of the per-row losses wrt the logits: the definition of ``softmax_xent_backward_f32``."""
    xp = _backend.xp_of(logits)
    grad = xp.exp(logits - lse[:, None])
    ignored = targets == ignore_index
    rows = xp.arange(logits.shape[0])
    grad[rows, xp.where(ignored, 0, targets)] -= xp.where(ignored, 0, 1).astype(logits.dtype)
    grad *= dloss[:, None]
    grad[ignored] = 0
    return grad


def _xent_reference(logits, targets, *floats):
    # the kernels read targets as contiguous int64 on the logits' device: anything else takes the reference
    return select_kernel(logits, *floats, targets) == "reference" or targets.dtype != np.int64


def softmax_xent_forward(logits, targets, ignore_index=-100):
    """Per-row cross-entropy loss and log-sum-exp; the fused kernel on CuPy float32, else the reference."""
    if _xent_reference(logits, targets):
        return softmax_xent_forward_reference(logits, targets, ignore_index)
    cp = _backend.cupy()
    rows, classes = logits.shape
    loss = cp.empty(rows, dtype=cp.float32)
    lse = cp.empty(rows, dtype=cp.float32)
    get_kernel("softmax_cross_entropy.cu", "softmax_xent_forward_f32")(
        (rows,), (THREADS,), (logits, targets, loss, lse, np.int64(classes), np.int64(ignore_index)))
    return loss, lse


def softmax_xent_backward(logits, targets, lse, dloss, ignore_index=-100):
    """Gradient wrt the logits; the fused kernel on CuPy float32, else the reference."""
    if _xent_reference(logits, targets, lse, dloss):
        return softmax_xent_backward_reference(logits, targets, lse, dloss, ignore_index)
    cp = _backend.cupy()
    rows, classes = logits.shape
    dlogits = cp.empty_like(logits)
    _launch("softmax_cross_entropy.cu", "softmax_xent_backward_f32", rows * classes,
            (logits, targets, lse, dloss, dlogits, np.int64(rows), np.int64(classes), np.int64(ignore_index)))
    return dlogits


# ---- LayerNorm -------------------------------------------------------------------------------------------------------


def layer_norm_forward_reference(x, w, b, eps):
    """LayerNorm of the rows of ``(rows, features)``: ``(y, mean, rstd)``, the definition of the forward kernel."""
    xp = _backend.xp_of(x)
    mean = x.mean(axis=1)
    centered = x - mean[:, None]
    rstd = 1 / xp.sqrt((centered * centered).mean(axis=1) + eps)
    y = centered * rstd[:, None] * w + b
    return y.astype(x.dtype), mean.astype(x.dtype), rstd.astype(x.dtype)


def layer_norm_backward_reference(x, dy, w, mean, rstd):
    """``(dx, dw, db)`` of LayerNorm: the definition of the two backward kernels."""
    xhat = (x - mean[:, None]) * rstd[:, None]
    dxhat = dy * w
    dx = rstd[:, None] * (dxhat - dxhat.mean(axis=1, keepdims=True)
                          - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))
    return dx.astype(x.dtype), (dy * xhat).sum(axis=0), dy.sum(axis=0)


def layer_norm_forward(x, w, b, eps):
    """LayerNorm forward over rows; the fused kernel on CuPy float32, else the reference."""
    if select_kernel(x, w, b) == "reference":
        return layer_norm_forward_reference(x, w, b, eps)
    cp = _backend.cupy()
    rows, features = x.shape
    y = cp.empty_like(x)
    mean = cp.empty(rows, dtype=cp.float32)
    rstd = cp.empty(rows, dtype=cp.float32)
    _launch("layer_norm.cu", "layer_norm_forward_f32", rows,
            (x, w, b, y, mean, rstd, np.int64(rows), np.int64(features), np.float32(eps)))
    return y, mean, rstd


def layer_norm_backward(x, dy, w, mean, rstd):
    """LayerNorm backward ``(dx, dw, db)``; the fused kernels on CuPy float32, else the reference."""
    if select_kernel(x, dy, w, mean, rstd) == "reference":
        return layer_norm_backward_reference(x, dy, w, mean, rstd)
    cp = _backend.cupy()
    rows, features = x.shape
    dx = cp.empty_like(x)
    dw = cp.empty(features, dtype=cp.float32)
    db = cp.empty(features, dtype=cp.float32)
    _launch("layer_norm.cu", "layer_norm_backward_input_f32", rows,
            (x, dy, w, mean, rstd, dx, np.int64(rows), np.int64(features)))
    _launch("layer_norm.cu", "layer_norm_backward_params_f32", features,
            (x, dy, mean, rstd, dw, db, np.int64(rows), np.int64(features)))
    return dx, dw, db


# ---- DDP bucket pack / unpack ----------------------------------------------------------------------------------------


def bucket_offsets(arrays):
    """Start offsets of ``arrays`` in a bucket, plus the bucket's length last (the layout the kernels read)."""
    offsets = [0]
    for array in arrays:
        offsets.append(offsets[-1] + int(array.size))
    return offsets


def bucket_pack_reference(arrays, bucket, scale=1.0):
    """Copy ``arrays`` (each C-contiguous) into flat ``bucket`` back to back, times ``scale``."""
    offsets = bucket_offsets(arrays)
    for array, start, stop in zip(arrays, offsets, offsets[1:]):
        bucket[start:stop] = array.reshape(-1)
        if scale != 1.0:
            bucket[start:stop] *= scale


def bucket_unpack_reference(bucket, arrays, scale=1.0):
    """Copy flat ``bucket`` back into ``arrays`` times ``scale`` (the inverse layout of ``bucket_pack_reference``)."""
    xp = _backend.xp_of(bucket)
    offsets = bucket_offsets(arrays)
    for array, start, stop in zip(arrays, offsets, offsets[1:]):
        if scale != 1.0:
            xp.multiply(bucket[start:stop], scale, out=array.reshape(-1))
        else:
            array.reshape(-1)[...] = bucket[start:stop]


def _pointer_table(arrays):
    cp = _backend.cupy()
    pointers = cp.asarray(np.array([a.data.ptr for a in arrays], dtype=np.uint64))
    offsets = cp.asarray(np.array(bucket_offsets(arrays), dtype=np.int64))
    return pointers, offsets


def bucket_pack(arrays, bucket, scale=1.0):
    """Pack ``arrays`` into ``bucket`` scaled by ``scale``, in one launch on CuPy float32; returns the path."""
    if select_kernel(bucket, *arrays) == "reference":
        bucket_pack_reference(arrays, bucket, scale)
        return "reference"
    pointers, offsets = _pointer_table(arrays)
    _launch("bucket.cu", "bucket_pack_f32", bucket.size,
            (pointers, offsets, np.int64(len(arrays)), bucket, np.float32(scale)))
    return "kernel"


def bucket_unpack(bucket, arrays, scale=1.0):
    """Unpack ``bucket`` into ``arrays`` times ``scale``, in one launch on CuPy float32; returns the path."""
    if select_kernel(bucket, *arrays) == "reference":
        bucket_unpack_reference(bucket, arrays, scale)
        return "reference"
    pointers, offsets = _pointer_table(arrays)
    _launch("bucket.cu", "bucket_unpack_f32", bucket.size,
            (bucket, pointers, offsets, np.int64(len(arrays)), np.float32(scale)))
    return "kernel"


# ---- compiling without a GPU (used by the tests and scripts/gpu_check.sh) -------------------------------------------


def find_nvrtc():
    """Path of an NVRTC shared library: the ``nvidia-cuda-nvrtc`` wheel's, else one on the loader path, else None."""
    try:
        import nvidia.cuda_nvrtc as wheel  # the test extra installs it; nothing else in dtorch needs it
    except ImportError:
        wheel = None
    if wheel is not None:
        for folder in wheel.__path__:
            found = sorted(glob.glob(os.path.join(folder, "lib", "libnvrtc.so*")))
            found = [path for path in found if ".alt." not in path]
            if found:
                return found[0]
    for name in ("libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"):
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            continue
    return None


class NvrtcError(RuntimeError):
    """A kernel source failed to compile (the message holds NVRTC's log)."""


def compile_to_ptx(source_name, arch="compute_80", nvrtc_path=None):
    """Compile kernel source ``source_name`` to PTX for ``arch`` with NVRTC, no GPU needed.

    Returns ``(ptx, log)``; raises ``NvrtcError`` with the log when compilation fails. Warnings land in the log.
    """
    path = nvrtc_path or find_nvrtc()
    if path is None:
        raise NvrtcError("no NVRTC library found: pip install nvidia-cuda-nvrtc-cu12 (dtorch's test extra has it)")
    nvrtc = ctypes.CDLL(path)
    program = ctypes.c_void_p()
    code = source(source_name).encode()
    _nvrtc_check(nvrtc, nvrtc.nvrtcCreateProgram(ctypes.byref(program), code, source_name.encode(), 0, None, None))
    options = [f"--gpu-architecture={arch}".encode(), b"--std=c++14"]
    option_array = (ctypes.c_char_p * len(options))(*options)
    try:
        status = nvrtc.nvrtcCompileProgram(program, len(options), option_array)
        log_size = ctypes.c_size_t()
        nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(log_size))
        log_buffer = ctypes.create_string_buffer(log_size.value)
        nvrtc.nvrtcGetProgramLog(program, log_buffer)
        log = log_buffer.value.decode(errors="replace").strip()
        if status != 0:
            raise NvrtcError(f"{source_name} failed to compile for {arch}:\n{log}")
        ptx_size = ctypes.c_size_t()
        _nvrtc_check(nvrtc, nvrtc.nvrtcGetPTXSize(program, ctypes.byref(ptx_size)))
        ptx_buffer = ctypes.create_string_buffer(ptx_size.value)
        _nvrtc_check(nvrtc, nvrtc.nvrtcGetPTX(program, ptx_buffer))
        return ptx_buffer.value.decode(), log
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(program))


def _nvrtc_check(nvrtc, status):
    if status != 0:
        nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise NvrtcError(f"NVRTC call failed: {nvrtc.nvrtcGetErrorString(status).decode()}")
