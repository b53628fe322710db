"""``check_op``: run one function with dtorch and with PyTorch on the same seeded inputs and compare.

The model is tinygrad's ``test_ops``: one helper, one line per case. ``check_op`` compares forward values, dtypes
and shapes (every tensor in a nested tuple/list output), whether each output requires grad, and the gradients of
every floating input after a backward of a random upstream gradient through every differentiable output.

>>> _ = check_op(lambda x, y: x * y, None, [(3, 4), (4,)])

``check_module`` does the same for a layer: the module built in both libraries with PyTorch's weights copied into
dtorch's, outputs, buffers and the gradients of inputs and parameters compared in train and eval mode
(``assert_close`` compares one pair of tensors).

>>> check_module("Linear", (4, 2), inputs=[(3, 4)])  # doctest: +ELLIPSIS
(Linear(...), Linear(...))
"""

import numpy as np
import torch

import dtorch

FLOAT_TOLERANCES = {
    # dtype: (forward atol, forward rtol, gradient atol, gradient rtol)
    "float16": (1e-2, 1e-2, 1e-2, 1e-2),
    "float32": (1e-5, 1e-4, 1e-4, 1e-3),
    "float64": (1e-10, 1e-8, 1e-9, 1e-7),
}


def ints(shape, low=0, high=5, dtype=np.int64, seed=1):
    """A seeded integer array (an index or an integer operand); pass it to ``check_op`` as an input."""
    return np.random.default_rng(seed).integers(low, high, size=shape).astype(dtype)


def bools(shape, p=0.5, seed=2):
    """A seeded boolean array (a mask)."""
    return np.random.default_rng(seed).random(shape) < p


def _float_array(shape, dtype, low, high, rng, noncontiguous):
    """Random floats in ``[low, high)``; with ``noncontiguous`` a strided view holding the same values."""
    if not noncontiguous or len(shape) == 0:
        return rng.uniform(low, high, size=shape).astype(dtype)
    if len(shape) == 1:
        return rng.uniform(low, high, size=(2 * shape[0],)).astype(dtype)[::2]
    swapped = tuple(shape[:-2]) + (shape[-1], shape[-2])
    return np.swapaxes(rng.uniform(low, high, size=swapped).astype(dtype), -1, -2)


def make_inputs(spec, *, dtype="float32", low=-2.0, high=2.0, seed=0, noncontiguous=False):
    """NumPy arrays (or pass-through values) for ``spec``: shapes become random floats, arrays are kept."""
    rng = np.random.default_rng(seed)
    values = []
    for entry in spec:
        if isinstance(entry, tuple) and all(isinstance(n, int) for n in entry):
            values.append(_float_array(entry, np.dtype(dtype), low, high, rng, noncontiguous))
        else:
            values.append(entry)
    return values


def _is_strided_shape(entry):
    """True for a shape whose strided version cannot be contiguous (every one with two extents > 1 at the end and
    no extent 0: NumPy flags every empty array contiguous)."""
    if not (isinstance(entry, tuple) and all(isinstance(n, int) for n in entry)) or 0 in entry:
        return False
    return (len(entry) == 1 and entry[0] > 1) or (len(entry) >= 2 and entry[-1] > 1 and entry[-2] > 1)


def _strided_copy(array):
    """A copy of ``array`` with the same strides pattern (so a transposed view stays a transposed view)."""
    if array.flags.c_contiguous:
        return array.copy()
    if array.ndim >= 2 and np.swapaxes(array, -1, -2).flags.c_contiguous:
        return np.swapaxes(np.swapaxes(array, -1, -2).copy(), -1, -2)
    doubled = np.zeros((2 * array.shape[0],) + array.shape[1:], dtype=array.dtype)
    doubled[::2] = array
    return doubled[::2]


def _wrap(values, library, grad):
    wrapped = []
    for value in values:
        if isinstance(value, np.ndarray):
            array = _strided_copy(value)
            tensor = torch.from_numpy(array) if library is torch else dtorch.from_numpy(array)
            if grad and array.dtype.kind == "f":
                tensor.requires_grad_(True)
            wrapped.append(tensor)
        else:
            wrapped.append(value)
    return wrapped


def _dtype_name(dtype):
    return str(dtype).split(".")[-1]


