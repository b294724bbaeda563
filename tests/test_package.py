"""The package surface: explicit __all__, lazy heavy imports, typing marker, errors hierarchy."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import pytest

import signrt


def test_all_names_resolve():
    for name in signrt.__all__:
        assert getattr(signrt, name) is not None, name


def test_unknown_attribute_is_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        signrt.nope  # noqa: B018


HEAVY = ("torch", "mediapipe", "tensorrt", "onnxruntime", "onnx", "cv2", "aiohttp",
         "prometheus_client", "matplotlib")


@pytest.mark.parametrize(
    "modules",
    [
        "signrt",
        "signrt.runtime, signrt.recognizer, signrt.runtime.tensorrt, signrt.stream",
        "signrt.runtime.quantize, signrt.synthetic, signrt.results, signrt.bench",
        "signrt.extract, signrt.extract.sources",
        "signrt.daemon, signrt.daemon.cli, signrt.daemon.server",
        "signrt.cli, signrt.cli.bench, signrt.cli.runtime, signrt.cli.extract",
    ],
)
def test_import_is_light(modules):
    """Importing any part pulls in none of the heavy dependencies; they load on first use."""
    code = (
        f"import sys, {modules}\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_typed_package():
    files = resources.files("signrt")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_native.pyi").is_file()


def test_native_extension_loads():
    from signrt import _native

    assert _native.__version__ == signrt.__version__ or signrt.__version__.startswith("0.0.0")


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("SpecError", ValueError),
        ("ShapeError", ValueError),
        ("DataError", ValueError),
        ("ModelError", ValueError),
        ("DeviceError", RuntimeError),
        ("SourceError", OSError),
    ],
)
def test_error_hierarchy(name, base):
    cls = getattr(signrt, name)
    assert issubclass(cls, signrt.SignrtError)
    assert issubclass(cls, base)


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("ConfigError", ValueError),
        ("ExtractorError", RuntimeError),
        ("OptionError", ValueError),
        ("EngineOptionError", ValueError),
        ("StreamOptionError", ValueError),
        ("DependencyError", ImportError),
    ],
)
def test_every_error_class_lives_in_errors(name, base):
    from signrt import errors

    cls = getattr(errors, name)
    assert cls.__module__ == "signrt.errors"
    assert issubclass(cls, signrt.SignrtError) and issubclass(cls, base)


def test_no_error_class_is_defined_outside_errors():
    """Every exception class in the package is defined in signrt.errors (DESIGN §8)."""
    import ast
    from pathlib import Path

    root = Path(signrt.__file__).parent
    strays = []
    for path in root.rglob("*.py"):
        if path.name == "errors.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception"))
                for b in node.bases
            ):
                strays.append(f"{path.relative_to(root)}:{node.name}")
    assert strays == []


def test_deliberate_errors_are_signrt_errors():
    """No module raises a built-in exception on purpose, but for the protocols that want one."""
    import ast
    import builtins
    from pathlib import Path

    allowed = {
        ("_lazy.py", "AttributeError"),  # module __getattr__
        ("daemon/server.py", "TypeError"),  # json.dumps(default=...)
        ("io/_files.py", "FileNotFoundError"),  # errno OSErrors, as open() raises them
        ("io/_files.py", "IsADirectoryError"),
    }
    root = Path(signrt.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            exc = node.exc if isinstance(node, ast.Raise) else None
            name = getattr(exc.func if isinstance(exc, ast.Call) else exc, "id", None)
            is_builtin = isinstance(getattr(builtins, name or "", None), type)
            if is_builtin and name != "NotImplementedError":
                found.add((path.relative_to(root).as_posix(), name))
    assert found == allowed
