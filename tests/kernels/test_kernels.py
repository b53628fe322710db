"""The CUDA kernels of ``kernels/``, checked without a GPU (``dtorch/_kernels.py``).

Three checks, each on every CI run:
- every source compiles to PTX for sm_80 and sm_90 with NVRTC (the ``nvidia-cuda-nvrtc`` wheel of the test extra),
  with an empty compiler log: a warning fails the test as an error does;
- the kernels' arithmetic (their ``DT_HD`` functions, run by host loops in ``host_harness.cpp`` compiled with g++)
  equals the NumPy references on random inputs and on edge values (NaN, inf, zero steps, ignored rows);
- the dispatch (which path runs for which arrays, the ``DTORCH_KERNELS`` switch, the source lookup) with CuPy absent.
The same kernels run on a GPU in ``scripts/gpu_check.sh``.
"""

import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

import dtorch
from dtorch import _kernels
from dtorch.optim.adam import adam_update
from dtorch.optim.sgd import sgd_update

HERE = os.path.dirname(os.path.abspath(__file__))
F32 = np.float32
I64 = np.int64


# ---- NVRTC ---------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(_kernels.find_nvrtc() is None, reason="no NVRTC library (pip install '.[test]' brings it)")
@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
@pytest.mark.parametrize("source_name", sorted(_kernels.KERNELS))
def test_every_kernel_compiles_with_nvrtc_without_warnings(source_name, arch):
    ptx, log = _kernels.compile_to_ptx(source_name, arch)
    assert log == "", f"{source_name} ({arch}) compiled with diagnostics:\n{log}"
    assert f".target sm_{arch[-2:]}" in ptx
    for kernel in _kernels.KERNELS[source_name]:
        assert f".entry {kernel}(" in ptx, f"{kernel} missing from the PTX of {source_name}"


@pytest.mark.skipif(_kernels.find_nvrtc() is None, reason="no NVRTC library")
def test_a_compiler_warning_or_error_is_reported(monkeypatch):
    original = _kernels.source
    monkeypatch.setattr(_kernels, "source", lambda name: original(name).replace(
        "if (maximize) g = -g;", "int unused_value = 3; if (maximize) g = -g;"))
    assert "unused_value" in _kernels.compile_to_ptx("adam.cu")[1]
    monkeypatch.setattr(_kernels, "source", lambda name: original(name) + "\nnot C++ at all\n")
    with pytest.raises(_kernels.NvrtcError, match="failed to compile"):
        _kernels.compile_to_ptx("adam.cu")


# ---- the arithmetic, on the host ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def host(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("no host C++ compiler")
    library = str(tmp_path_factory.mktemp("kernels") / "host_kernels.so")
    subprocess.run(["g++", "-O1", "-std=c++14", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    "-I", str(_kernels.SOURCE_DIR), os.path.join(HERE, "host_harness.cpp"), "-o", library],
                   check=True, capture_output=True, text=True)
    return ctypes.CDLL(library)


def ptr(array):
    return array.ctypes.data_as(ctypes.c_void_p)


def edge_values(rng, n):
    """Random float32 values with a sprinkling of zeros, tiny and large magnitudes."""
    values = rng.standard_normal(n).astype(F32)
    values[::7] = 0
    values[3::11] = 1e-30
    values[5::13] = 3e4
    return values


def scalar_args(scalars):
    return [ctypes.c_float(x) if isinstance(x, np.float32) else int(x) for x in scalars]


