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

The temperature fit, NLL and ECE live in :mod:`signrt.runtime.calibration` (the export
uses them too) and are re-exported here.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from ..runtime.calibration import check_logits as _check
from ..runtime.calibration import (
    energy_scores,
    expected_calibration_error,
    fit_temperature,
    log_softmax,
    nll,
)

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
    return {
        "top": top.astype(np.float64),
        "softmax": srt[:, -1],
        "margin": srt[:, -1] - second,
        "calibrated": pc.max(axis=1),
        "energy": energy_scores(z, temperature),
    }
