"""The package root (``dtorch/__init__.py``): its constants and the compatibility entry points it defines."""

import math

import dtorch


def test_constants():
    assert (dtorch.inf, dtorch.pi, dtorch.e) == (math.inf, math.pi, math.e) and math.isnan(dtorch.nan)


def test_compile_returns_the_model_unchanged():
    layer = dtorch.nn.Linear(2, 2)
    assert dtorch.compile(layer) is layer

    @dtorch.compile(mode="reduce-overhead")
    def double(x):
        return x * 2

    assert double(dtorch.ones(1)).item() == 2.0
