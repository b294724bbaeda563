"""The trainer: AdamW + warm-up/cosine schedule, label smoothing, AMP, early stopping, DDP.

``train(TrainConfig(...))`` (or ``signrt train ...``) writes into the run folder:

* ``best.pt``: the checkpoint with the best validation top-1 (weights, model config,
  FeatureSpec, labels, metrics; loadable with ``torch.load(..., weights_only=True)``);
* ``last.pt``: the latest epoch with optimiser, scheduler and scaler state (``--resume``);
* ``metrics.jsonl``: one JSON object per epoch; ``curves.png``: loss and accuracy curves;
* ``config.json``: the resolved configuration; ``cache/``: preprocessed feature caches.

Data path: raw clips are read and augmented in DataLoader workers (seeded by
``(seed, epoch, clip index)``, so results do not depend on the number of workers); the
collate function preprocesses the whole batch with the native batch call (GIL released),
so the model sees ready (B, L, F) tensors. Validation (and training when augmentation is
off) reads the memory-mapped feature cache instead.

Distributed: under ``torchrun --nproc_per_node N`` the trainer joins the process group
(NCCL on CUDA, gloo on CPU), wraps the model in DistributedDataParallel, shards the data
with a DistributedSampler, reduces metrics over all ranks, and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import DataError
from ..spec import FeatureSpec
from .augment import Augmenter
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import (
    ClipSet,
    FeatureCache,
    batch_preprocess,
    check_clips,
    open_dataset,
)
from .splits import random_split, session_split

__all__ = [
    "ClipCollate",
    "EpochIndexSampler",
    "ModelBuilder",
    "RawClipDataset",
    "TrainResult",
    "build_model_and_config",
    "loader_options",
    "train",
]

log = logging.getLogger(__name__)

#: ``(arch, spec, num_classes, options) -> (model, options as stored in the checkpoint)``.
ModelBuilder = Callable[
    [str, FeatureSpec, int, Mapping[str, Any]], tuple[nn.Module, dict[str, Any]]
]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        run_dir: The run folder.
        best: Metrics of the best epoch (``val_top1``, ``val_top5``, ``val_loss``, ``epoch``).
        history: One metrics dict per epoch run in this call (resumed epochs included from
            the log).
        stopped_early: Whether early stopping ended the run.
    """

    run_dir: Path
    best: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def best_checkpoint(self) -> Path:
        """``run_dir / "best.pt"``."""
        return self.run_dir / "best.pt"


def build_model_and_config(
    arch: str, spec: FeatureSpec, num_classes: int, options: Mapping[str, Any]
) -> tuple[nn.Module, dict[str, Any]]:
    """The default :data:`ModelBuilder`: the model zoo of :mod:`signrt.train.models`."""
    from .models import build_model, make_config

    cfg = make_config(arch, dict(options))
    return build_model(arch, spec, num_classes, cfg), cfg.to_dict()


# ----------------------------------------------------------------------------- datasets
class RawClipDataset(Dataset[tuple[npt.NDArray[np.float32], int]]):
    """Raw clips, augmented on access; indices carry the epoch (see EpochIndexSampler).

    Index ``k`` means clip ``k % N`` in epoch ``k // N``; the augmentation generator is
    ``default_rng([seed, epoch, clip])``, so every (epoch, clip) pair gets the same
    augmentation whichever worker draws it.
    """

    def __init__(self, clips: ClipSet, augmenter: Augmenter | None, seed: int) -> None:
        self.clips = clips
        self.augmenter = augmenter
        self.seed = seed

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, k: int) -> tuple[npt.NDArray[np.float32], int]:
        epoch, i = divmod(int(k), len(self.clips))
        clip = self.clips.clips[i]
        if self.augmenter is not None:
            clip = self.augmenter(clip, np.random.default_rng([self.seed, epoch, i]))
        return clip, int(self.clips.labels[i])


