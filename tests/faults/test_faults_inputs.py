"""Bad files, shapes, settings and client text: each one precise error, one CLI line."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signrt import DataError, ShapeError, SignrtError
from signrt._json import loads_limited
from signrt._redact import redact
from signrt.cli import main
from signrt.errors import ConfigError
from signrt.io import read_clip

pytestmark = pytest.mark.timeout(60)


def _lying_npy(shape: tuple[int, ...] = (10**7, 543, 3), size: int = 228) -> bytes:
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    data = buf.getvalue()
    return data + b"\0" * (size - len(data))


# ----------------------------------------------------------------------- array headers
def test_npy_header_claiming_65_gb_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    path.write_bytes(_lying_npy())
    assert path.stat().st_size == 228
    with pytest.raises(DataError, match=r"header claims a \(10000000, 543, 3\) float32 array"):
        read_clip(path)


def test_npz_member_header_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("landmarks.npy", _lying_npy())
    with pytest.raises(DataError, match="header claims"):
        read_clip(path)


def test_predict_prints_one_line_for_a_lying_header(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    path = tmp_path / "huge.npy"
    path.write_bytes(_lying_npy())
    from signrt.recognizer import default_model_path

    rc = main(["predict", "--device", "cpu", str(default_model_path()), str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "header claims" in err[0], err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("short.npy", lambda good: good[: len(good) - 10], "truncated or corrupt"),
        ("text.npy", lambda good: b"1 2 3\n", r"not a \.npy file"),
        ("empty.parquet", lambda good: b"", "not a readable parquet file"),
        ("garbage.parquet", lambda good: b"PAR1" + b"\0" * 50, "not a readable parquet file"),
        ("wrong.npz", lambda good: b"PK\x03\x04broken", r"unreadable \.npz"),
    ],
)
def test_bad_files_are_data_errors(tmp_path: Path, name: str, content: object,
                                   message: str) -> None:
    buf = io.BytesIO()
    np.save(buf, np.zeros((4, 543, 3), np.float32))
    path = tmp_path / name
    path.write_bytes(content(buf.getvalue()))  # type: ignore[operator]
    with pytest.raises(DataError, match=message):
        read_clip(path)


def test_bad_shapes_are_shape_errors(tmp_path: Path) -> None:
    import signrt

    spec = signrt.FeatureSpec.preset("islr118")
    for bad in (np.zeros((4, 10, 3), np.float32), np.zeros((543, 3, 2), np.float32),
                np.zeros((0,), np.float32)):  # fmt: skip
        with pytest.raises(ShapeError):
            signrt.preprocess(bad, spec)
    np.save(tmp_path / "odd.npy", np.zeros((3, 10, 3)))
    with pytest.raises(DataError, match="unknown landmark layout"):
        read_clip(tmp_path / "odd.npy")


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('host = ["0.0.0.0"]\n', r"host must be a string, got \['0.0.0.0'\]"),
        ("[server]\nport = 80.5\n", "port must be an integer"),
        ('fps = "fast"\n', "fps must be a number"),
        ("loop = 1\n", "loop must be true or false"),
        ("[server]\nmax_clients = 0\n", "max_clients must be >= 1"),
        ("prot = 1\n", "unknown setting 'prot'"),
    ],
)
def test_bad_settings_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   toml: str, message: str) -> None:
    cfg = tmp_path / "signrt.toml"
    cfg.write_text(toml)
    rc = main(["serve", "--config", str(cfg), "--port", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "Traceback" not in err[0], err
    assert pytest.importorskip("re").search(message, err[0]), err


@pytest.mark.parametrize("token", ["", "   ", "\t\n"])
def test_blank_token_is_refused(token: str, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNRT_TOKEN", raising=False)
    from signrt.daemon.config import DaemonConfig

    with pytest.raises(ConfigError, match="token"):
        DaemonConfig(host="0.0.0.0", token=token).validate()
    rc = main(["serve", "--host", "0.0.0.0", "--port", "0", "--token", token])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "token" in err[0], err


def test_token_whitespace_is_not_part_of_it() -> None:
    from signrt.daemon.config import DaemonConfig

    assert DaemonConfig(host="0.0.0.0", token="  abc \n").resolved_token() == "abc"
    assert issubclass(ConfigError, SignrtError) and issubclass(ConfigError, ValueError)


# ------------------------------------------------------------------------- client text
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 2000 + "]" * 2000, "nested deeper than 32 levels"),
        ('{"a": ' * 40 + "1" + "}" * 40, "nested deeper"),
        ('{"x": NaN}', "NaN is not valid JSON"),
        ("[Infinity]", "Infinity is not valid JSON"),
        ("9" * 5000, "not valid JSON"),  # beyond Python's integer digit limit (4,300)
        (b"\xff\xfe{}", "not UTF-8"),
        ("{", "not valid JSON"),
        ("x" * 9000, "longer than 8192 bytes"),
    ],
)
def test_loads_limited_turns_every_failure_into_data_error(text: str | bytes,
                                                           message: str) -> None:
    with pytest.raises(DataError, match=message):
        loads_limited(text, max_bytes=8192)


def test_loads_limited_accepts_brackets_inside_strings() -> None:
    text = '{"type": "ping", "note": "' + "[" * 100 + '"}'
    assert loads_limited(text)["note"] == "[" * 100
    assert loads_limited("[" * 32 + "]" * 32) == eval("[" * 32 + "]" * 32)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c,
                                                                         max_size=3),
                    max_leaves=20))  # fmt: skip
def test_loads_limited_equals_json_on_shallow_documents(value: object) -> None:
    import json

    text = json.dumps(value)
    assert loads_limited(text, max_depth=64) == json.loads(text)


# ----------------------------------------------------------------------------- redact
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://admin:secret@host/stream.mjpg", "http://admin:***@host/stream.mjpg"),
        ("rtsp://u:p@ss@10.0.0.2:554/live", "rtsp://u:***@10.0.0.2:554/live"),
        ("cannot open rtsp://a:b@h/x: refused", "cannot open rtsp://a:***@h/x: refused"),
        ("http://cam/video?user=a&password=pw1&token=t2", "http://cam/video?user=a&password=***&token=***"),
        ("rtspsrc location=rtsp://cam user-id=admin user-pw=hunter2 ! appsink",
         "rtspsrc location=rtsp://cam user-id=admin user-pw=*** ! appsink"),
        ("http://host:8080/path", "http://host:8080/path"),
        ("http://admin@host/", "http://admin@host/"),
        ("/dev/video0", "/dev/video0"),
        ("monkey=1 keyboard=2", "monkey=1 keyboard=2"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