def _flatten(output):
    if isinstance(output, (tuple, list)):
        result = []
        for item in output:
            result.extend(_flatten(item))
        return result
    return [output]


def _compare_tensor(ours, theirs, atol, rtol, what):
    assert isinstance(ours, dtorch.Tensor), f"{what}: expected a dtorch.Tensor, got {type(ours).__name__}"
    assert tuple(ours.shape) == tuple(theirs.shape), (
        f"{what}: shape {tuple(ours.shape)} != torch's {tuple(theirs.shape)}"
    )
    assert _dtype_name(ours.dtype) == _dtype_name(theirs.dtype), (
        f"{what}: dtype {ours.dtype} != torch's {theirs.dtype}"
    )
    expected = theirs.detach().numpy()
    actual = np.asarray(ours.detach()._array)
    if expected.dtype == np.float16:  # a half result of wider inputs is good to half precision only
        atol, rtol = max(atol, FLOAT_TOLERANCES["float16"][0]), max(rtol, FLOAT_TOLERANCES["float16"][1])
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def check_op(dtorch_fn, torch_fn, inputs, *, dtype="float32", low=-2.0, high=2.0, seed=0, grad=True,
             noncontiguous=False, second_order=False, atol=None, rtol=None, grad_atol=None, grad_rtol=None):
    """Compare ``dtorch_fn`` with ``torch_fn`` (the same function when None) on seeded inputs.

    Args:
        dtorch_fn: a function of the inputs, called with dtorch tensors.
        torch_fn: the same function for torch tensors, or None when ``dtorch_fn`` works for both (methods,
            operators).
        inputs: a list; a tuple of ints is a shape (random floats of ``dtype`` in ``[low, high)``), a NumPy array
            is used as it is (``ints``/``bools`` make integer and boolean ones), anything else is passed unchanged.
        dtype: the float dtype of shape inputs.
        low, high: the range of the random floats (log and sqrt want ``low > 0``).
        grad: make floating inputs require grad and compare their gradients.
        noncontiguous: build shape inputs as strided views (a transposed matrix, every other element of a vector).
        second_order: take the input gradients with ``create_graph=True``, compare them, then compare the
            gradients of ``sum(gradient * random)`` (a Hessian-vector product) with torch's.
        atol, rtol, grad_atol, grad_rtol: tolerances overriding ``FLOAT_TOLERANCES[dtype]``.

    Returns:
        The dtorch output, for further checks.
    """
    torch_fn = dtorch_fn if torch_fn is None else torch_fn
    defaults = FLOAT_TOLERANCES[_dtype_name(dtype)]
    atol = defaults[0] if atol is None else atol
    rtol = defaults[1] if rtol is None else rtol
    grad_atol = defaults[2] if grad_atol is None else grad_atol
    grad_rtol = defaults[3] if grad_rtol is None else grad_rtol

    values = make_inputs(inputs, dtype=dtype, low=low, high=high, seed=seed, noncontiguous=noncontiguous)
    torch_inputs = _wrap(values, torch, grad)
    dtorch_inputs = _wrap(values, dtorch, grad)
    if noncontiguous:
        for entry, tensor in zip(inputs, dtorch_inputs):
            assert not _is_strided_shape(entry) or not tensor.is_contiguous(), f"input {entry} is contiguous"
    torch_out = torch_fn(*torch_inputs)
    dtorch_out = dtorch_fn(*dtorch_inputs)

    torch_flat, dtorch_flat = _flatten(torch_out), _flatten(dtorch_out)
    assert len(torch_flat) == len(dtorch_flat), f"{len(dtorch_flat)} outputs, torch has {len(torch_flat)}"
    roots, torch_roots, upstream = [], [], []
    rng = np.random.default_rng(seed + 1000)
    for index, (ours, theirs) in enumerate(zip(dtorch_flat, torch_flat)):
        what = f"output {index}"
        if not isinstance(theirs, torch.Tensor):
            assert not isinstance(ours, dtorch.Tensor) and ours == theirs, f"{what}: {ours!r} != torch's {theirs!r}"
            continue
        _compare_tensor(ours, theirs, atol, rtol, what)
        assert ours.requires_grad == theirs.requires_grad, (
            f"{what}: requires_grad {ours.requires_grad} != torch's {theirs.requires_grad}"
        )
        if theirs.requires_grad:
            g = rng.standard_normal(tuple(theirs.shape)).astype(theirs.detach().numpy().dtype)
            roots.append(ours)
            torch_roots.append(theirs)
            upstream.append(g)
    if not grad or not roots:
        return dtorch_out
    if second_order:
        _check_second_order(roots, torch_roots, upstream, dtorch_inputs, torch_inputs, grad_atol, grad_rtol, seed)
        return dtorch_out
    torch.autograd.backward(torch_roots, [torch.from_numpy(g.copy()) for g in upstream])
    dtorch.autograd.backward(roots, [dtorch.from_numpy(g.copy()) for g in upstream])
    for index, (ours, theirs) in enumerate(zip(dtorch_inputs, torch_inputs)):
        if not isinstance(theirs, torch.Tensor) or not theirs.requires_grad:
            continue
        what = f"gradient of input {index}"
        # "no gradient" and "a zero gradient" are the same answer (torch gives zeros where copy_ overwrote)
        if theirs.grad is None:
            assert ours.grad is None or not np.any(np.asarray(ours.grad._array)), f"{what}: torch has none"
            continue
        if ours.grad is None:
            assert not theirs.grad.any(), f"{what}: dtorch computed none"
            continue
        _compare_tensor(ours.grad, theirs.grad, grad_atol, grad_rtol, what)
    return dtorch_out