class ClipCollate:
    """Collate raw clips into a batch with one (native) batch preprocessing call.

    Args:
        spec: The FeatureSpec.
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec

    def __call__(self, items: Sequence[tuple[npt.NDArray[np.float32], int]]) -> Batch:
        """Return ``(features (B, L, F), mask (B, L), labels (B,))`` tensors."""
        feats, mask = batch_preprocess([c for c, _ in items], self.spec)
        labels = torch.tensor([y for _, y in items], dtype=torch.int64)  # (B,)
        return torch.from_numpy(feats), torch.from_numpy(mask), labels


class CachedBatches(Dataset[Batch]):
    """Batches read from a feature cache; an item is a whole batch (a list of indices)."""

    def __init__(self, cache: FeatureCache) -> None:
        self.cache = cache

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, idx: Sequence[int]) -> Batch:  # type: ignore[override]
        order = np.asarray(idx, dtype=np.int64)
        feats = np.ascontiguousarray(self.cache.features[order])  # (B, L, F)
        mask = np.ascontiguousarray(self.cache.mask[order])  # (B, L)
        labels = torch.from_numpy(self.cache.labels[order].copy())  # (B,)
        return torch.from_numpy(feats), torch.from_numpy(mask), labels


class EpochIndexSampler(Sampler[int]):
    """Shuffle (per epoch, seeded) and shard over ranks; yields ``epoch * N + i``.

    Works like DistributedSampler (every rank gets ``ceil(N / world)`` indices, padded by
    repetition) but encodes the epoch into the index, so persistent workers know it.
    """

    def __init__(
        self, n: int, *, shuffle: bool, seed: int, rank: int = 0, world: int = 1,
        encode_epoch: bool = True,
    ) -> None:  # fmt: skip
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world = rank, world
        self.encode_epoch = encode_epoch
        self.epoch = 0
        self.per_rank = math.ceil(n / world) if n else 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (changes the shuffle and the augmentation)."""
        self.epoch = epoch

    def indices(self) -> list[int]:
        """This rank's clip indices for the current epoch (without the epoch offset)."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.world
        if self.world > 1 and total > len(order) and order:
            order += (order * math.ceil(total / len(order)))[: total - len(order)]
        return order[self.rank : total : self.world] if self.world > 1 else order

    def __iter__(self) -> Iterator[int]:
        off = self.epoch * self.n if self.encode_epoch else 0
        return iter(i + off for i in self.indices())

    def __len__(self) -> int:
        return self.per_rank


class _ListBatchSampler(Sampler[list[int]]):
    def __init__(self, base: EpochIndexSampler, batch_size: int) -> None:
        self.base, self.batch_size = base, batch_size

    def __iter__(self) -> Iterator[list[int]]:
        idx = self.base.indices()
        for a in range(0, len(idx), self.batch_size):
            yield idx[a : a + self.batch_size]

    def __len__(self) -> int:
        return math.ceil(len(self.base) / self.batch_size)


# -------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def sum(self, values: Sequence[float]) -> list[float]:
        t = torch.tensor(list(values), dtype=torch.float64)
        if self.world > 1:
            backend = dist.get_backend()
            t = t.to(self.device) if backend == "nccl" else t
            dist.all_reduce(t)
        return [float(v) for v in t.cpu()]


def _setup_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DataError(f"device {device!r} requested but CUDA is not available")
    owns = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
        owns = True
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if use_cuda:
        name = f"cuda:{local_rank}" if device in ("auto", "cuda") else device
        dev = torch.device(name)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    return _Dist(rank, world, local_rank, dev, owns)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def _worker_init(worker_id: int) -> None:
    # Augmentation draws from explicit per-clip generators; keep torch single-threaded here.
    torch.set_num_threads(1)


def loader_options(workers: int, *, pin_memory: bool = False) -> dict[str, Any]:
    """DataLoader keyword arguments for ``workers`` processes preprocessing natively.

    Workers are persistent (the epoch travels in the indices, see :class:`EpochIndexSampler`)
    and are started with ``spawn``. The native core
    survives ``fork`` (a forked child builds its own thread pool), but by then the parent is
    multi-threaded (the core's pool, torch's intra-op threads), and forking a multi-threaded
    process is deprecated from Python 3.12 on; ``spawn`` costs a few seconds once per run,
    since the workers are persistent.
    """
    kw: dict[str, Any] = {"num_workers": workers, "pin_memory": pin_memory}
    if workers > 0:
        kw.update(persistent_workers=True, prefetch_factor=4, worker_init_fn=_worker_init)
        kw["multiprocessing_context"] = "spawn"
    return kw


# ------------------------------------------------------------------------------ training
class _Ema:
    """Exponential moving average of a model's weights and buffers (a frozen copy).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first steps, so the
    average does not stay anchored at the initial weights of a short run.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        import copy

        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.steps = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        src = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(src[k].detach(), alpha=1.0 - d)
            else:
                v.copy_(src[k])


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith(".bias") else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _lr_lambda(total: int, warmup: int, min_ratio: float) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def _load_data(cfg: TrainConfig, ddp: _Dist) -> tuple[ClipSet, ClipSet]:
    full = check_clips(open_dataset(cfg.data), strict=cfg.strict)
    if cfg.val_data:
        train_set = full
        val_set = open_dataset(cfg.val_data).with_label_names(full.label_names)
        val_set = check_clips(val_set, strict=cfg.strict)
    elif cfg.split == "session":
        fold = session_split(full.labels, full.groups)
        train_set, val_set = full.subset(fold.train), full.subset(fold.test)
    elif cfg.split == "random":
        fold = random_split(full.labels, cfg.val_fraction, seed=cfg.seed)
        train_set, val_set = full.subset(fold.train), full.subset(fold.test)
    else:
        train_set, val_set = full.split_by_group(cfg.val_fraction, seed=cfg.seed)
    if cfg.limit is not None:
        train_set = train_set.subset(range(min(cfg.limit, len(train_set))))
    if len(train_set) == 0 or len(val_set) == 0:
        raise DataError(
            f"empty split: {len(train_set)} training and {len(val_set)} validation clips"
        )
    if ddp.main:
        log.info("data: %d training clips, %d validation clips, %d classes",
                 len(train_set), len(val_set), train_set.num_classes)  # fmt: skip
    return train_set, val_set