def host_adam(host, state, g, options):
    p, m, v = state
    host.host_adam_step(ptr(p), ptr(g), ptr(m), ptr(v), ctypes.c_longlong(p.size),
                        *scalar_args(_kernels.adam_scalars(**options)))


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_kernel_arithmetic_equals_adam_update(host, decoupled, maximize, weight_decay):
    """The kernel's per-element math against its reference, the optimizer's own adam_update, bit for bit."""
    rng = np.random.default_rng(0)
    n = 1000
    p = edge_values(rng, n)
    m = rng.standard_normal(n).astype(F32)
    v = np.abs(rng.standard_normal(n)).astype(F32)
    ours, ref = [p.copy(), m.copy(), v.copy()], [p.copy(), m.copy(), v.copy()]
    for step in (1, 2, 10):
        g = edge_values(rng, n)
        options = dict(step=step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=weight_decay,
                       decoupled=decoupled, maximize=maximize)
        host_adam(host, ours, g, options)
        adam_update(ref[0], g, ref[1], ref[2], None, float(step), lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                    weight_decay=weight_decay, amsgrad=False, maximize=maximize, decoupled_weight_decay=decoupled)
    for a, b in zip(ours, ref):
        np.testing.assert_array_max_ulp(a, b, maxulp=1)


def test_adam_kernel_propagates_nan_and_inf_as_adam_update(host):
    g = np.array([np.nan, np.inf, 0.0], F32)
    ours = [np.ones(3, F32), np.zeros(3, F32), np.zeros(3, F32)]
    ref = [np.ones(3, F32), np.zeros(3, F32), np.zeros(3, F32)]
    host_adam(host, ours, g, dict(step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                                  decoupled=False, maximize=False))
    with np.errstate(invalid="ignore"):
        adam_update(ref[0], g, ref[1], ref[2], None, 1.0, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0,
                    amsgrad=False, maximize=False)
    np.testing.assert_array_equal(np.isnan(ours[0]), np.isnan(ref[0]))
    assert ours[0][2] == ref[0][2] == 1.0  # a zero gradient on the first step leaves the parameter alone


@pytest.mark.parametrize("nesterov,dampening,weight_decay,maximize",
                         [(False, 0.0, 0.0, False), (True, 0.0, 1e-2, False), (False, 0.5, 0.0, True),
                          (False, 0.1, 1e-3, False)])
def test_sgd_kernel_arithmetic_equals_sgd_update(host, nesterov, dampening, weight_decay, maximize):
    rng = np.random.default_rng(2)
    n = 500
    p0 = edge_values(rng, n)
    ours, buffer = p0.copy(), np.zeros(n, F32)
    ref, ref_buffer = p0.copy(), None
    for step in range(4):
        g = rng.standard_normal(n).astype(F32)
        host.host_sgd_momentum_step(ptr(ours), ptr(g), ptr(buffer), ctypes.c_longlong(n), *scalar_args(
            _kernels.sgd_scalars(lr=0.05, momentum=0.9, dampening=dampening, weight_decay=weight_decay,
                                 nesterov=nesterov, maximize=maximize, first_step=step == 0)))
        ref_buffer = sgd_update(ref, g, ref_buffer, lr=0.05, momentum=0.9, dampening=dampening,
                                weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
    np.testing.assert_array_max_ulp(ours, ref, maxulp=1)
    np.testing.assert_array_max_ulp(buffer, ref_buffer, maxulp=1)


def xent_cases():
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((6, 10)) * 5).astype(F32)
    logits[1, 4] = 80.0  # would overflow exp without the max shift
    logits[2] = -np.inf
    logits[2, 3] = 0.0  # one finite class
    targets = np.array([0, 4, 3, 9, -100, 7], I64)
    return logits, targets


