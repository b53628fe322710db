"""Grad modes as context managers and decorators."""

import dtorch


def test_no_grad_context_and_decorator():
    x = dtorch.ones(2, requires_grad=True)
    with dtorch.no_grad():
        assert not (x * 2).requires_grad
        with dtorch.enable_grad():
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad

    @dtorch.no_grad()
    def evaluate():
        return x * 2

    assert not evaluate().requires_grad
    assert dtorch.is_grad_enabled()


def test_set_grad_enabled_as_call_context_and_decorator():
    dtorch.set_grad_enabled(False)
    assert not dtorch.is_grad_enabled()
    dtorch.set_grad_enabled(True)
    with dtorch.set_grad_enabled(False):
        assert not dtorch.is_grad_enabled()
    assert dtorch.is_grad_enabled()

    @dtorch.set_grad_enabled(False)
    def off():
        return dtorch.is_grad_enabled()

    assert off() is False and dtorch.is_grad_enabled()


def test_inference_mode():
    x = dtorch.ones(2, requires_grad=True)
    with dtorch.inference_mode():
        assert not (x + 1).requires_grad
    with dtorch.inference_mode(False):
        assert (x + 1).requires_grad

    @dtorch.inference_mode()
    def run():
        return (x + 1).requires_grad

    assert run() is False


def test_mode_restored_after_exception():
    try:
        with dtorch.no_grad():
            raise ValueError("boom")
    except ValueError:
        pass
    assert dtorch.is_grad_enabled()


def test_is_inference_mode_enabled_follows_pytorch():
    import torch

    def trace(library):
        seen = [library.is_inference_mode_enabled()]
        with library.inference_mode():
            seen.append((library.is_inference_mode_enabled(), library.is_grad_enabled()))
            with library.inference_mode(False):
                seen.append((library.is_inference_mode_enabled(), library.is_grad_enabled()))
            with library.no_grad():
                seen.append(library.is_inference_mode_enabled())
        with library.no_grad():
            with library.inference_mode(False):
                seen.append((library.is_inference_mode_enabled(), library.is_grad_enabled()))

        @library.inference_mode()
        def decorated():
            return library.is_inference_mode_enabled()

        seen.append((decorated(), library.is_inference_mode_enabled(), library.is_grad_enabled()))
        return seen

    assert trace(dtorch) == trace(torch)
