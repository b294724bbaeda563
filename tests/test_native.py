"""The extension's error mapping and the bindings outside preprocessing (softmax_topk)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import signrt
from signrt import _native, errors


def test_errors_are_the_classes_of_signrt_errors():
    with pytest.raises(errors.SpecError) as spec_err:
        _native.Spec("{}")
    assert type(spec_err.value) is errors.SpecError and spec_err.value.field == "version"
    with pytest.raises(errors.ShapeError) as shape_err:
        _native.preprocess(np.zeros((2, 3)), _native.Spec.preset("islr118"))
    assert type(shape_err.value) is errors.ShapeError
    with pytest.raises(errors.ModelError) as model_err:
        _native.softmax_topk(np.array([[0.0, np.nan]], np.float32), 1)
    assert type(model_err.value) is errors.ModelError
    assert "class 1" in str(model_err.value)


def test_softmax_topk_k_zero_is_empty():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
    assert _native.softmax_topk(logits, 0) == [[], []]
    assert [c for c, _ in _native.softmax_topk(logits, 2)[0]] == [2, 1]
    assert _native.softmax_topk(np.zeros((0, 4), np.float32), 3) == []
    with pytest.raises(errors.ModelError, match="no logits"):
        _native.softmax_topk(np.zeros((1, 0), np.float32), 0)


def test_extension_refuses_to_load_with_a_broken_error_module(tmp_path: Path):
    """The error classes are imported and checked once, at module initialisation."""
    package = Path(signrt.__file__).parent
    script = textwrap.dedent(
        f"""
        import sys, types
        pkg = types.ModuleType("signrt")
        pkg.__path__ = [{str(package)!r}]
        sys.modules["signrt"] = pkg
        broken = types.ModuleType("signrt.errors")
        class SignrtError(Exception): ...
        class SpecError(ValueError): ...   # not a SignrtError
        class ShapeError(SignrtError): ...
        class ModelError(SignrtError): ...
        broken.__dict__.update(SignrtError=SignrtError, SpecError=SpecError,
                               ShapeError=ShapeError, ModelError=ModelError)
        sys.modules["signrt.errors"] = broken
        try:
            import signrt._native
        except ImportError as exc:
            print("ImportError:", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.strip() == (
        "ImportError: signrt.errors.SpecError is not a subclass of signrt.errors.SignrtError"
    ), out.stdout + out.stderr
