"""Score calibration and rejection scores computed from logits.

* :func:`fit_temperature`: the temperature T that minimises the negative log-likelihood of
  ``softmax(logits / T)`` on labelled validation clips (temperature scaling, Guo et al.
  2017). T > 1 softens over-confident models. The NLL is convex in 1/T, so a golden-section
  search on log T over [0.05, 20] finds the optimum to 1e-4 relative.
* :func:`scores`: per row the rejection scores the stream evaluation compares: the top-1
  probability (``softmax``), the gap between the two best probabilities (``margin``), the
  calibrated top-1 probability (``calibrated``, at temperature T) and the negative free
  energy ``T * logsumexp(logits / T)`` (``energy``; higher means more in-distribution,
  Liu et al. 2020).
* :func:`expected_calibration_error`: the usual 15-bin ECE of top-1 probabilities.
"""

from __future__ import annotations

import itertools
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from ..errors import DataError, ShapeError

__all__ = [
    "SCORE_KINDS",
    "expected_calibration_error",
    "fit_temperature",
    "log_softmax",
    "nll",
    "scores",
]

F64 = npt.NDArray[np.float64]
SCORE_KINDS: Final[tuple[str, ...]] = ("softmax", "margin", "calibrated", "energy")
_T_MIN: Final = 0.05
_T_MAX: Final = 20.0


def _check(logits: npt.ArrayLike) -> F64:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 1:
        raise ShapeError(f"logits must be (N, K) with K >= 1, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise DataError("logits must be finite")
    return z


def log_softmax(logits: npt.ArrayLike, temperature: float = 1.0) -> F64:
    """Row-wise log-softmax of ``logits / temperature``; (N, K) float64."""
    z = _check(logits) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # type: ignore[no-any-return]


def nll(logits: npt.ArrayLike, labels: npt.ArrayLike, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under ``softmax(logits / T)``."""
    lp = log_softmax(logits, temperature)
    y = np.asarray(labels, dtype=np.intp)
    if y.shape != (lp.shape[0],) or (y.size and (y.min() < 0 or y.max() >= lp.shape[1])):
        raise ShapeError(f"labels must be ({lp.shape[0]},) class indices < {lp.shape[1]}")
    return float(-lp[np.arange(y.size), y].mean()) if y.size else 0.0


def fit_temperature(logits: npt.ArrayLike, labels: npt.ArrayLike, *, tol: float = 1e-4) -> float:
    """The temperature minimising the validation NLL (temperature scaling).

    Args:
        logits: (N, K) validation logits.
        labels: (N,) true class indices.
        tol: Relative precision of T.

    Returns:
        T in [0.05, 20] (the bounds when the optimum lies beyond them; 1.0 for no rows).

    Raises:
        ShapeError: If logits are not (N, K) or labels not (N,) class indices.
        DataError: If a logit is not finite.
    """
    z = _check(logits)
    y = np.asarray(labels, dtype=np.intp)
    nll(z, y)  # validates the labels' shape and range
    if y.size == 0:
        return 1.0
    lo, hi = math.log(_T_MIN), math.log(_T_MAX)
    g = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(z, y, math.exp(c)), nll(z, y, math.exp(d))
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(z, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(z, y, math.exp(d))
    # the optimum may lie on a bound (e.g. separable data wants T -> 0)
    cands = (math.exp((a + b) / 2.0), _T_MIN, _T_MAX)
    return float(min(cands, key=lambda t: nll(z, y, t)))


def scores(logits: npt.ArrayLike, temperature: float = 1.0) -> dict[str, F64]:
    """The rejection scores of every row (see the module docs), plus its top-1 class.

    Args:
        logits: (N, K) logits.
        temperature: T of the ``calibrated`` and ``energy`` scores.

    Returns:
        ``{"top": (N,) class index as float, "softmax", "margin", "calibrated", "energy"}``,
        each (N,) float64.
    """
    z = _check(logits)
    p = np.exp(log_softmax(z))  # (N, K)
    pc = np.exp(log_softmax(z, temperature))
    top = p.argmax(axis=1)
    srt = np.sort(p, axis=1)
    second = srt[:, -2] if p.shape[1] > 1 else np.zeros(p.shape[0])
    zt = z / temperature
    m = zt.max(axis=1)
    energy = temperature * (m + np.log(np.exp(zt - m[:, None]).sum(axis=1)))
    return {
        "top": top.astype(np.float64),
        "softmax": srt[:, -1],
        "margin": srt[:, -1] - second,
        "calibrated": pc.max(axis=1),
        "energy": energy,
    }


def expected_calibration_error(
    logits: npt.ArrayLike, labels: npt.ArrayLike, temperature: float = 1.0, bins: int = 15
) -> float:
    """Expected calibration error of the top-1 probability (equal-width bins)."""
    p = np.exp(log_softmax(logits, temperature))
    y = np.asarray(labels, dtype=np.intp)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = (pred == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += float(sel.mean()) * abs(float(correct[sel].mean()) - float(conf[sel].mean()))
    return ece
