"""Elementwise ops against PyTorch: arithmetic, promotion, unary math, activations, comparisons, where/clamp,
in-place ops and the version counter."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import bools, check_op, ints

SHAPE_PAIRS = [
    [(3, 4), (3, 4)],
    [(3, 4), (4,)],
    [(2, 1, 4), (3, 1)],
    [(), (3,)],
    [(0, 4), (4,)],
    [(), ()],
]


@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
def test_binary_arithmetic_broadcasting(shapes):
    check_op(lambda a, b: a + b, None, shapes)
    check_op(lambda a, b: a - b, None, shapes)
    check_op(lambda a, b: a * b, None, shapes)
    check_op(lambda a, b: a / b, None, shapes, low=0.5, high=2.0)
    check_op(lambda a, b: a ** b, None, shapes, low=0.5, high=2.0)
    check_op(lambda a, b: a.maximum(b), None, shapes)
    check_op(lambda a, b: a.minimum(b), None, shapes)


def test_binary_arithmetic_non_contiguous():
    check_op(lambda a, b: a * b + a / b - b, None, [(3, 4), (3, 4)], noncontiguous=True, low=0.5)
    check_op(lambda a, b: a + b, None, [(5,), (5,)], noncontiguous=True)


def test_arithmetic_functions_and_alpha():
    check_op(lambda a, b: dtorch.add(a, b, alpha=2), lambda a, b: torch.add(a, b, alpha=2), [(3,), (3,)])
    check_op(lambda a, b: dtorch.sub(a, b, alpha=0.5), lambda a, b: torch.sub(a, b, alpha=0.5), [(2, 3), (3,)])
    check_op(lambda a, b: a.mul(b).div(b.abs() + 1), None, [(2, 3), (2, 3)])


def test_reflected_operators_and_python_scalars():
    check_op(lambda a: 2 + a, None, [(3,)])
    check_op(lambda a: 2.5 - a, None, [(3,)])
    check_op(lambda a: 3 * a, None, [(3,)])
    check_op(lambda a: 1.5 / a, None, [(3,)], low=0.5)
    check_op(lambda a: 2.0 ** a, None, [(3,)])
    check_op(lambda a: a ** 3, None, [(3,)])
    check_op(lambda a: a ** 0.5, None, [(3,)], low=0.1)
    check_op(lambda a: a / 4, None, [(3,)])
    check_op(lambda a: -a, None, [(2, 3)])
    check_op(lambda a: np.float64(2.0) * a, None, [(3,)])


def test_floor_divide_remainder_fmod():
    check_op(lambda a, b: a // b, None, [(3, 4), (4,)], low=0.5, grad=False)  # torch has no derivative
    check_op(lambda a, b: a % b, None, [(3, 4), (4,)], low=-3, high=3)
    check_op(lambda a, b: a.fmod(b), None, [(3, 4), (4,)], low=-3, high=3)
    check_op(lambda a: a % 3, None, [ints((5,), -7, 7)])
    check_op(lambda a: a // 2, None, [ints((5,), -7, 7)])
    check_op(lambda a: dtorch.div(a, 2, rounding_mode="trunc"), lambda a: torch.div(a, 2, rounding_mode="trunc"),
             [ints((5,), -7, 7)])
    check_op(lambda a: dtorch.div(a, 2, rounding_mode="floor"), lambda a: torch.div(a, 2, rounding_mode="floor"),
             [ints((5,), -7, 7)])


# ---- dtype promotion ----------------------------------------------------------------------------------------------

PROMOTION_CASES = [
    (np.arange(3, dtype=np.int64), 1.5),
    (np.arange(3, dtype=np.int32), 2),
    (np.arange(3, dtype=np.int64), True),
    (np.array([True, False, True]), 1),
    (np.array([True, False, True]), 1.5),
    (np.arange(3, dtype=np.uint8), np.arange(3, dtype=np.int8)),
    (np.arange(3, dtype=np.int32), np.array([True, False, True])),
    (np.arange(3, dtype=np.float32), np.array(2.0, dtype=np.float64)),
    (np.arange(3, dtype=np.int32), np.array(2.0, dtype=np.float64)),
    (np.arange(3, dtype=np.float16), np.arange(3, dtype=np.float32)),
    (np.arange(3, dtype=np.float16), 2.5),
    (np.arange(3, dtype=np.int8), np.array(1000, dtype=np.int64)),
    (np.arange(3, dtype=np.int64), np.arange(3, dtype=np.float16)),
    (np.array(3, dtype=np.int64), np.arange(3, dtype=np.float32)),
]


@pytest.mark.parametrize("left, right", PROMOTION_CASES)
def test_binary_promotion_matches_torch(left, right):
    check_op(lambda a, b: a + b, None, [left, right], grad=False)
    check_op(lambda a, b: b * a, None, [left, right], grad=False)
    check_op(lambda a, b: a / (b + 1), None, [left, right], grad=False)
    check_op(lambda a, b: a > b, None, [left, right], grad=False)


def test_promotion_gradients_come_back_in_input_dtype():
    check_op(lambda a, b: a * b, None, [np.arange(1, 4, dtype=np.float32), np.array(2.0, dtype=np.float64)])
    check_op(lambda a, b: a * b, None, [np.arange(1, 4, dtype=np.float32), np.arange(3, dtype=np.float64)])
    check_op(lambda a, b: a + b, None, [np.arange(1, 4, dtype=np.float16), ints((3,))])


def test_integer_true_division_and_int_unary_give_float():
    check_op(lambda a, b: a / b, None, [ints((4,), 1, 9), ints((4,), 1, 9, seed=5)])
    check_op(lambda a: a.exp(), None, [ints((4,), 0, 3)])
    check_op(lambda a: a.sqrt(), None, [ints((4,), 0, 9)])
    check_op(lambda a: a.abs(), None, [ints((4,), -3, 3)])
    check_op(lambda a: -a, None, [ints((4,), -3, 3)])
    check_op(lambda a: a.sign(), None, [ints((4,), -3, 3)])
    check_op(lambda a: a.floor(), None, [ints((4,), -3, 3)])
    check_op(lambda a: a.round(), None, [ints((4,), -3, 3)])


# ---- unary math and activations -----------------------------------------------------------------------------------

UNARY = {
    "exp": (lambda x: x.exp(), {}),
    "log": (lambda x: x.log(), {"low": 0.1, "high": 3.0}),
    "log1p": (lambda x: x.log1p(), {"low": -0.5, "high": 3.0}),
    "sqrt": (lambda x: x.sqrt(), {"low": 0.1, "high": 3.0}),
    "rsqrt": (lambda x: x.rsqrt(), {"low": 0.1, "high": 3.0}),
    "abs": (lambda x: x.abs(), {}),
    "sign": (lambda x: x.sign(), {}),
    "sin": (lambda x: x.sin(), {}),
    "cos": (lambda x: x.cos(), {}),
    "tanh": (lambda x: x.tanh(), {}),
    "sigmoid": (lambda x: x.sigmoid(), {"low": -8, "high": 8}),
    "relu": (lambda x: x.relu(), {}),
    "erf": (lambda x: x.erf(), {}),
    "floor": (lambda x: x.floor(), {"low": -5, "high": 5}),
    "ceil": (lambda x: x.ceil(), {"low": -5, "high": 5}),
    "round": (lambda x: x.round(), {"low": -5, "high": 5}),
    "trunc": (lambda x: x.trunc(), {"low": -5, "high": 5}),
    "reciprocal": (lambda x: x.reciprocal(), {"low": 0.5}),
    "square": (lambda x: x.square(), {}),
    "log2": (lambda x: x.log2(), {"low": 0.1}),
    "neg": (lambda x: x.neg(), {}),
}

@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(3, 4), (), (0, 3), (2, 3, 4)])
def test_unary(name, shape):
    fn, options = UNARY[name]
    check_op(fn, None, [shape], **options)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_non_contiguous_and_float64(name):
    fn, options = UNARY[name]
    check_op(fn, None, [(3, 4)], noncontiguous=True, **options)
    check_op(fn, None, [(5,)], dtype="float64", **options)


def test_erf_float64_accuracy():
    check_op(lambda x: x.erf(), None, [(200,)], dtype="float64", low=-6, high=6)
    check_op(lambda x: x.erf(), None, [(200,)], low=-6, high=6)


def test_top_level_unary_functions():
    for name in ("exp", "sin", "tanh", "sigmoid", "relu", "abs", "erf", "floor", "sign"):
        check_op(getattr(dtorch, name), getattr(torch, name), [(3, 2)])
    check_op(dtorch.log, torch.log, [(3,)], low=0.2)


def test_round_half_to_even_and_decimals():
    values = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.125, 1.2345], dtype=np.float32)
    check_op(lambda x: x.round(), None, [values])
    check_op(lambda x: dtorch.round(x, decimals=2), lambda x: torch.round(x, decimals=2), [values])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    check_op(lambda x: dtorch.gelu(x, approximate=approximate),
             lambda x: torch.nn.functional.gelu(x, approximate=approximate), [(4, 5)], low=-4, high=4)
    check_op(lambda x: x.gelu(approximate=approximate),
             lambda x: torch.nn.functional.gelu(x, approximate=approximate), [(3,)], dtype="float64")


def test_silu_softplus():
    check_op(dtorch.silu, torch.nn.functional.silu, [(4, 5)], low=-6, high=6)
    check_op(dtorch.softplus, torch.nn.functional.softplus, [(4, 5)], low=-6, high=6)
    check_op(lambda x: dtorch.softplus(x, beta=2.0, threshold=3.0),
             lambda x: torch.nn.functional.softplus(x, beta=2.0, threshold=3.0), [(4, 5)], low=-4, high=4)
    check_op(lambda x: x.softplus(), lambda x: torch.nn.functional.softplus(x), [np.array([-100.0, 0.0, 30.0],
                                                                                            dtype=np.float32)])


def test_pow_variants():
    check_op(lambda a, b: a ** b, None, [(3, 1), (1, 4)], low=0.5, high=2.0)
    check_op(lambda a: dtorch.pow(a, 2), lambda a: torch.pow(a, 2), [(3,)])
    check_op(lambda a: dtorch.pow(2.0, a), lambda a: torch.pow(2.0, a), [(3,)])
    check_op(lambda a: a ** 2, None, [ints((4,), -3, 3)])
    check_op(lambda a, b: a ** b, None, [ints((4,), 1, 3), (4,)])


def test_abs_relu_gradients_at_zero():
    values = np.array([-1.0, 0.0, 2.0], dtype=np.float32)
    check_op(lambda x: x.abs(), None, [values])
    check_op(lambda x: x.relu(), None, [values])
    check_op(lambda x: x.sqrt(), None, [np.array([1.0, 4.0], dtype=np.float32)])


# ---- comparisons and logic ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shapes", [[(3, 4), (4,)], [(), (3,)], [(0,), (1,)]])
def test_comparisons(shapes):
    for fn in (lambda a, b: a < b, lambda a, b: a <= b, lambda a, b: a > b, lambda a, b: a >= b,
               lambda a, b: a == b, lambda a, b: a != b, lambda a, b: a.eq(b), lambda a, b: a.ne(b),
               lambda a, b: a.lt(b), lambda a, b: a.ge(b)):
        check_op(fn, None, shapes, low=-1, high=1)


def test_comparisons_with_scalars_and_ties():
    check_op(lambda a: a > 0.5, None, [(5,)])
    check_op(lambda a: 0 < a, None, [(5,)])
    check_op(lambda a, b: a == b, None, [ints((6,), 0, 3), ints((6,), 0, 3, seed=4)])
    check_op(lambda a, b: a < b, None, [ints((6,), 0, 3), (6,)])


def test_logical_and_bitwise():
    a, b = bools((3, 4)), bools((4,), seed=7)
    check_op(lambda x, y: x.logical_and(y), None, [a, b])
    check_op(lambda x, y: x.logical_or(y), None, [a, b])
    check_op(lambda x, y: x.logical_xor(y), None, [a, b])
    check_op(lambda x: x.logical_not(), None, [a])
    check_op(lambda x, y: x & y, None, [a, b])
    check_op(lambda x, y: x | y, None, [a, b])
    check_op(lambda x, y: x ^ y, None, [a, b])
    check_op(lambda x: ~x, None, [a])
    check_op(lambda x, y: x & y, None, [ints((4,), 0, 9), ints((4,), 0, 9, seed=3)])
    check_op(lambda x: ~x, None, [ints((4,), 0, 9)])
    check_op(lambda x, y: dtorch.logical_and(x, y), lambda x, y: torch.logical_and(x, y), [(3,), (3,)], low=-1,
             high=1)
    check_op(lambda x: x.logical_not(), None, [np.array([0.0, 1.5, -2.0], dtype=np.float32)])


def test_isnan_isinf_isfinite():
    values = np.array([0.0, np.nan, np.inf, -np.inf, 1.0], dtype=np.float32)
    check_op(lambda x: x.isnan(), None, [values])
    check_op(lambda x: x.isinf(), None, [values])
    check_op(lambda x: x.isfinite(), None, [values])


# ---- where, clamp, maximum, minimum -------------------------------------------------------------------------------


def test_where():
    check_op(lambda c, a, b: dtorch.where(c, a, b), lambda c, a, b: torch.where(c, a, b),
             [bools((3, 4)), (3, 4), (4,)])
    check_op(lambda c, a, b: dtorch.where(c, a, b), lambda c, a, b: torch.where(c, a, b),
             [bools((4,)), (3, 1), ()])
    check_op(lambda c, a: dtorch.where(c, a, 0.0), lambda c, a: torch.where(c, a, 0.0), [bools((2, 3)), (2, 3)])
    check_op(lambda c, a: dtorch.where(c, 1.0, a), lambda c, a: torch.where(c, 1.0, a), [bools((2, 3)), (2, 3)])
    check_op(lambda c, a: dtorch.where(c, a, 2), lambda c, a: torch.where(c, a, 2), [bools((3,)), ints((3,))])
    check_op(lambda c, a: dtorch.where(c, a, 2.5), lambda c, a: torch.where(c, a, 2.5), [bools((3,)), ints((3,))])
    check_op(lambda a: dtorch.where(a > 0, a, a * 2), lambda a: torch.where(a > 0, a, a * 2), [(3, 4)],
             noncontiguous=True)
    check_op(lambda c, a, b: a.where(c, b), None, [bools((3,)), (3,), (3,)])
    check_op(lambda c, a, b: dtorch.where(c, a, b), lambda c, a, b: torch.where(c, a, b),
             [bools((3,)), (3,), np.arange(3, dtype=np.float64)])


def test_clamp():
    check_op(lambda x: x.clamp(-0.5, 0.5), None, [(3, 4)])
    check_op(lambda x: x.clamp(min=0.1), None, [(3, 4)])
    check_op(lambda x: x.clamp(max=0.1), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.clamp_min(0.0), None, [(5,)])
    check_op(lambda x: x.clamp_max(0.0), None, [(5,)])
    check_op(lambda x: x.clip(-1, 1), None, [()])
    check_op(lambda x: x.clamp(0, 2), None, [ints((6,), -3, 4)])
    check_op(lambda x: x.clamp(0.5, 2.5), None, [ints((6,), -3, 4)])
    check_op(lambda x, lo, hi: x.clamp(lo, hi), None, [(3, 4), (4,), (3, 1)])
    check_op(lambda x, lo: x.clamp(min=lo), None, [(3, 4), (4,)])
    check_op(lambda x, hi: dtorch.clamp(x, max=hi), lambda x, hi: torch.clamp(x, max=hi), [(3, 4), ()])


def test_maximum_minimum_ties_share_gradient():
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    b = np.array([1.0, 5.0, 0.0], dtype=np.float32)
    check_op(lambda x, y: dtorch.maximum(x, y), lambda x, y: torch.maximum(x, y), [a, b])
    check_op(lambda x, y: dtorch.minimum(x, y), lambda x, y: torch.minimum(x, y), [a, b])
    check_op(lambda x, y: x.maximum(y), None, [ints((4,), 0, 5), ints((4,), 0, 5, seed=9)])


# ---- in-place ops and the version counter ---------------------------------------------------------------------------


def _inplace(method, *args):
    def fn(x):
        y = x * 1  # a non-leaf, so in-place is allowed under grad
        return getattr(y, method)(*args)
    return fn


@pytest.mark.parametrize("method, args, options", [
    ("add_", (2.0,), {}),
    ("sub_", (0.5,), {}),
    ("mul_", (3.0,), {}),
    ("div_", (2.0,), {}),
    ("pow_", (2,), {}),
    ("clamp_", (-0.5, 0.5), {}),
    ("clamp_min_", (0.0,), {}),
    ("exp_", (), {}),
    ("log_", (), {"low": 0.5}),
    ("sqrt_", (), {"low": 0.5}),
    ("sigmoid_", (), {}),
    ("tanh_", (), {}),
    ("relu_", (), {}),
    ("abs_", (), {}),
    ("neg_", (), {}),
    ("zero_", (), {}),
    ("fill_", (1.5,), {}),
])
def test_inplace_methods(method, args, options):
    check_op(_inplace(method, *args), None, [(3, 4)], **options)


def test_inplace_with_tensor_operands_and_broadcasting():
    check_op(lambda x, y: (x * 1).add_(y), None, [(3, 4), (4,)])
    check_op(lambda x, y: (x * 1).mul_(y), None, [(3, 4), (3, 1)])
    check_op(lambda x, y: (x * 1).add_(y, alpha=2), None, [(3, 4), (4,)])
    check_op(lambda x, y: (x * 1).copy_(y), None, [(3, 4), (4,)])
    check_op(lambda x, y: (x * 1).copy_(y), None, [(3, 4), np.arange(4, dtype=np.float64)])


def test_inplace_operators():
    def iadd(x, y):
        z = x * 1
        z += y
        z *= 2
        z -= y
        z /= 3
        return z
    check_op(iadd, None, [(3, 4), (4,)])


def test_inplace_without_grad_returns_self_and_keeps_dtype():
    for lib in (torch, dtorch):
        x = lib.arange(4)
        assert x.add_(1) is x and x.tolist() == [1, 2, 3, 4]
        x.mul_(2)
        assert str(x.dtype).endswith("int64") and x.tolist() == [2, 4, 6, 8]
        x.zero_()
        assert x.tolist() == [0, 0, 0, 0]
        x.fill_(7)
        assert x.tolist() == [7] * 4
        x.copy_(lib.tensor([1.7, 2.2, -1.5, 0.0]))
        assert x.tolist() == [1, 2, -1, 0]
        y = lib.zeros(2, 3)
        y.copy_(lib.tensor([1, 2, 3]))
        assert y.tolist() == [[1.0, 2.0, 3.0]] * 2
        y.clamp_(max=2)
        assert y.tolist() == [[1.0, 2.0, 2.0]] * 2


def test_inplace_result_type_cannot_be_cast():
    for lib in (torch, dtorch):
        x = lib.arange(3)
        with pytest.raises(RuntimeError, match="can't be cast"):
            x.add_(1.5)
        with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
            lib.zeros(3).add_(lib.zeros(2, 3))


def test_inplace_on_saved_tensor_raises_like_torch():
    for lib in (torch, dtorch):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = a * 2
        c = b * b  # saves b
        b.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            c.sum().backward()


def test_inplace_on_saved_input_through_a_view_raises():
    for lib in (torch, dtorch):
        a = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        b = a * 1
        c = b * b  # saves b (exp would save its output, not b)
        with lib.no_grad():
            b[0].mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            c.sum().backward()


def test_inplace_on_unsaved_tensor_is_differentiated():
    check_op(lambda x: (x + 1).mul_(2).exp_(), None, [(3,)])
    check_op(lambda x, y: (x + y).relu_() * y, None, [(3,), (3,)])


def test_inplace_on_leaf_requiring_grad_raises():
    for lib in (torch, dtorch):
        x = lib.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            x.add_(1)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            x.zero_()
        with lib.no_grad():
            x.mul_(2)
        assert x.tolist() == [2.0, 2.0, 2.0]


def test_version_counter_counts_like_torch():
    for lib in (torch, dtorch):
        x = lib.zeros(3)
        assert x._version == 0
        x.add_(1)
        x[0] = 5
        view = x[1:]
        view.mul_(2)
        assert x._version == 3 and view._version == 3


def test_pow_gradient_at_zero_base():
    values = np.array([0.0, 1.5, -2.0], dtype=np.float32)
    check_op(lambda x: x ** 0, None, [values])
    check_op(lambda x: x ** 2, None, [values])
    check_op(lambda x: x ** 1, None, [values])
    check_op(lambda x, y: x ** y, None, [values, np.array([0.0, 2.0, 3.0], dtype=np.float32)])
    check_op(lambda y: 0.0 ** y, None, [np.array([0.0, 2.0, 3.0], dtype=np.float32)])


def test_bool_arithmetic_and_default_dtype_promotion():
    a, b = bools((5,)), bools((5,), seed=4)
    check_op(lambda x, y: x + y, None, [a, b])
    check_op(lambda x, y: x * y, None, [a, b])
    check_op(lambda x: x + 1, None, [a])
    check_op(lambda x: x * 2.5, None, [a])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool tensors"):
            lib.tensor([True]) - lib.tensor([False])
    dtorch.set_default_dtype(dtorch.float64)
    torch.set_default_dtype(torch.float64)
    try:
        check_op(lambda x: x + 1.5, None, [ints((3,))], dtype="float64")
        check_op(lambda x: x / 2, None, [ints((3,))], dtype="float64")
        check_op(lambda x: x.exp(), None, [ints((3,))], dtype="float64")
        check_op(lambda x: x.float() + 1.5, None, [ints((3,))], dtype="float64")
    finally:
        dtorch.set_default_dtype(dtorch.float32)
        torch.set_default_dtype(torch.float32)


def test_clamp_min_above_max_and_inf_fill():
    check_op(lambda x: x.clamp(1.0, 0.0), None, [(4,)])
    check_op(lambda x: (x * 1).fill_(2.0), None, [np.array([np.inf, 1.0], dtype=np.float32)])
    check_op(lambda x: (x * 1).zero_(), None, [np.array([np.inf, np.nan], dtype=np.float32)])


def test_unary_ops_on_bool_and_uint8_dtypes():
    check_op(lambda x: x.sign(), None, [bools((4,))])
    check_op(lambda x: x.square(), None, [bools((4,))])
    check_op(lambda x: x.all(), None, [ints((4,), 0, 2, dtype=np.uint8)])
    check_op(lambda x: x.any(0), None, [ints((2, 4), 0, 2, dtype=np.uint8)])
    check_op(lambda x: x.abs(), None, [ints((4,), 0, 200, dtype=np.uint8)])
    check_op(lambda x: x.square(), None, [ints((4,), -5, 5, dtype=np.int8)])
    check_op(lambda x: x.exp(), None, [bools((4,))])
    check_op(lambda x: x.sigmoid(), None, [ints((4,), 0, 5, dtype=np.uint8)])


def test_div_rounding_modes_keep_torch_dtypes():
    for mode in ("trunc", "floor"):
        check_op(lambda a: dtorch.div(a, 2.5, rounding_mode=mode), lambda a: torch.div(a, 2.5, rounding_mode=mode),
                 [ints((5,), -7, 7)])
        check_op(lambda a, b: dtorch.div(a, b, rounding_mode=mode), lambda a, b: torch.div(a, b, rounding_mode=mode),
                 [(5,), (5,)], grad=False)
        check_op(lambda a, b: dtorch.div(a, b, rounding_mode=mode), lambda a, b: torch.div(a, b, rounding_mode=mode),
                 [ints((5,), -7, 7), ints((5,), 1, 4, seed=3)])


def test_float16_ops_keep_half_precision():
    for fn, shapes in [
        (lambda a, b: a + b * a / (b.abs() + 1), [(3, 4), (4,)]),
        (lambda a: a.exp().log1p().sigmoid().tanh(), [(3, 4)]),
        (lambda a: a.abs().sqrt() ** 2.5, [(3, 4)]),
        (lambda a: a.erf(), [(3, 4)]),
        (lambda a: a.sum(1) + a.mean() + a.var(1) + a.norm() + a.logsumexp(1), [(3, 4)]),
        (lambda a: a.max(1), [(3, 4)]),
        (lambda a: a.cumsum(1), [(3, 4)]),
        (lambda a, b: a @ b, [(3, 4), (4, 2)]),
        (lambda a: a.sort(1), [(3, 4)]),
    ]:
        check_op(fn, None, shapes, dtype="float16")


def test_nan_to_num():
    values = np.array([np.nan, np.inf, -np.inf, 1.5, -2.0], dtype=np.float32)
    check_op(lambda x: x.nan_to_num(), None, [values])
    check_op(lambda x: x.nan_to_num(nan=1.0, posinf=2.0, neginf=-3.0), None, [values])
    check_op(lambda x: x.nan_to_num(), None, [values.astype(np.float64)])
    check_op(lambda x: x.nan_to_num(), None, [ints((3,))])


@pytest.mark.parametrize("bounds", [
    (np.arange(3, dtype=np.float64), None),
    (np.array(0.5, dtype=np.float64), np.array(1.5, dtype=np.float32)),
    (np.arange(3, dtype=np.int32), np.array(2, dtype=np.int64)),
    (None, np.arange(3, dtype=np.float16)),
], ids=str)
def test_clamp_with_tensor_bounds_promotes_like_torch(bounds):
    low, high = bounds
    given = [b for b in bounds if b is not None]

    def fn(x, *tensors):
        tensors = list(tensors)
        return x.clamp(tensors.pop(0) if low is not None else None, tensors.pop(0) if high is not None else None)

    check_op(fn, None, [ints((3,), 0, 4, dtype=np.int16)] + given, grad=False)
    check_op(fn, None, [(3,)] + given)


def test_bool_tensor_with_int_scalar_is_int64():
    for fn in (lambda x: x ** 2, lambda x: x + 1, lambda x: x * 3, lambda x: 2 * x, lambda x: x // 1):
        check_op(fn, None, [bools((4,))])


# ---- edge shapes, layouts and dtypes for every elementwise op (the audit of issue 3's test list) ----------------

EDGE_SHAPES = [((), {}), ((0, 3), {}), ((3, 4), {"noncontiguous": True})]


@pytest.mark.parametrize("shape, layout", EDGE_SHAPES, ids=["0-d", "empty", "transposed"])
def test_reflected_and_integer_arithmetic_edge_shapes(shape, layout):
    check_op(lambda a: 2 + a, None, [shape], **layout)
    check_op(lambda a: 2.5 - a, None, [shape], **layout)
    check_op(lambda a: 3 * a, None, [shape], **layout)
    check_op(lambda a: 1.5 / a, None, [shape], low=0.5, **layout)
    check_op(lambda a: 2.0 ** a, None, [shape], **layout)
    check_op(lambda a: 7 // a, None, [shape], low=0.5, grad=False, **layout)  # torch has no derivative
    check_op(lambda a: 5 % a, None, [shape], low=0.5, grad=False, **layout)
    check_op(lambda a: 5 % a, None, [ints(shape, 1, 4)])
    check_op(lambda a: -7 // a, None, [ints(shape, 1, 4)])
    check_op(lambda a, b: a // b, None, [shape, shape], low=0.5, grad=False, **layout)
    check_op(lambda a, b: a % b, None, [shape, shape], low=0.5, **layout)
    check_op(lambda a, b: a.fmod(b), None, [shape, ()], low=0.5, **layout)
    check_op(lambda a: a.remainder(-1.5), None, [shape], **layout)
    check_op(lambda a, b: a ** b, None, [shape, shape], low=0.5, **layout)
    check_op(lambda a, b: a.maximum(b), None, [shape, ()], **layout)
    check_op(lambda a, b: a.minimum(b), None, [shape, shape], **layout)


def test_floor_divide_remainder_functions_broadcast_and_signs():
    check_op(lambda a, b: dtorch.floor_divide(a, b), lambda a, b: torch.floor_divide(a, b), [(3, 4), (4,)], low=0.5,
             grad=False)
    check_op(lambda a, b: dtorch.remainder(a, b), lambda a, b: torch.remainder(a, b), [(2, 1, 4), (3, 1)], low=0.5)
    check_op(lambda a, b: dtorch.fmod(a, b), lambda a, b: torch.fmod(a, b), [(3, 4), (3, 1)], low=0.5)
    check_op(lambda a, b: a % b, None, [(6,), (6,)], low=-3, high=-0.5)  # a negative divisor: its sign
    check_op(lambda a, b: a // b, None, [ints((6,), -7, 7), ints((6,), -3, 0, seed=2)])
    check_op(lambda a, b: a % b, None, [ints((6,), -7, 7), ints((6,), -3, 0, seed=2)])
    check_op(lambda a, b: a.fmod(b), None, [ints((6,), -7, 7), ints((6,), -3, 0, seed=2)])
    check_op(lambda a: a // 3, None, [ints((5,), 0, 200, dtype=np.uint8)])
    check_op(lambda a, b: a // b, None, [ints((3,), 1, 9, dtype=np.uint8), ints((3,), 1, 5, dtype=np.int8)])
    check_op(lambda a, b: a / b, None, [ints((3,)), np.array(2.0, dtype=np.float32)])


@pytest.mark.parametrize("scalar", [-1, 300, -200, 2 ** 40])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
def test_python_int_out_of_the_dtype_range_wraps_like_torch(scalar, dtype):
    check_op(lambda x: x + scalar, None, [ints((5,), 0, 100, dtype=dtype)])
    check_op(lambda x: scalar - x, None, [ints((5,), 0, 100, dtype=dtype)])
    check_op(lambda x: x * scalar, None, [ints((5,), 0, 100, dtype=dtype)])
    check_op(lambda x: x > scalar, None, [ints((5,), 0, 100, dtype=dtype)])
    check_op(lambda x: x == scalar, None, [ints((5,), 0, 100, dtype=dtype)])


def test_python_int_beyond_64_bits_raises_like_torch():
    for lib in (torch, dtorch):
        with pytest.raises(OverflowError):
            lib.arange(3, dtype=lib.uint8) + 2 ** 64


@pytest.mark.parametrize("shape, layout", EDGE_SHAPES, ids=["0-d", "empty", "transposed"])
def test_activations_edge_shapes(shape, layout):
    check_op(dtorch.gelu, torch.nn.functional.gelu, [shape], **layout)
    check_op(lambda x: dtorch.gelu(x, approximate="tanh"), lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
             [shape], **layout)
    check_op(dtorch.silu, torch.nn.functional.silu, [shape], **layout)
    check_op(dtorch.softplus, torch.nn.functional.softplus, [shape], **layout)
    check_op(lambda x: x.relu(), None, [shape], **layout)


def test_activations_float64_float16_and_integer_inputs():
    check_op(dtorch.silu, torch.nn.functional.silu, [(5,)], dtype="float64")
    check_op(dtorch.softplus, torch.nn.functional.softplus, [(5,)], dtype="float64")
    check_op(lambda x: x.sigmoid(), None, [(3,)], dtype="float16")
    check_op(lambda x: x.rsqrt(), None, [(3,)], dtype="float16", low=0.5)
    check_op(lambda x: x.relu(), None, [ints((3,), -3, 3)])
    check_op(lambda x: x.ceil(), None, [ints((3,), -3, 3)])
    check_op(lambda x: dtorch.round(x, decimals=-1), lambda x: torch.round(x, decimals=-1), [(5,)], low=-50, high=50)
    check_op(lambda x: x.sign(), None, [np.array([-1.0, 0.0, -0.0, 2.0], dtype=np.float32)])


@pytest.mark.parametrize("shape, layout", EDGE_SHAPES, ids=["0-d", "empty", "transposed"])
def test_comparisons_and_logic_edge_shapes(shape, layout):
    check_op(lambda a, b: a < b, None, [shape, shape], **layout)
    check_op(lambda a, b: a == b, None, [shape, ()], **layout)
    check_op(lambda a, b: a.ge(b), None, [shape, shape], **layout)
    check_op(lambda a, b: (a > 0).logical_and(b > 0), None, [shape, shape], **layout)
    check_op(lambda a, b: (a > 0).logical_or(b > 0), None, [shape, ()], **layout)
    check_op(lambda a, b: (a > 0).logical_xor(b > 0), None, [shape, shape], **layout)
    check_op(lambda a: (a > 0).logical_not(), None, [shape], **layout)
    check_op(lambda a, b: (a > 0) & (b > 0), None, [shape, shape], **layout)
    check_op(lambda a: ~(a > 0), None, [shape], **layout)


def test_comparisons_and_logic_across_dtypes():
    check_op(lambda a: a > 1.5, None, [ints((5,))])
    check_op(lambda a, b: a == b, None, [bools((5,)), ints((5,), 0, 2)])
    check_op(lambda a, b: a < b, None, [np.arange(3, dtype=np.float16), np.array([0.5, 1.5, 2.5], dtype=np.float32)])
    check_op(lambda a, b: a.logical_and(b), None, [np.array(True), bools((3,))])
    check_op(lambda a, b: a.logical_or(b), None, [bools((0, 3)), bools((3,))])
    check_op(lambda a: a.logical_not(), None, [ints((3,), 0, 2)])
    check_op(lambda a, b: a.logical_and(b), None, [ints((3,), 0, 2), (3,)])


def test_where_clamp_maximum_edge_shapes():
    where = (lambda c, a, b: dtorch.where(c, a, b), lambda c, a, b: torch.where(c, a, b))
    check_op(*where, [bools((0, 3)), (0, 3), (3,)])
    check_op(*where, [np.array(True), (), ()])
    check_op(*where, [np.array(False), (2, 3), (3,)])
    check_op(*where, [bools((3, 4)), (3, 4), (3, 4)], noncontiguous=True)
    check_op(*where, [bools((3,)), ints((3,)), (3,)])
    check_op(lambda x: x.clamp(-0.5, 0.5), None, [(0, 3)])
    check_op(lambda x: x.clamp(-0.5, 0.5), None, [()])
    check_op(lambda x, lo: x.clamp(min=lo), None, [(3, 4), (3, 4)], noncontiguous=True)
    check_op(lambda x: x.clamp(min=0.5), None, [ints((4,), -2, 3)])
    check_op(lambda x: x.clamp(0, 1), None, [np.array([np.nan, 2.0], dtype=np.float32)], grad=False)
    check_op(lambda a, b: a.maximum(b), None, [(0, 3), ()])
    check_op(lambda a, b: dtorch.maximum(a, b), lambda a, b: torch.maximum(a, b), [ints((3,)), (3,)])
    check_op(lambda a, b: a.maximum(b), None, [np.array([np.nan, 1.0], dtype=np.float32),
                                               np.array([0.0, np.nan], dtype=np.float32)], grad=False)
    check_op(lambda a, b: a.minimum(b), None, [(3, 4), (3, 1)], noncontiguous=True)


@pytest.mark.parametrize("method, args", [
    ("add_", (2.0,)), ("sub_", (1,)), ("mul_", (3.0,)), ("div_", (2,)), ("pow_", (2,)), ("zero_", ()),
    ("fill_", (1.5,)), ("clamp_", (-0.5, 0.5)), ("exp_", ()), ("remainder_", (1.5,)), ("fmod_", (1.5,)),
])
@pytest.mark.parametrize("shape, layout", EDGE_SHAPES, ids=["0-d", "empty", "transposed"])
def test_inplace_methods_edge_shapes(method, args, shape, layout):
    check_op(_inplace(method, *args), None, [shape], **layout)


def test_inplace_with_tensor_operands_edge_cases():
    check_op(lambda x, y: (x * 1).copy_(y), None, [(), ()])
    check_op(lambda x, y: (x * 1).copy_(y), None, [(0, 3), ()])
    check_op(lambda x, y: (x * 1).copy_(y), None, [(3, 4), (3, 4)], noncontiguous=True)
    check_op(lambda x, y: (x * 1).add_(y), None, [(3, 4), (3, 4)], noncontiguous=True)
    check_op(lambda x, y: (x * 1).clamp_(min=y), None, [(3, 4), (4,)])
    check_op(lambda x, y: (x * 1).pow_(y), None, [(3, 4), (4,)], low=0.5)
    check_op(lambda x, m: (x * 1).masked_fill_(m, 2.0), None, [(3, 4), bools((4,))])
    check_op(lambda x, i: (x * 1).scatter_(0, i, 1.5), None, [(3, 4), np.array([[0, 1, 2, 0]])])
    check_op(lambda x, y: x.clone().add_(y), None, [ints((3,)), ints((3,), dtype=np.int32)])
    check_op(lambda x, y: (x * 1).add_(y), None, [(3,), ints((3,))])
    check_op(lambda x, y: (x * 1).add_(y), None, [(3,), np.arange(3.0)])
    check_op(lambda x, y: (x * 1).mul_(y), None, [np.arange(3, dtype=np.float16), np.arange(3, dtype=np.float32)])
    check_op(lambda x: x.clone().fill_(2.7), None, [ints((3,))])
    check_op(lambda x: x.clone().zero_(), None, [ints((3,))])


def test_fill_with_a_tensor_value_passes_its_gradient():
    check_op(lambda x, v: (x * 1).fill_(v), None, [(3, 4), ()])
    check_op(lambda x, v: (x * 1).fill_(v), None, [(0, 3), ()])
    check_op(lambda x, v: (x * 1).fill_(v), None, [(3,), np.array(2.0, dtype=np.float64)])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="fill_ only supports 0-dimension value tensor"):
            lib.zeros(3).fill_(lib.ones(1))


PROMOTION_WITH_0D_CASES = [
    (ints((3,)), np.array(1.5, dtype=np.float16)),
    (ints((3,), dtype=np.uint8), np.array(-3, dtype=np.int8)),
    (ints((3,), dtype=np.int8), np.array(3, dtype=np.uint8)),
    (bools((3,)), np.array(3, dtype=np.int32)),
    (bools((3,)), np.array(1.5, dtype=np.float64)),
    (np.arange(3, dtype=np.float16), np.array(2.0, dtype=np.float64)),
    (np.arange(3, dtype=np.float16), ints((3,), dtype=np.uint8)),
    (ints((3,), dtype=np.uint8), ints((3,), dtype=np.int16)),
    (ints((3,), dtype=np.uint8), bools((3,))),
    (np.array(2, dtype=np.int32), np.array(2.5, dtype=np.float16)),
    (np.array(True), np.array(2, dtype=np.uint8)),
    (np.array(2.0, dtype=np.float64), np.array(3.0, dtype=np.float16)),
    (ints((2, 3), dtype=np.int16), ints((3,), dtype=np.int32)),
]


@pytest.mark.parametrize("left, right", PROMOTION_WITH_0D_CASES, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_promotion_with_0d_tensors_and_small_ints(left, right):
    check_op(lambda a, b: a + b, None, [left, right], grad=False)
    check_op(lambda a, b: b * a, None, [left, right], grad=False)
    check_op(lambda a, b: a.maximum(b), None, [left, right], grad=False)
    check_op(lambda a, b: dtorch.where(a > 0, a, b) if isinstance(a, dtorch.Tensor) else torch.where(a > 0, a, b),
             None, [left, right], grad=False)
    check_op(lambda a, b: a / (b + 1), None, [left, right], grad=False)
    check_op(lambda a, b: a == b, None, [left, right], grad=False)


@pytest.mark.parametrize("scalar", [2, 2.5, True], ids=repr)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.bool_, np.float16])
def test_python_scalar_promotion_per_dtype(scalar, dtype):
    x = ints((3,), 0, 2, dtype=dtype)
    check_op(lambda a: a * scalar, None, [x])
    check_op(lambda a: scalar + a, None, [x])
    check_op(lambda a: a >= scalar, None, [x])
    check_op(lambda a: a / scalar, None, [x])
    check_op(lambda a: a ** 2, None, [x])


@pytest.mark.parametrize("name, make", [
    ("int // 0", lambda L: L.arange(3) // 0),
    ("int % 0", lambda L: L.arange(3) % 0),
    ("fmod 0", lambda L: L.arange(3).fmod(0)),
    ("int // int tensor with a zero", lambda L: L.arange(3) // L.tensor([1, 0, 2])),
    ("python int // int tensor", lambda L: 5 // L.tensor([0, 1])),
    ("uint8 % 0", lambda L: L.tensor([1], dtype=L.uint8) % 0),
    ("div trunc by 0", lambda L: L.div(L.arange(3), 0, rounding_mode="trunc")),
    ("div floor by 0", lambda L: L.div(L.arange(3), 0, rounding_mode="floor")),
])
def test_integer_division_by_zero_raises_like_torch(name, make):
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            make(lib)


FILL_ROUTES = {
    "fill_": lambda L, dtype, v: L.zeros(2, dtype=dtype).fill_(v),
    "full": lambda L, dtype, v: L.full((2,), v, dtype=dtype),
    "setitem": lambda L, dtype, v: _assigned(L.zeros(2, dtype=dtype), v),
    "where": lambda L, dtype, v: L.where(L.tensor([True, False]), L.ones(2, dtype=dtype), v),
    "scatter": lambda L, dtype, v: L.zeros(2, dtype=dtype).scatter(0, L.tensor([1]), v),
    "masked_fill": lambda L, dtype, v: L.zeros(2, dtype=dtype).masked_fill(L.tensor([True, False]), v),
}


def _assigned(tensor, value):
    tensor[1] = value
    return tensor


@pytest.mark.parametrize("route", sorted(FILL_ROUTES))
@pytest.mark.parametrize("dtype, values", [
    ("uint8", [-1, -255, 255, -256, 256, 2.7, -0.5, 255.5, float("nan")]),
    ("int8", [-1, -128, 127, 128, -129, -2.7, 127.5, float("inf")]),
    ("int64", [2 ** 63 - 1, -2.7, float("nan")]),
    ("bool", [2, -0.5, float("nan")]),
])
def test_fill_values_convert_to_integer_dtypes_like_torch(route, dtype, values):
    make = FILL_ROUTES[route]
    for value in values:
        if route == "where" and isinstance(value, float):
            continue  # a float scalar promotes where's integer or bool partner to float
        try:
            expected = make(torch, getattr(torch, dtype), value).tolist()
        except RuntimeError:
            with pytest.raises(RuntimeError, match="value cannot be converted to type"):
                make(dtorch, getattr(dtorch, dtype), value)
            continue
        assert make(dtorch, getattr(dtorch, dtype), value).tolist() == expected, value


def test_integer_pow_with_negative_tensor_exponents():
    bases, powers = np.array([-2, -1, 0, 1, 2, 3], dtype=np.int32), np.array([-1, -3, 2, -2, -1, 2], dtype=np.int32)
    check_op(lambda b, e: b ** e, None, [bases, powers])
    check_op(lambda b, e: b ** e, None, [bases, powers.astype(np.int64)])
    check_op(lambda b, e: b ** e, None, [np.array([[1], [-1]]), np.array([-1, -2, 2])])
    check_op(lambda e: 2 ** e, None, [np.array([-1, 0, 3])])
    check_op(lambda e: (-1) ** e, None, [np.array([-1, -2])])


@pytest.mark.parametrize("shapes, make", [
    (([2, 3], [4]), lambda L: L.zeros(2, 3) + L.zeros(4)),
    (([2, 3], [2, 4]), lambda L: L.zeros(2, 3) < L.zeros(2, 4)),
    (([5, 3], [2]), lambda L: L.maximum(L.zeros(5, 3), L.zeros(2))),
    (([5, 3], [2, 1, 2]), lambda L: L.ones(5, 3) ** L.ones(2, 1, 2)),
    (([2, 3], [4]), lambda L: L.zeros(2, 3, dtype=L.bool).logical_and(L.zeros(4, dtype=L.bool))),
    (([2, 3], [4]), lambda L: L.zeros(2, 3).clamp(min=L.zeros(4))),
    (([3], [4]), lambda L: L.zeros(3).copy_(L.zeros(4))),
    (([3], [4]), lambda L: (L.zeros(3, requires_grad=True) * 1).copy_(L.zeros(4))),
    (([3], [2, 4]), lambda L: (L.zeros(3, requires_grad=True) * 1).copy_(L.zeros(2, 4))),
    (([2, 3], [4]), lambda L: L.where(L.zeros(2, 3, dtype=L.bool), L.zeros(3), L.zeros(4))),
    (([2, 3], [4]), lambda L: L.where(L.zeros(2, 3, dtype=L.bool), L.zeros(4), 0.0)),
], ids=["add", "lt", "maximum", "pow", "logical_and", "clamp", "copy_", "copy_ with grad", "copy_ of more dims",
        "where other", "where input"])
def test_shape_mismatch_is_a_runtime_error_naming_both_shapes(shapes, make):
    with pytest.raises(RuntimeError, match="must match the") as expected:
        make(torch)
    with pytest.raises(RuntimeError, match="must match the") as error:
        make(dtorch)
    assert str(error.value).startswith(str(expected.value)), str(error.value)  # then dtorch adds the shapes
    assert all(str(shape) in str(error.value) for shape in shapes), str(error.value)


def test_copy_takes_a_source_broadcast_to_the_target_shape_only():
    for lib in (torch, dtorch):
        for target in (lib.zeros(3), lib.zeros(3, requires_grad=True) * 1):
            with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the broadcast shape \[1, 3\]"):
                target.copy_(lib.ones(1, 3))


@pytest.mark.parametrize("statement", ["x //= 2", "x %= 3", "x &= 6", "x |= 1", "x ^= 5", "x += 1", "x *= 3"])
def test_augmented_assignment_is_in_place_like_torch(statement):
    results = []
    for lib in (dtorch, torch):
        x = lib.arange(1, 7)
        view = x[:3]
        namespace = {"x": x}
        exec(statement, namespace)
        assert namespace["x"] is x  # the same tensor, changed in place
        results.append((x.tolist(), view.tolist()))
    assert results[0] == results[1]


def test_numpy_under_no_grad_and_float_of_many_elements_like_torch():
    for lib in (dtorch, torch):
        with lib.no_grad():
            assert lib.ones(2, requires_grad=True).numpy().tolist() == [1.0, 1.0]
        with pytest.raises(RuntimeError, match="requires grad"):
            lib.ones(2, requires_grad=True).numpy()
        with pytest.raises(ValueError, match="only one element tensors"):
            float(lib.ones(2))


@pytest.mark.parametrize("name", ["expm1", "exp2", "sinh", "cosh", "atan", "arctan", "frac"])
@pytest.mark.parametrize("shape", [(3, 4), (), (0, 2)])
def test_unary_math(name, shape):
    check_op(lambda x: getattr(x, name)(), None, [shape])
    check_op(lambda x: getattr(x, name)(), None, [(4, 3)], noncontiguous=True)


@pytest.mark.parametrize("name", ["asin", "acos", "arcsin", "arccos"])
def test_inverse_trig_inside_their_domain(name):
    check_op(lambda x: getattr(x, name)(), None, [(3, 4)], low=-0.9, high=0.9)


@pytest.mark.parametrize("name", ["atan2", "hypot", "logaddexp"])
@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(3, 4), (4,)], [(2, 1, 3), (4, 1)], [(), (3,)]])
def test_binary_math(name, shapes):
    check_op(lambda a, b: getattr(a, name)(b), None, shapes)
    check_op(lambda a, b: getattr(dtorch if isinstance(a, dtorch.Tensor) else torch, name)(a, b), None, shapes)


def test_binary_math_second_order():
    check_op(lambda a, b: a.atan2(b), None, [(3,), (3,)], second_order=True, dtype="float64")
    check_op(lambda a, b: a.logaddexp(b), None, [(3,), (3,)], second_order=True, dtype="float64")
    check_op(lambda x: x.sinh() + x.expm1(), None, [(3,)], second_order=True, dtype="float64")


def test_fused_multiply_adds():
    check_op(lambda a, b, w: a.lerp(b, w), None, [(3, 4), (3, 4), (4,)])
    check_op(lambda a, b: a.lerp(b, 0.25), None, [(3, 4), (4,)])
    check_op(lambda a, b, c: a.addcmul(b, c, value=0.5), None, [(3, 4), (3, 4), (4,)])
    check_op(lambda a, b, c: a.addcdiv(b, c, value=-2), None, [(3, 4), (3, 1), (4,)], low=0.5, high=2.0)
    check_op(lambda a, b, c: a.addmm(b, c, beta=0.5, alpha=2), None, [(4,), (3, 5), (5, 4)])
    check_op(lambda a, b, c: a.addmm(b, c, beta=0), None, [(3, 4), (3, 5), (5, 4)])
    check_op(lambda a, b, c: a.baddbmm(b, c, alpha=0.5), None, [(2, 3, 4), (2, 3, 5), (2, 5, 4)])


def test_fused_multiply_adds_in_place():
    def fn(a, b, c):
        y = a * 1
        y.addcmul_(b, c, value=2).addcdiv_(b, c.abs() + 1).lerp_(b, 0.3)
        return y

    check_op(fn, None, [(3, 4), (3, 4), (4,)])


def test_sgn_and_signbit():
    check_op(lambda x: x.sgn(), None, [(3, 4)], grad=False)  # torch's sgn gradient is a ZeroTensor
    ours = dtorch.tensor([-0.0, 1.0, -2.0]).signbit()
    np.testing.assert_array_equal(ours.numpy(), torch.tensor([-0.0, 1.0, -2.0]).signbit().numpy())


@pytest.mark.parametrize("eps", [None, 1e-3, 0.2])
def test_logit_matches_torch_forward_and_backward(eps):
    values = np.array([0.0, 1e-4, 0.1, 0.5, 0.9, 1.0 - 1e-4, 1.0, -0.5, 1.5])
    results = []
    for lib in (dtorch, torch):
        x = lib.tensor(values, requires_grad=True)
        y = lib.logit(x, eps) if eps is not None else x.logit()
        finite = lib.where(lib.isfinite(y), y, lib.zeros_like(y))
        finite.sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, equal_nan=True)


def test_logit_second_derivative_matches_torch():
    values = np.array([0.1, 0.3, 0.5, 0.8])
    results = []
    for lib in (dtorch, torch):
        x = lib.tensor(values, requires_grad=True)
        for eps in (None, 0.2):
            (first,) = lib.autograd.grad(lib.logit(x, eps).sum(), x, create_graph=True)
            (second,) = lib.autograd.grad((first * first).sum(), x)
            results.append((first.detach().numpy(), second.numpy()))
    for mine, theirs in zip(results[:2], results[2:]):
        np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-12)
        np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-10)