def test_softmax_xent_arithmetic_equals_reference_and_torch(host):
    logits, targets = xent_cases()
    rows, classes = logits.shape
    loss, lse = np.empty(rows, F32), np.empty(rows, F32)
    host.host_softmax_xent_forward(ptr(logits), ptr(targets), ptr(loss), ptr(lse), ctypes.c_longlong(rows),
                                   ctypes.c_longlong(classes), ctypes.c_longlong(-100))
    ref_loss, ref_lse = _kernels.softmax_xent_forward_reference(logits, targets)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-6, atol=1e-6)
    torch_loss = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets),
                                                   reduction="none")
    np.testing.assert_allclose(ref_loss, torch_loss.numpy(), rtol=1e-5, atol=1e-5)

    dloss = np.random.default_rng(4).standard_normal(rows).astype(F32)
    dlogits = np.empty_like(logits)
    host.host_softmax_xent_backward(ptr(logits), ptr(targets), ptr(lse), ptr(dloss), ptr(dlogits),
                                    ctypes.c_longlong(rows), ctypes.c_longlong(classes), ctypes.c_longlong(-100))
    ref_grad = _kernels.softmax_xent_backward_reference(logits, targets, ref_lse, dloss)
    np.testing.assert_allclose(dlogits, ref_grad, rtol=1e-6, atol=1e-6)
    t_logits = torch.from_numpy(logits).requires_grad_()
    torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(targets), reduction="none").backward(
        torch.from_numpy(dloss))
    np.testing.assert_allclose(ref_grad, t_logits.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert not dlogits[4].any(), "an ignored row gets no gradient"


def test_layer_norm_arithmetic_equals_reference_and_torch(host):
    rng = np.random.default_rng(5)
    rows, features = 7, 33
    x = (rng.standard_normal((rows, features)) * 3 + 1).astype(F32)
    x[3] = 2.5  # a constant row: variance 0, rstd = 1/sqrt(eps)
    w = rng.standard_normal(features).astype(F32)
    b = rng.standard_normal(features).astype(F32)
    y, mean, rstd = np.empty_like(x), np.empty(rows, F32), np.empty(rows, F32)
    host.host_layer_norm_forward(ptr(x), ptr(w), ptr(b), ptr(y), ptr(mean), ptr(rstd), ctypes.c_longlong(rows),
                                 ctypes.c_longlong(features), ctypes.c_float(1e-5))
    ref_y, ref_mean, ref_rstd = _kernels.layer_norm_forward_reference(x, w, b, 1e-5)
    np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rstd, ref_rstd, rtol=1e-5)
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    tb = torch.from_numpy(b).requires_grad_()
    ty = torch.nn.functional.layer_norm(tx, (features,), tw, tb, 1e-5)
    np.testing.assert_allclose(ref_y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)

    dy = rng.standard_normal((rows, features)).astype(F32)
    dx, dw, db = np.empty_like(x), np.empty(features, F32), np.empty(features, F32)
    host.host_layer_norm_backward(ptr(x), ptr(dy), ptr(w), ptr(mean), ptr(rstd), ptr(dx), ptr(dw), ptr(db),
                                  ctypes.c_longlong(rows), ctypes.c_longlong(features))
    ref = _kernels.layer_norm_backward_reference(x, dy, w, ref_mean, ref_rstd)
    for ours, theirs in zip((dx, dw, db), ref):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    ty.backward(torch.from_numpy(dy))
    for theirs, t in zip(ref, (tx, tw, tb)):
        np.testing.assert_allclose(theirs, t.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_bucket_pack_unpack_round_trip_equals_reference(host):
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(shape).astype(F32) for shape in [(3, 4), (1,), (5,), (2, 2, 2)]]
    offsets = np.array(_kernels.bucket_offsets(arrays), I64)
    bucket = np.empty(offsets[-1], F32)
    sources = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    host.host_bucket_pack(sources, ptr(offsets), ctypes.c_longlong(len(arrays)), ptr(bucket), ctypes.c_float(0.5))
    ref_bucket = np.empty_like(bucket)
    _kernels.bucket_pack_reference(arrays, ref_bucket, 0.5)
    np.testing.assert_array_equal(bucket, ref_bucket)
    np.testing.assert_array_equal(bucket, np.concatenate([a.ravel() for a in arrays]) * F32(0.5))

    targets = [np.zeros_like(a) for a in arrays]
    pointers = (ctypes.c_void_p * len(targets))(*[t.ctypes.data for t in targets])
    host.host_bucket_unpack(ptr(bucket), pointers, ptr(offsets), ctypes.c_longlong(len(arrays)), ctypes.c_float(2.0))
    for target, array in zip(targets, arrays):
        np.testing.assert_array_equal(target, array)  # packed at 1/2, unpacked at 2
    references = [np.zeros_like(a) for a in arrays]
    _kernels.bucket_unpack_reference(ref_bucket, references, 2.0)
    for target, reference in zip(targets, references):
        np.testing.assert_array_equal(target, reference)