def _cache(
    clipset: ClipSet, spec: FeatureSpec, cache_dir: Path, split: str, ddp: _Dist
) -> FeatureCache:
    stem = FeatureCache.stem_for(cache_dir, split, spec, clipset)
    if ddp.main:
        cache = FeatureCache.build(clipset, spec, cache_dir, split=split)
    ddp.barrier()
    if not ddp.main:
        cache = FeatureCache.open(stem)
    return cache


def _progress(iterable: Any, enabled: bool, desc: str, total: int) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


def _evaluate(
    model: nn.Module, loader: DataLoader[Any], ddp: _Dist, criterion: nn.Module, amp: bool
) -> dict[str, float]:
    model.eval()
    loss_sum = top1 = top5 = count = 0.0
    with torch.no_grad():
        for feats, mask, y in loader:
            feats, mask, y = feats.to(ddp.device), mask.to(ddp.device), y.to(ddp.device)
            with torch.autocast(ddp.device.type, dtype=torch.float16, enabled=amp):
                logits = model(feats, mask)  # (B, K)
            logits = logits.float()
            loss_sum += float(criterion(logits, y)) * y.shape[0]
            k = min(5, logits.shape[1])
            topk = logits.topk(k, dim=1).indices  # (B, k)
            hits = topk == y[:, None]  # (B, k)
            top1 += float(hits[:, 0].sum())
            top5 += float(hits.any(dim=1).sum())
            count += y.shape[0]
    loss_sum, top1, top5, count = ddp.sum([loss_sum, top1, top5, count])
    n = max(count, 1.0)
    return {"val_loss": loss_sum / n, "val_top1": top1 / n, "val_top5": top5 / n}


