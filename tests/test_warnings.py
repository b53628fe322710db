"""Warnings from dtorch point at the user's line (``dtorch._warnings.warn``), and NumPy's floating-point
warnings (log(0), 1/0, sqrt(-1)) stay quiet inside dtorch, as PyTorch prints nothing there."""

import subprocess
import sys
import textwrap
import warnings

import dtorch


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, (UserWarning, FutureWarning))]


def _scheduler_before_optimizer():
    optimizer = dtorch.optim.SGD([dtorch.zeros(1, requires_grad=True)], lr=0.1)
    dtorch.optim.lr_scheduler.StepLR(optimizer, 1).step()


def test_warnings_point_at_the_callers_line_through_any_depth():
    x, target = dtorch.ones(3, 4), dtorch.ones(4)
    for call in (lambda: dtorch.nn.functional.mse_loss(x, target),  # called directly
                 lambda: dtorch.nn.MSELoss()(x, target),  # through Module.__call__ and forward
                 lambda: dtorch.nn.functional.softmax(x),  # the implicit-dim warning
                 lambda: dtorch.cross(dtorch.ones(3), dtorch.ones(3)),
                 lambda: dtorch.nn.MSELoss(size_average=True),
                 lambda: dtorch.nn.init.kaiming_uniform_(dtorch.empty(0, 3)),
                 _scheduler_before_optimizer):
        caught = _caught(call)
        assert caught, call
        assert all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]


def test_floating_point_warnings_stay_quiet_inside_dtorch_only():
    script = textwrap.dedent("""
        import numpy as np
        import dtorch
        zero = dtorch.zeros(3)
        (zero.log(), dtorch.ones(3) / zero, zero / zero, (zero - 1).sqrt(), dtorch.full((2,), 1000.0).exp(),
         zero.rsqrt(), (zero - 2).log1p(), zero ** -1.0, dtorch.tensor([2.0]).asin())
        np.log(np.zeros(1))  # the user's own NumPy call still warns
    """)
    result = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "RuntimeWarning" in line]
    user_line = script.splitlines().index("np.log(np.zeros(1))  # the user's own NumPy call still warns") + 1
    assert len(lines) == 1 and lines[0].startswith(f"<string>:{user_line}:"), result.stderr