# ---- dispatch with CuPy absent ---------------------------------------------------------------------------------------

def test_numpy_arrays_take_the_reference_path():
    assert _kernels.select_kernel(np.ones(4, F32)) == "reference"
    bucket = np.empty(5, F32)
    assert _kernels.bucket_pack([np.ones(2, F32), np.full(3, 2.0, F32)], bucket, 0.5) == "reference"
    np.testing.assert_array_equal(bucket, [0.5, 0.5, 1, 1, 1])


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_routes_flat_buffers_to_the_kernel_when_selected(monkeypatch, amsgrad):
    """With the kernel selected (as for CuPy float32 buffers), Adam's step calls it with the group's settings;
    AMSGrad, which has no kernel, keeps the reference."""
    calls = []
    monkeypatch.setattr(_kernels, "select_kernel", lambda *arrays: "kernel")
    monkeypatch.setattr(_kernels, "adam_step", lambda *arrays, **options: calls.append(options))
    w = dtorch.nn.Parameter(dtorch.ones(4))
    optimizer = dtorch.optim.AdamW([w], lr=0.01, weight_decay=0.1, amsgrad=amsgrad)
    for _ in range(2):
        w.grad = dtorch.ones(4)
        optimizer.step()
    if amsgrad:
        assert calls == [] and not np.allclose(w.detach().numpy(), 1.0)
    else:
        assert [c["step"] for c in calls] == [1.0, 2.0]
        assert calls[0]["decoupled"] and calls[0]["weight_decay"] == 0.1 and calls[0]["lr"] == 0.01


def test_sgd_routes_to_the_kernel_with_a_new_buffer_on_the_first_step(monkeypatch):
    calls = []
    monkeypatch.setattr(_kernels, "select_kernel", lambda *arrays: "kernel")
    monkeypatch.setattr(_kernels, "sgd_momentum_step",
                        lambda p, g, buf, **options: calls.append((buf.shape, options["first_step"])))
    w = dtorch.nn.Parameter(dtorch.ones(3))
    optimizer = dtorch.optim.SGD([w], lr=0.1, momentum=0.9)
    for _ in range(2):
        w.grad = dtorch.ones(3)
        optimizer.step()
    assert calls == [((3,), True), ((3,), False)]
    assert optimizer.state[w]["momentum_buffer"].shape == (3,)


def test_other_dtypes_and_the_switch_take_the_reference_path(monkeypatch):
    class FakeCupyArray:  # stands in for a CuPy array: the dispatch must look at the dtype and the switch
        __module__ = "cupy._core.core"
        dtype = np.dtype(np.float64)

    FakeCupyArray.__module__ = "cupy._core.core"
    assert _kernels.select_kernel(FakeCupyArray()) == "reference"  # float64 has no kernel
    monkeypatch.setenv("DTORCH_KERNELS", "0")
    assert not _kernels.kernels_enabled()
    assert _kernels.select_kernel(np.ones(2, F32)) == "reference"


def test_sources_ship_with_the_package_and_inline_the_header():
    for name in _kernels.KERNELS:
        text = _kernels.source(name)
        assert "#include" not in text.replace("#include <math.h>", ""), f"{name} still includes a file"
        assert "DT_HD" in text and "__global__" in text
    assert _kernels.SOURCE_DIR.is_dir()
    assert not dtorch.cuda.is_available() or _kernels.find_nvrtc() is not None