def train(
    config: TrainConfig,
    *,
    model_builder: ModelBuilder | None = None,
    train_set: ClipSet | None = None,
    val_set: ClipSet | None = None,
    on_epoch_end: Callable[[dict[str, float]], bool | None] | None = None,
) -> TrainResult:
    """Train a model; see the module docstring for what is written.

    Args:
        config: The run configuration.
        model_builder: Builds the model from (arch, spec, K, options); default: the zoo.
        train_set: Training clips (instead of ``config.data``).
        val_set: Validation clips (instead of ``config.val_data`` or a split).
        on_epoch_end: Called with the epoch's metrics after the checkpoints are written;
            returning True stops the run (as an interruption would: ``--resume`` continues).

    Returns:
        The best metrics, the history and the run folder.

    Raises:
        DataError: If the data cannot be read or split.
        ModelError: If the architecture or its options are invalid.
    """
    cfg = config
    builder = model_builder or build_model_and_config
    ddp = _setup_distributed(cfg.device)
    try:
        return _train(cfg, builder, ddp, train_set, val_set, on_epoch_end)
    finally:
        if ddp.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    cfg: TrainConfig,
    builder: ModelBuilder,
    ddp: _Dist,
    train_set: ClipSet | None,
    val_set: ClipSet | None,
    on_epoch_end: Callable[[dict[str, float]], bool | None] | None,
) -> TrainResult:
    run_dir = Path(cfg.out)
    _seed_everything(cfg.seed)
    if train_set is None or val_set is None:
        train_set, val_set = _load_data(cfg, ddp)
    from .auto import auto_config

    cfg, choices, prof = auto_config(cfg, train_set)
    assert cfg.arch is not None and cfg.augment is not None and cfg.epochs is not None
    assert cfg.batch_size is not None and cfg.lr is not None and cfg.weight_decay is not None
    assert cfg.patience is not None and cfg.ema is not None and cfg.mixup is not None
    spec = cfg.resolve_spec()
    labels = list(train_set.label_names)
    auto_doc = {"profile": prof.to_dict(), "choices": [dataclasses.asdict(c) for c in choices]}
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else run_dir / "cache"
    if ddp.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        doc = {**cfg.to_dict(), "resolved_spec": spec.to_dict(), "labels": labels,
               "world_size": ddp.world}  # fmt: skip
        (run_dir / "config.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
        (run_dir / "choices.json").write_text(json.dumps(auto_doc, indent=2, default=str) + "\n")

    # ---------------------------------------------------------------- data loaders
    workers = cfg.num_workers if cfg.num_workers >= 0 else min(4, max(0, (os.cpu_count() or 1) - 1))
    augment = cfg.augment.enabled
    if ddp.device.type == "cpu" and workers > 0:
        # the loader workers need cores too: oversubscribing them slows every step
        spare = max(1, (os.cpu_count() or 1) - workers)
        if torch.get_num_threads() > spare:
            torch.set_num_threads(spare)
            if ddp.main:
                log.info("torch threads: %d (%d cores, %d loader workers)",
                         spare, os.cpu_count() or 1, workers)  # fmt: skip
    train_sampler = EpochIndexSampler(
        len(train_set), shuffle=True, seed=cfg.seed, rank=ddp.rank, world=ddp.world
    )
    loader_kw = loader_options(workers, pin_memory=ddp.device.type == "cuda")
    train_loader: DataLoader[Any]
    if augment or not cfg.cache:
        ds = RawClipDataset(train_set, Augmenter(cfg.augment) if augment else None, cfg.seed)
        train_loader = DataLoader(ds, batch_size=cfg.batch_size, sampler=train_sampler,
                                  collate_fn=ClipCollate(spec), **loader_kw)  # fmt: skip
    else:
        tcache = _cache(train_set, spec, cache_dir, "train", ddp)
        train_sampler.encode_epoch = False
        train_loader = DataLoader(CachedBatches(tcache), batch_size=None,
                                  sampler=_ListBatchSampler(train_sampler, cfg.batch_size),
                                  **loader_kw)  # fmt: skip
    val_sampler = EpochIndexSampler(
        len(val_set), shuffle=False, seed=0, rank=ddp.rank, world=1, encode_epoch=False
    )
    if ddp.world > 1:  # shard validation without padding: rank r takes r, r + world, ...
        val_idx = list(range(ddp.rank, len(val_set), ddp.world))
    else:
        val_idx = val_sampler.indices()
    val_batches = [val_idx[a : a + cfg.batch_size] for a in range(0, len(val_idx), cfg.batch_size)]
    val_loader: DataLoader[Any]
    if cfg.cache:
        vcache = _cache(val_set, spec, cache_dir, "val", ddp)
        val_loader = DataLoader(CachedBatches(vcache), batch_size=None, sampler=val_batches)
    else:
        val_loader = DataLoader(RawClipDataset(val_set, None, cfg.seed), batch_sampler=val_batches,
                                collate_fn=ClipCollate(spec))  # fmt: skip

    # ---------------------------------------------------------------- model, optimiser
    model, model_options = builder(cfg.arch, spec, len(labels), cfg.model)
    model.to(ddp.device)
    net: nn.Module = model
    if ddp.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[ddp.device.index] if ddp.device.type == "cuda" else None
        )
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = max(1, len(train_loader))
    total = steps_per_epoch * cfg.epochs
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, warmup, cfg.min_lr_ratio))
    use_amp = bool(cfg.amp and ddp.device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    weight = None
    if cfg.class_weights:
        counts = torch.from_numpy(train_set.class_counts()).double().clamp(min=1)  # (K,)
        weight = (counts.sum() / (len(counts) * counts)).float().to(ddp.device)  # (K,)
    criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    ema = _Ema(model, cfg.ema) if cfg.ema > 0 else None
    eval_criterion = nn.CrossEntropyLoss()

    start_epoch, best, bad_epochs = 0, {"val_top1": -1.0, "val_loss": math.inf}, 0
    history: list[dict[str, float]] = []
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if cfg.resume and last_path.is_file():
        ck = load_checkpoint(last_path)
        if ck.labels != labels or ck.arch != cfg.arch or ck.spec != spec:
            raise DataError(f"{last_path}: cannot resume, the run's labels, arch or spec differ")
        state = ck.extra.get("trainer_state", {})
        if ema is not None and isinstance(state.get("raw_state"), Mapping):
            ema.model.load_state_dict(dict(ck.state_dict))  # the checkpoint holds the average
            model.load_state_dict(dict(state["raw_state"]))
            ema.steps = int(state.get("ema_steps", 0))
        else:
            model.load_state_dict(dict(ck.state_dict))
        if ck.optimizer:
            opt.load_state_dict(ck.optimizer)
        if ck.scheduler:
            sched.load_state_dict(ck.scheduler)
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if isinstance(state.get("torch_rng"), torch.Tensor):
            torch.set_rng_state(state["torch_rng"])
        start_epoch = ck.epoch
        best = dict(state.get("best", best))
        bad_epochs = int(state.get("bad_epochs", 0))
        history = _read_history(run_dir / "metrics.jsonl", start_epoch)
        if ddp.main:
            log.info("resumed from %s at epoch %d", last_path, start_epoch)
    elif cfg.resume and ddp.main:
        log.warning("--resume: %s does not exist, starting from scratch", last_path)
    if ddp.main and start_epoch == 0:
        (run_dir / "metrics.jsonl").write_text("")

    show = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    show = bool(show and ddp.main)
    stopped = False
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.patience and bad_epochs >= cfg.patience:
            stopped = True
            break
        train_sampler.set_epoch(epoch)
        net.train()
        t0 = time.perf_counter()
        loss_sum = correct = seen = 0.0
        bar = _progress(train_loader, show, f"epoch {epoch + 1}/{cfg.epochs}", steps_per_epoch)
        for step, (feats, mask, y) in enumerate(bar):
            feats = feats.to(ddp.device, non_blocking=True)  # (B, L, F)
            mask = mask.to(ddp.device, non_blocking=True)  # (B, L)
            y = y.to(ddp.device, non_blocking=True)  # (B,)
            lam, perm = 1.0, None
            if cfg.mixup > 0 and y.shape[0] > 1:  # seeded by (seed, epoch, step, rank)
                mix_rng = np.random.default_rng([cfg.seed, epoch, step, ddp.rank])
                lam = float(mix_rng.beta(cfg.mixup, cfg.mixup))
                perm = torch.from_numpy(mix_rng.permutation(y.shape[0])).to(ddp.device)
                feats = lam * feats + (1.0 - lam) * feats[perm]  # (B, L, F)
                mask = torch.maximum(mask, mask[perm])  # (B, L)
            with torch.autocast(ddp.device.type, dtype=torch.float16, enabled=use_amp):
                logits = net(feats, mask)  # (B, K)
            loss = criterion(logits.float(), y)
            if perm is not None:
                loss = lam * loss + (1.0 - lam) * criterion(logits.float(), y[perm])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            if ema is not None:
                ema.update(model)
            loss_sum += float(loss.detach()) * y.shape[0]
            correct += float((logits.detach().argmax(1) == y).sum())
            seen += y.shape[0]
            if show:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        train_time = time.perf_counter() - t0
        loss_sum, correct, seen = ddp.sum([loss_sum, correct, seen])
        metrics: dict[str, float] = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "lr": float(sched.get_last_lr()[0]),
            "clips_per_s": seen / max(train_time, 1e-9),
        }
        # the unwrapped model: DDP's forward would sync buffers, and shards may be uneven
        scored = ema.model if ema is not None else model
        metrics.update(_evaluate(scored, val_loader, ddp, eval_criterion, use_amp))
        metrics["epoch_time_s"] = time.perf_counter() - t0
        history.append(metrics)
        improved = metrics["val_top1"] > best["val_top1"] or (
            metrics["val_top1"] == best["val_top1"] and metrics["val_loss"] < best["val_loss"]
        )
        bad_epochs = 0 if improved else bad_epochs + 1
        if improved:
            best = {k: metrics[k] for k in ("epoch", "val_top1", "val_top5", "val_loss")}
        if ddp.main:
            log.info(
                "epoch %d: train loss %.4f acc %.3f | val loss %.4f top1 %.3f top5 %.3f "
                "| %.0f clips/s",
                epoch + 1, metrics["train_loss"], metrics["train_acc"], metrics["val_loss"],
                metrics["val_top1"], metrics["val_top5"], metrics["clips_per_s"],
            )  # fmt: skip
            with open(run_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(metrics) + "\n")
            info = {"data": cfg.data, "val_data": cfg.val_data, "train_clips": len(train_set),
                    "val_clips": len(val_set), "config": cfg.to_dict(),
                    "auto": auto_doc}  # fmt: skip
            ck = Checkpoint(
                arch=cfg.arch, model_config=model_options, spec=spec, labels=labels,
                state_dict=scored.state_dict(), metrics=dict(metrics), epoch=epoch + 1,
                train=info,
            )  # fmt: skip
            if improved:
                save_checkpoint(best_path, ck)
            ck.optimizer = opt.state_dict()
            ck.scheduler = sched.state_dict()
            ck.extra = {"trainer_state": {
                "scaler": scaler.state_dict() if use_amp else {},
                "torch_rng": torch.get_rng_state(),
                "best": best, "bad_epochs": bad_epochs,
                **({"raw_state": model.state_dict(), "ema_steps": ema.steps} if ema else {}),
            }}  # fmt: skip
            save_checkpoint(last_path, ck)
            if cfg.plots:
                with contextlib.suppress(ImportError):
                    plot_curves(history, run_dir / "curves.png")
        ddp.barrier()
        if on_epoch_end is not None and on_epoch_end(dict(metrics)):
            break
        if cfg.patience and bad_epochs >= cfg.patience and epoch + 1 < cfg.epochs:
            stopped = True
            break
    if stopped and ddp.main:
        log.info("early stopping: no better val_top1 for %d epochs", cfg.patience)
    return TrainResult(run_dir, best, history, stopped)


def _read_history(path: Path, upto: int) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("epoch", 0) <= upto]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def plot_curves(history: Sequence[Mapping[str, float]], path: str | os.PathLike[str]) -> Path:
    """Plot loss and accuracy per epoch into a PNG (matplotlib, Agg backend).

    Args:
        history: Metrics dicts with ``epoch``, ``train_loss``, ``val_loss``, ``train_acc``,
            ``val_top1`` and ``val_top5``.
        path: Destination PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(ep, [h["train_loss"] for h in history], label="train")
    ax1.plot(ep, [h["val_loss"] for h in history], label="validation")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(ep, [h["train_acc"] for h in history], label="train top-1")
    ax2.plot(ep, [h["val_top1"] for h in history], label="validation top-1")
    ax2.plot(ep, [h["val_top5"] for h in history], label="validation top-5", linestyle="--")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0.0, 1.02)
    ax2.legend()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