def _check_second_order(roots, torch_roots, upstream, dtorch_inputs, torch_inputs, atol, rtol, seed):
    pairs = [(ours, theirs) for ours, theirs in zip(dtorch_inputs, torch_inputs)
             if isinstance(theirs, torch.Tensor) and theirs.requires_grad]
    theirs_grads = torch.autograd.grad(torch_roots, [t for _, t in pairs],
                                       [torch.from_numpy(g.copy()) for g in upstream], create_graph=True,
                                       allow_unused=True)
    ours_grads = dtorch.autograd.grad(roots, [o for o, _ in pairs], [dtorch.from_numpy(g.copy()) for g in upstream],
                                      create_graph=True, allow_unused=True)
    rng = np.random.default_rng(seed + 2000)
    second_ours, second_theirs, vectors = [], [], []
    for index, (ours, theirs) in enumerate(zip(ours_grads, theirs_grads)):
        if theirs is None:
            continue
        _compare_tensor(ours, theirs, atol, rtol, f"gradient {index} (create_graph)")
        if theirs.requires_grad:
            assert ours.requires_grad, f"gradient {index}: torch's is differentiable, dtorch's is not"
            vectors.append(rng.standard_normal(tuple(theirs.shape)).astype(theirs.detach().numpy().dtype))
            second_ours.append(ours)
            second_theirs.append(theirs)
    if not second_theirs:
        return
    torch.autograd.backward(second_theirs, [torch.from_numpy(v.copy()) for v in vectors])
    dtorch.autograd.backward(second_ours, [dtorch.from_numpy(v.copy()) for v in vectors])
    for index, (ours, theirs) in enumerate(pairs):
        what = f"second-order gradient of input {index}"
        if theirs.grad is None or not theirs.grad.any():
            assert ours.grad is None or not np.any(np.asarray(ours.grad._array)), f"{what}: torch's is zero"
            continue
        assert ours.grad is not None, f"{what}: dtorch computed none"
        _compare_tensor(ours.grad, theirs.grad, atol, rtol, what)


def check_repr(make):
    """``repr`` of ``make(torch)`` with ``torch.`` spelled ``dtorch.`` equals ``repr`` of ``make(dtorch)``."""
    expected = repr(make(torch)).replace("torch.", "dtorch.")
    actual = repr(make(dtorch))
    assert actual == expected, f"\n{actual}\n!=\n{expected}"


# ---- modules ------------------------------------------------------------------------------------------------------

class Const:
    """A floating input array passed to both libraries without ``requires_grad`` (a target, a weight)."""

    def __init__(self, array):
        self.array = array


def copy_weights(torch_module, dtorch_module):
    """Load PyTorch's state_dict into the dtorch module through NumPy arrays (strict: the same keys)."""
    state = {key: dtorch.from_numpy(value.detach().numpy().copy()) for key, value in torch_module.state_dict().items()}
    result = dtorch_module.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys, result


