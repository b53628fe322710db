"""Without the ``onnx`` extra, ``dtorch.onnx.export`` is a clear ImportError naming the extra."""

import io
import sys

import pytest

import dtorch


def test_missing_extra_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the package were not installed
    with pytest.raises(ImportError, match=r"dtorch\[onnx\]"):
        dtorch.onnx.export(dtorch.nn.Linear(2, 2), (dtorch.ones(1, 2),), io.BytesIO())
