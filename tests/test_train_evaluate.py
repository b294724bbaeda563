"""Evaluation: metrics, JSON report, confusion PNG, on a checkpoint, an ONNX file and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from signrt.errors import DataError  # noqa: E402
from signrt.train.config import TrainConfig  # noqa: E402
from signrt.train.data import open_dataset  # noqa: E402
from signrt.train.evaluate import (  # noqa: E402
    evaluate,
    evaluate_checkpoint,
    evaluate_onnx,
    report_from_scores,
)
from signrt.train.trainer import train  # noqa: E402

DATA = "synthetic:classes=3,signers=3,clips_per_class=2,seed=2"


def test_metrics_from_scores() -> None:
    labels = ["a", "b", "c"]
    y = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array(
        [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1],
         [0.5, 0.1, 0.4], [0.0, 0.0, 0.0]]
    )  # fmt: skip
    valid = np.array([True] * 5 + [False])  # the last clip had no signer
    rep = report_from_scores(scores, y, labels, valid=valid, model="m", data="d")
    assert rep.y_pred.tolist() == [0, 1, 1, 1, 0, -1]
    assert rep.top1 == pytest.approx(3 / 6) and rep.no_signer == 1
    assert rep.top5 == pytest.approx(5 / 6)  # K=3: top-3; the no-signer clip is a miss
    assert rep.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    np.testing.assert_allclose(rep.precision, [0.5, 2 / 3, 0.0])
    np.testing.assert_allclose(rep.recall, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(rep.f1, [0.5, 0.8, 0.0])
    assert rep.support.tolist() == [2, 2, 2]
    doc = json.loads(rep.to_json())
    assert doc["top1"] == rep.top1 and doc["num_clips"] == 6 and doc["labels"] == labels
    expected = {"label": "b", "precision": pytest.approx(2 / 3), "recall": 1.0,
                "f1": pytest.approx(0.8), "support": 2}  # fmt: skip
    assert doc["per_class"][1] == expected
    assert doc["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert "top-1 50.00%" in rep.summary()


def test_confusion_png(tmp_path: Path) -> None:
    rep = report_from_scores(np.eye(4)[[0, 1, 2, 2]], [0, 1, 2, 3], list("wxyz"))
    png = rep.save_confusion_png(tmp_path / "sub" / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evalrun")
    cfg = TrainConfig(
        data=DATA, out=str(out), arch="cnn_transformer", max_len=16, epochs=2, batch_size=8,
        num_workers=0, plots=False,
        model={"dim": 16, "stages": 1, "convs_per_stage": 1, "heads": 2},
    )  # fmt: skip
    train(cfg)
    return out / "best.pt"


def test_evaluate_checkpoint(checkpoint: Path, tmp_path: Path) -> None:
    data = open_dataset(DATA)
    rep = evaluate_checkpoint(checkpoint, data)
    assert rep.num_clips == len(data) and rep.labels == data.label_names
    assert 0.0 <= rep.top1 <= rep.top5 == 1.0  # 3 classes: top-5 always hits
    assert rep.confusion.sum() == len(data) and rep.extra["arch"] == "cnn_transformer"
    assert evaluate(checkpoint, data).top1 == rep.top1
    rep.save_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["model"] == str(checkpoint)
    with pytest.raises(DataError, match="not among"):
        other = open_dataset("synthetic:classes=5,signers=1,clips_per_class=1")
        evaluate_checkpoint(checkpoint, other)


def test_evaluate_onnx_matches_checkpoint(checkpoint: Path, tmp_path: Path) -> None:
    export = pytest.importorskip("signrt.train.export")
    model = tmp_path / "m.onnx"
    export.export_checkpoint(
        checkpoint, model, verify_data=DATA, verify_limit=4, exporter="torchscript", simplify=False
    )
    data = open_dataset(DATA)
    onnx_rep = evaluate_onnx(model, data, batch_size=5)
    torch_rep = evaluate_checkpoint(checkpoint, data)
    np.testing.assert_array_equal(onnx_rep.y_pred, torch_rep.y_pred)
    assert onnx_rep.top1 == torch_rep.top1


def test_cli_eval(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from signrt.cli import main

    png, report = tmp_path / "cm.png", tmp_path / "report.json"
    rc = main(["eval", str(checkpoint), "--data", DATA, "--json", "--confusion", str(png),
               "--report", str(report)])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["num_clips"] == 18 and set(doc) >= {"top1", "top5", "per_class", "confusion"}
    assert png.is_file() and json.loads(report.read_text())["top1"] == doc["top1"]
    assert main(["eval", str(checkpoint), "--data", DATA]) == 0
    assert "top-1" in capsys.readouterr().out