def _module_arrays(inputs, rng, dtype):
    """Shapes become seeded standard-normal arrays of ``dtype``; tuples of non-shapes are walked; the rest kept."""
    if isinstance(inputs, tuple) and inputs and all(isinstance(n, int) for n in inputs):
        return rng.standard_normal(inputs).astype(dtype)
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_module_arrays(value, rng, dtype) for value in inputs)
    return inputs


def _module_tensors(value, library, leaves):
    """``value`` with arrays as ``library`` tensors; floating arrays (not ``Const``) require grad and join ``leaves``."""
    if isinstance(value, Const):
        return library.from_numpy(value.array.copy())
    if isinstance(value, np.ndarray):
        tensor = library.from_numpy(value.copy())
        if value.dtype.kind == "f":
            leaves.append(tensor.requires_grad_(True))
        return tensor
    if isinstance(value, (tuple, list)):
        return type(value)(_module_tensors(item, library, leaves) for item in value)
    return value


def _library_value(value, library):
    """A keyword argument for building or calling a module: arrays become tensors without gradients."""
    if isinstance(value, Const):
        value = value.array
    return library.from_numpy(value.copy()) if isinstance(value, np.ndarray) else value


def check_module(make, args=(), kwargs=None, inputs=(), *, call_kwargs=None, same_input=(), dtype="float32",
                 modes=("train", "eval"), atol=1e-5, rtol=1e-4, grad=True, seed=0, check_repr=True):
    """Build one module in PyTorch and in dtorch with the same weights, run both on the same inputs, compare.

    PyTorch's generator is seeded with ``seed`` before building, so the shared weights are the same on every run.
    Before any call it checks the two state_dicts (keys, shapes, dtypes), parameter and buffer names and (with
    ``check_repr``) that the reprs match with ``torch.`` spelled ``dtorch.``, then loads PyTorch's weights into the
    dtorch module. For each mode: both forward passes, every output (nested tuples flattened, None on both sides
    skipped; shape, dtype, values, ``requires_grad``), every buffer, and with ``grad`` one backward of a seeded
    random weighting of every differentiable output, then the gradients of every input leaf and every parameter.

    Args:
        make: a class name of ``torch.nn``/``dtorch.nn`` (built with ``args`` and ``kwargs``; arrays among
            ``kwargs`` become each library's tensors), or a function ``f(nn)`` called with ``torch.nn`` and
            ``dtorch.nn``.
        inputs: the positional inputs: a tuple of ints is a shape (standard normal values of ``dtype``), a floating
            array gets gradients, ``Const(array)`` and integer arrays do not, a tuple/list of inputs stays one
            (an RNN's ``(h, c)``), anything else is passed as it is.
        call_kwargs: keyword inputs (masks, flags); arrays become tensors without gradients.
        same_input: positions that pass input 0's tensor again (self-attention's query, key and value).
        dtype: the dtype of shape inputs; ``"float64"`` also turns both modules ``.double()``.
        modes: the passes, ``"train"`` and/or ``"eval"``, compared in turn.
        atol, rtol: tolerances of outputs, buffers and gradients.

    Returns:
        ``(torch_module, dtorch_module)`` after the passes.
    """
    kwargs = kwargs or {}
    torch.manual_seed(seed)
    dtorch.manual_seed(seed)
    if callable(make):
        torch_module, dtorch_module = make(torch.nn), make(dtorch.nn)
        name = type(dtorch_module).__name__
    else:
        name = make
        torch_module = getattr(torch.nn, name)(*args, **{k: _library_value(v, torch) for k, v in kwargs.items()})
        dtorch_module = getattr(dtorch.nn, name)(*args, **{k: _library_value(v, dtorch) for k, v in kwargs.items()})
    if _dtype_name(dtype) == "float64":
        torch_module, dtorch_module = torch_module.double(), dtorch_module.double()
    if check_repr:
        assert repr(dtorch_module) == repr(torch_module).replace("torch.", "dtorch."), (
            f"\n{dtorch_module!r}\n!=\n{torch_module!r}")
    torch_state, dtorch_state = torch_module.state_dict(), dtorch_module.state_dict()
    assert list(dtorch_state) == list(torch_state)
    for key in torch_state:
        assert tuple(dtorch_state[key].shape) == tuple(torch_state[key].shape), key
        assert _dtype_name(dtorch_state[key].dtype) == _dtype_name(torch_state[key].dtype), key
    assert [n for n, _ in dtorch_module.named_parameters()] == [n for n, _ in torch_module.named_parameters()]
    assert [n for n, _ in dtorch_module.named_buffers()] == [n for n, _ in torch_module.named_buffers()]
    copy_weights(torch_module, dtorch_module)

    rng = np.random.default_rng(seed)
    for mode in modes:
        torch_module.train(mode == "train")
        dtorch_module.train(mode == "train")
        assert dtorch_module.training == (mode == "train")
        arrays = _module_arrays(list(inputs), rng, np.dtype(_dtype_name(dtype)))
        torch_leaves, dtorch_leaves = [], []
        torch_inputs = _module_tensors(arrays, torch, torch_leaves)
        dtorch_inputs = _module_tensors(arrays, dtorch, dtorch_leaves)
        for position in same_input:  # the same tensor again: its leaf is input 0's
            torch_leaves = [leaf for leaf in torch_leaves if leaf is not torch_inputs[position]]
            dtorch_leaves = [leaf for leaf in dtorch_leaves if leaf is not dtorch_inputs[position]]
            torch_inputs[position], dtorch_inputs[position] = torch_inputs[0], dtorch_inputs[0]
        torch_kwargs = {k: _library_value(v, torch) for k, v in (call_kwargs or {}).items()}
        dtorch_kwargs = {k: _library_value(v, dtorch) for k, v in (call_kwargs or {}).items()}
        torch_outs = _flatten(torch_module(*torch_inputs, **torch_kwargs))
        dtorch_outs = _flatten(dtorch_module(*dtorch_inputs, **dtorch_kwargs))
        assert len(dtorch_outs) == len(torch_outs), f"{name}: {len(dtorch_outs)} outputs, torch has {len(torch_outs)}"
        torch_roots, dtorch_roots, upstream = [], [], []
        for index, (ours, theirs) in enumerate(zip(dtorch_outs, torch_outs)):
            what = f"{name} {mode} output {index}"
            assert (ours is None) == (theirs is None), what
            if theirs is None:
                continue
            _compare_tensor(ours, theirs, atol, rtol, what)
            assert ours.requires_grad == theirs.requires_grad, f"{what}: requires_grad {ours.requires_grad}"
            if theirs.requires_grad:
                torch_roots.append(theirs)
                dtorch_roots.append(ours)
                upstream.append(rng.standard_normal(tuple(theirs.shape)).astype(theirs.detach().numpy().dtype))
        for (key, theirs), (_, ours) in zip(torch_module.named_buffers(), dtorch_module.named_buffers()):
            _compare_tensor(ours, theirs, atol, rtol, f"{name} {mode} buffer {key}")
        if not grad or not torch_roots:
            continue
        torch.autograd.backward(torch_roots, [torch.from_numpy(g.copy()) for g in upstream])
        dtorch.autograd.backward(dtorch_roots, [dtorch.from_numpy(g.copy()) for g in upstream])
        for index, (ours, theirs) in enumerate(zip(dtorch_leaves, torch_leaves)):
            _compare_tensor(ours.grad, theirs.grad, atol, rtol, f"{name} {mode} gradient of input leaf {index}")
        for (key, theirs), (_, ours) in zip(torch_module.named_parameters(), dtorch_module.named_parameters()):
            if theirs.grad is None:
                assert ours.grad is None or not np.any(np.asarray(ours.grad._array)), f"{name} {mode}: {key}"
            else:
                _compare_tensor(ours.grad, theirs.grad, atol, rtol, f"{name} {mode} gradient of {key}")
        torch_module.zero_grad()
        dtorch_module.zero_grad()
    return torch_module, dtorch_module


def module_case_id(case):
    """A test id for a ``(name or builder, args, kwargs, inputs)`` case of ``check_module``."""
    name, args, kwargs, _ = case
    name = name if isinstance(name, str) else "builder"
    return name + "-" + "-".join([str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()
                                                           if not isinstance(v, (np.ndarray, Const))])


def assert_close(ours, theirs, atol=1e-5, rtol=1e-4, what="value"):
    """A dtorch tensor equals a torch tensor: shape, dtype and values (``allclose``; exact for non-floats)."""
    _compare_tensor(ours, theirs, atol, rtol, what)
