"""Recognizer: a model file, its engine and its preprocessing; clips in, labels out.

Example:
    >>> import signrt
    >>> rec = signrt.load("model.onnx", device="auto")
    >>> pred = rec.predict(clip)                  # clip: (T, 543, 3) landmarks
    >>> pred.label, pred.score, pred.topk, pred.no_signer
    >>> stream = rec.stream(mode="window", stride=4, threshold=0.6, confirm=2)
    >>> for frame in frames:                      # frame: (543, 3)
    ...     for event in stream.push(frame):
    ...         print(event.label, event.score, event.start, event.end)

The FeatureSpec stored in the model decides the preprocessing (the native core); the
engine is picked by ``device`` (see :mod:`signrt.runtime.engines`); softmax and top-k of a
batch are one native call. A model that lists window-length ``buckets`` runs on the real
frames rounded up to a bucket (the padding beyond it is dropped before the engine call,
which the export proved does not change the logits); other models get max_len frames. A
:class:`Recognizer` is thread-safe; a :class:`Stream` (:mod:`signrt.stream`) belongs to
one frame source. The result classes live in :mod:`signrt.results`; this module re-exports
them and the stream for convenience.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from . import _native
from ._closing import Closing
from .errors import ModelError, OptionError, StreamOptionError
from .features import Preprocessor
from .results import BACKGROUND_LABEL, Event, Latency, Prediction, TopK
from .runtime.calibration import energy_scores
from .runtime.engines import Engine, create_engine
from .runtime.model import ModelFile, bucket_length, load_model_file
from .runtime.options import EngineOptions
from .spec import FeatureSpec
from .stream import (
    COMMON_OPTIONS,
    DEFAULT_CONFIRM,
    DEFAULT_COOLDOWN,
    DEFAULT_STRIDE,
    DEFAULT_THRESHOLD,
    SEGMENT_OPTIONS,
    WINDOW_OPTIONS,
    Stream,
    StreamMode,
)

__all__ = [
    "DEFAULT_CONFIRM",
    "DEFAULT_COOLDOWN",
    "DEFAULT_STRIDE",
    "DEFAULT_THRESHOLD",
    "Event",
    "Latency",
    "Prediction",
    "Recognizer",
    "Stream",
    "default_model_path",
    "energy_scores",
    "load",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
#: ``softmax_topk(logits (B, K), k)`` of the extension: B lists of (class, probability).
SoftmaxTopK = Callable[[FloatArray, int], list[list[tuple[int, float]]]]

#: Environment variable naming the model ``signrt.load()`` uses when given no path.
MODEL_ENV: Final = "SIGNRT_MODEL"
_PRECISION_TAGS: Final = ("int8", "fp16")


# ----------------------------------------------------------------------------- recognizer
class Recognizer(Closing):
    """A model file, its engine and its preprocessing: clips in, labels out.

    Thread-safe: ``predict`` and ``predict_batch`` may be called from several threads at
    once and give the same answers as sequential calls.

    Attributes:
        model: The model file.
        engine: The inference engine.
        top_k: Default number of ``(label, score)`` pairs in predictions.
    """

    def __init__(self, model: ModelFile, engine: Engine, *, top_k: int = 5) -> None:
        """Wrap a model file and an engine (use :func:`load` to build both).

        Args:
            model: A validated model file.
            engine: An engine running that model.
            top_k: Default size of the top-k list.

        Raises:
            OptionError: If ``top_k`` < 1.
        """
        if top_k < 1:
            raise OptionError(f"top_k must be >= 1, got {top_k}")
        self.model = model
        self.engine = engine  # also sets predict's engine call (the property's setter)
        self.top_k = top_k
        self._labels = model.labels
        self._pre = Preprocessor(model.spec)
        self._spec_native = model.spec.native  # predict calls the native core directly
        # Window lengths the engine accepts (ascending, the last max_len); one: no trimming.
        lengths = tuple(getattr(engine, "lengths", (model.max_len,)))
        self._lengths = lengths if len(lengths) > 1 else ()
        # Softmax + top-k of a batch in one native call (a few µs even with the caches cold
        # after an engine call); it raises ModelError on a non-finite logit.
        self._scores: SoftmaxTopK = _native.softmax_topk
        # Calibration (signrt.model "calibration"): logits / T before the softmax.
        self._temperature = model.temperature

    @property
    def engine(self) -> Engine:
        """The inference engine (may be replaced, e.g. by a wrapper around it)."""
        return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self._engine = engine
        # predict's engine call: the inputs it builds itself are already C-contiguous
        # float32 of an accepted shape, so an engine offering ``run_prepared`` skips
        # re-checking them (OrtEngine); any other engine gets ``run``.
        self._run1: Callable[[FloatArray, FloatArray], FloatArray] = getattr(
            engine, "run_prepared", engine.run
        )

    @property
    def labels(self) -> tuple[str, ...]:
        """The sign names, in logit order."""
        return self._labels

    @property
    def spec(self) -> FeatureSpec:
        """The model's FeatureSpec."""
        return self.model.spec

    @property
    def temperature(self) -> float:
        """The model's calibration temperature (1.0: the model carries none).

        Every probability this recognizer reports, and so every stream threshold, is
        ``softmax(logits / temperature)``.
        """
        return self._temperature

    @property
    def info(self) -> dict[str, Any]:
        """The model's ``signrt.model`` information (architecture, precision, ...)."""
        return dict(self.model.info)

    @property
    def lengths(self) -> tuple[int, ...]:
        """Window lengths the engine runs at (the model's buckets), or ``(max_len,)``."""
        return self._lengths or (self.model.max_len,)

    def trim(self, features: FloatArray, mask: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Cut a batch to the smallest bucket that holds its longest clip's real frames.

        Real frames come first and the rest is padding (DESIGN §3), so the frames beyond
        the last one with ``mask`` > 0 in any row are dropped. A model without buckets
        keeps max_len frames.

        Args:
            features: (B, L, F) float32.
            mask: (B, L) float32.

        Returns:
            ``(features[:, :n], mask[:, :n])`` (views) with n the bucket.
        """
        if not self._lengths or features.ndim != 3 or mask.shape != features.shape[:2]:
            return features, mask
        used = mask[0] if mask.shape[0] == 1 else mask.any(axis=0)  # (L,)
        nz = np.flatnonzero(used)
        n = bucket_length(int(nz[-1]) + 1 if nz.size else 1, self._lengths)
        if n >= features.shape[1]:
            return features, mask
        return features[:, :n], mask[:, :n]

    # ------------------------------------------------------------------ building blocks
    def preprocess(self, clip: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Features (L, F) and mask (L,) of one clip with the model's spec."""
        return self._pre(clip)

    def preprocess_batch(self, clips: Sequence[npt.ArrayLike]) -> tuple[FloatArray, FloatArray]:
        """Features (B, L, F) and mask (B, L) of many clips, in one native call."""
        return self._pre.batch(clips)

    def classify_features(
        self, features: FloatArray, mask: FloatArray, *, top_k: int | None = None
    ) -> list[TopK]:
        """Run the engine on preprocessed features and return the top-k of each row.

        The batch is first trimmed to a bucket (:meth:`trim`); the probabilities are
        calibrated (``softmax(logits / temperature)``, see :attr:`temperature`).

        Args:
            features: (B, L, F) float32.
            mask: (B, L) float32.
            top_k: Pairs per row (default ``self.top_k``).

        Returns:
            One top-k tuple per row, best first.

        Raises:
            ModelError: If the model returns a non-finite logit.
        """
        return self._topk(self.engine.run(*self.trim(features, mask)), top_k)  # (B, K)

    def classify_features_energy(
        self, features: FloatArray, mask: FloatArray, *, top_k: int | None = None
    ) -> tuple[list[TopK], npt.NDArray[np.float64]]:
        """:meth:`classify_features` plus each row's energy, from the same engine call.

        The energy (negative free energy) is ``T * logsumexp(logits / T)`` with T the
        model's :attr:`temperature`, in float64; higher means more like the training data
        (Liu et al. 2020). It is what a stream with ``score="energy"`` thresholds.

        Args:
            features: (B, L, F) float32.
            mask: (B, L) float32.
            top_k: Pairs per row (default ``self.top_k``).

        Returns:
            The top-k tuples (as :meth:`classify_features`) and the (B,) energies.

        Raises:
            ModelError: If the model returns a non-finite logit.
        """
        logits = self.engine.run(*self.trim(features, mask))  # (B, K)
        rows = self._topk(logits, top_k)  # checks that every logit is finite
        return rows, energy_scores(logits, self._temperature)

    def _topk(self, logits: FloatArray, top_k: int | None) -> list[TopK]:
        """Calibrated top-k of each row of (B, K) logits."""
        if self._temperature != 1.0:
            logits = np.ascontiguousarray(logits / np.float32(self._temperature))  # (B, K)
        labels = self._labels
        rows = self._scores(logits, top_k or self.top_k)  # B lists of (class, probability)
        return [tuple([(labels[i], p) for i, p in row]) for row in rows]

    # ----------------------------------------------------------------------- predicting
    def predict(self, clip: npt.ArrayLike, *, top_k: int | None = None) -> Prediction:
        """Recognise the sign in one clip.

        Args:
            clip: (T, 543, 3) landmarks (T may be 0).
            top_k: Size of the top-k list (default ``self.top_k``).

        Returns:
            The prediction; ``no_signer`` (and no engine call) when the clip has no frame
            with a selected landmark; ``unknown`` when the top-1 is the model's background
            class.

        Raises:
            ShapeError: If the clip is not (T, 543, 3).
        """
        # The same steps as classify_features on feats[None] (trim to a bucket, engine,
        # calibrated top-k) with as few array operations as possible: right after an engine
        # call every small NumPy call runs with cold caches, so each one costs several µs.
        clock = time.perf_counter
        t0 = clock()
        feats, mask = _native.preprocess(clip, self._spec_native)  # (L, F), (L,)
        t1 = clock()
        if mask[-1]:
            # The last frame is real (always so for a clip fitted by resampling): the whole
            # window, the largest bucket, and a signer; no search needed.
            logits = self._run1(feats[None], mask[None])  # (1, K)
        else:
            real = np.flatnonzero(mask)  # (R,) indices of the real frames
            if not real.size:
                return Prediction(None, 0.0, (), True, Latency((t1 - t0) * 1e3, 0.0))
            n = len(mask)
            if self._lengths:  # the smallest bucket holding the last real frame (as trim())
                n = min(bucket_length(int(real[-1]) + 1, self._lengths), n)
            # (1, n, F), (1, n): leading-row views of C-contiguous arrays, so C-contiguous.
            logits = self._run1(feats[None, :n], mask[None, :n])  # (1, K)
        topk = self._topk(logits, top_k)[0]
        t2 = clock()
        return Prediction(
            topk[0][0], topk[0][1], topk, False, Latency((t1 - t0) * 1e3, (t2 - t1) * 1e3),
            unknown=topk[0][0] == BACKGROUND_LABEL,
        )

    def predict_batch(
        self, clips: Sequence[npt.ArrayLike], *, top_k: int | None = None
    ) -> list[Prediction]:
        """Recognise many clips with one batched preprocessing call and one engine call.

        Clips without a signer are answered ``no_signer`` and left out of the engine call.
        Every prediction carries the latency of the whole batch.

        Args:
            clips: (T_i, 543, 3) clips of any lengths.
            top_k: Size of the top-k lists.

        Returns:
            One prediction per clip, in order.
        """
        if len(clips) == 0:
            return []
        t0 = time.perf_counter()
        feats, mask = self._pre.batch(clips)
        t1 = time.perf_counter()
        valid = mask.any(axis=1)
        results: list[TopK | None] = [None] * len(clips)
        if valid.any():
            if valid.all():
                rows = self.classify_features(feats, mask, top_k=top_k)
            else:
                rows = self.classify_features(feats[valid], mask[valid], top_k=top_k)
            for i, r in zip(np.flatnonzero(valid), rows, strict=True):
                results[int(i)] = r
        t2 = time.perf_counter()
        lat = Latency((t1 - t0) * 1e3, (t2 - t1) * 1e3)
        return [
            Prediction(None, 0.0, (), True, lat)
            if r is None
            else Prediction(r[0][0], r[0][1], r, False, lat, unknown=r[0][0] == BACKGROUND_LABEL)
            for r in results
        ]

    @property
    def stream_defaults(self) -> dict[str, dict[str, Any]]:
        """The model's tuned Stream settings per mode (``signrt.stream``; ``{}`` if none)."""
        return {m: dict(v) for m, v in self.model.stream.items() if m in ("window", "segment")}

    def stream(self, mode: StreamMode = "window", **options: Any) -> Stream:
        """Open a stream for live frames; see :class:`~signrt.stream.Stream` for the options.

        The model's tuned settings for ``mode`` (``signrt.stream`` in its metadata, written
        by ``signrt tune-stream``) are the defaults; options given here win (``None`` means
        not given); what neither sets takes the Stream's own default.

        ``score`` and ``threshold`` go together (a threshold is on its score's scale): the
        stored threshold is used only when no threshold is given and the stream's score kind
        is the stored one. A threshold given without a score is a probability (the
        Stream's default score), whatever the model stores; ``score`` given without a
        threshold takes the stored threshold if the model was tuned on that score, else the
        Stream's default (0.6 for probabilities; ``energy`` has none: StreamOptionError).

        Raises:
            StreamOptionError: On an option out of range or of the other mode, also one
                stored in the model.
        """
        merged = dict(self.model.stream.get(mode, {})) if isinstance(mode, str) else {}
        own = (*(WINDOW_OPTIONS if mode == "window" else SEGMENT_OPTIONS), *COMMON_OPTIONS)
        stray = sorted(k for k in merged if k not in own)
        if stray:
            raise StreamOptionError(
                f"{self.model.path}: its stream settings ('signrt.stream'.{mode}) hold "
                f"{', '.join(stray)}, not {mode}-mode options (expected some of "
                f"{', '.join(own)}); run `signrt tune-stream` on it again"
            )
        given = {k: v for k, v in options.items() if v is not None}
        if "score" in given or "threshold" in given:
            stored_score = merged.pop("score", "probability")
            if "threshold" in given or given.get("score", "probability") != stored_score:
                merged.pop("threshold", None)
        merged.update(given)
        return Stream(self, mode, **merged)

    def close(self) -> None:
        """Release the engine's resources."""
        close = getattr(self.engine, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return (
            f"Recognizer({self.model.path.name}, {self.model.architecture}, "
            f"{self.model.precision}, K={len(self._labels)}, engine={self.engine.name})"
        )


# ---------------------------------------------------------------------------- loading
def _model_sort_key(path: Path) -> tuple[int, str]:
    name = path.name.lower()
    return (int(any(tag in name for tag in _PRECISION_TAGS)), name)


def default_model_path() -> Path:
    """The model :func:`load` uses when given no path.

    Searched in order: ``$SIGNRT_MODEL``; the bundled demo model in the package data folder
    ``signrt/_models/demo/`` (see ``models/README.md``). In a folder, fp32 models come
    before fp16/int8 ones, then by name.

    Raises:
        ModelError: If no model is found (the message says how to get one).
    """
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve().parent
    folders = [here / "_models" / "demo"]
    for folder in folders:
        if folder.is_dir():
            found = sorted(folder.glob("*.onnx"), key=_model_sort_key)
            if found:
                return found[0]
    raise ModelError(
        "no model given and no bundled demo model found (looked in "
        f"{', '.join(str(f) for f in folders)}); pass a model path, e.g. "
        "signrt.load('model.onnx'), set SIGNRT_MODEL, or make one with `signrt train` and "
        "`signrt export`"
    )


def load(
    path: str | os.PathLike[str] | None = None,
    device: str = "auto",
    *,
    top_k: int = 5,
    **options: Any,
) -> Recognizer:
    """Load a model file and create its engine.

    Args:
        path: The ``.onnx`` model; None loads the bundled demo model
            (see :func:`default_model_path`).
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` or ``trt``.
        top_k: Default size of the predictions' top-k lists.
        **options: Engine options (:class:`~signrt.runtime.options.EngineOptions`), e.g.
            ``intra_op_num_threads``, ``cache_dir``, ``max_batch``, ``batch_sizes``,
            ``warmup``, ``workspace_bytes``.

    Returns:
        A ready, warmed-up :class:`Recognizer`.

    Raises:
        ModelError: If the model file is missing or invalid.
        DeviceError: If the requested device is unavailable.
        EngineOptionError: On an unknown engine option or one out of range.
    """
    model = load_model_file(path if path is not None else default_model_path())
    engine = create_engine(model, device, EngineOptions.from_kwargs(options))
    return Recognizer(model, engine, top_k=top_k)
