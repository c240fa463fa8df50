"""The shared trainer: one loop for every method, readable top to bottom.

    metrics = run_trial(TrialConfig.model_validate(config), data_root="data")

Data stays on the device; each batch is rendered and augmented there. Metrics are gathered
per epoch (one host sync an epoch), then the encoder is evaluated on cached features.

Checkpoints and exact resume: with ``checkpoint_dir``, the trial writes one file,
``checkpoint_dir/checkpoint.pt``, every ``checkpoint_every`` epochs and after the last, and
replaces it atomically (temporary file, then ``os.replace``). It holds the method's
``state_dict`` (MoCo's key encoder and queue included), the optimiser's and the schedule's
state, the number of epochs finished, the state of the trial's generator and of torch's global
generator (and CUDA's), the last epoch's metrics, the training seconds so far and the trial's
identity (format: ``workers.checkpoint``). When ``checkpoint_dir`` already holds one,
``run_trial`` rebuilds the trial from its seed, loads it and runs only the remaining epochs.
Every random draw of an epoch comes from the trial's generator, whose state the checkpoint
keeps, so a resumed trial computes exactly what an uninterrupted one does (same device).

    metrics = run_trial(trial, checkpoint_dir=Path("runs") / trial_hash, checkpoint_every=5)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from workers.checkpoint import capture, load_checkpoint, restore, save_checkpoint
from workers.config import TrialConfig
from workers.data.base import Dataset, Split
from workers.data.cache import cached_dataset
from workers.linear_eval import FeatureCache, linear_probe, linear_regression_error, online_accuracy
from workers.measures import (
    CONTRAST_METRICS,
    GEOMETRY_METRICS,
    SIMILARITY_METRICS,
    TRANSFORM_METRICS,
    contrastive_diagnostics,
    knn_accuracy,
    measure_geometry,
    save_similarities,
    similarity_distributions,
    similarity_summary,
    transform_prediction,
)
from workers.methods import Method

EpochCallback = Callable[[int, dict[str, float]], None]

# What a trial logs, for the orchestrator to check study files against.
# once per epoch; CONTRAST_METRICS with eval.contrast
EPOCH_METRICS = ("train/loss", "train/lr", "train/epoch_seconds", *CONTRAST_METRICS)
# once per trial; GEOMETRY_METRICS with eval.geometry, TRANSFORM_METRICS (its tasks') with eval.transform_prediction
TRIAL_METRICS = ("train/seconds", *GEOMETRY_METRICS, *SIMILARITY_METRICS, *TRANSFORM_METRICS)
# Once per trial and evaluated target, as "linear_acc/<target>" ("knn_acc/<target>" with eval.knn);
# "online_acc/<target>" (with eval.online) also once per epoch, its last value being the trial's.
# A regression target (Dataset.regression) logs "linear_error/<target>" instead of "linear_acc".
# With eval.linear.projection, "linear_acc_z/<target>" (or "linear_error_z") probes z = g(h) instead of h.
TARGET_METRICS = ("linear_acc", "online_acc", "knn_acc", "linear_error", "linear_acc_z", "linear_error_z")
EXTRACTION_BATCH = 1024  # feature extraction only: does not change any result


class TrialDiverged(RuntimeError):
    """The training loss stopped being finite."""


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_trial(
    config: TrialConfig,
    *,
    data_root: Path | str = "data",
    device: str | torch.device | None = None,
    on_epoch: EpochCallback | None = None,
    checkpoint_dir: Path | str | None = None,
    checkpoint_every: int = 1,
    artifact_dir: Path | str | None = None,
) -> dict[str, float]:
    """Train and evaluate one trial; returns its final metrics.

    ``on_epoch(epoch, metrics)`` is called after every epoch this call runs (``epoch`` counts
    from 1; a resumed trial starts after its checkpoint's epoch), once that epoch's checkpoint
    (if one is due) is on disk. ``checkpoint_dir``: where the trial's checkpoint is written and,
    if one is there, resumed from (see the module docstring). Checkpointing never changes a
    result, so neither argument is part of the trial's config. ``artifact_dir``: where
    measurements write their files (``eval.similarities``: ``similarities.npz``); without it
    they write none.
    """
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1 epoch, got {checkpoint_every}")
    device = pick_device(device)
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    dataset = cached_dataset(config.data, data_root, device)  # built once per process (workers.data.cache)
    method = config.method.build(config, dataset).to(device)
    if config.train.compile:
        method.encoder.compile()  # nn.Module.compile: compiled on its first call, state dict unchanged
    if config.eval.linear is not None and config.eval.linear.projection and getattr(method, "head", None) is None:
        # before training, not after it: the trial would be spent for nothing
        raise ValueError(f"eval.linear.projection probes g(h), but method {config.method.name} has no projection head")
    metrics: dict[str, float] = {}
    if method.trains and config.train.epochs > 0:
        metrics |= train(
            method, dataset.train, config, generator, on_epoch, test_split=dataset.test,
            checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
            checkpoint_every=checkpoint_every,
        )
    metrics |= evaluate(method, dataset, config, artifact_dir=None if artifact_dir is None else Path(artifact_dir))
    return metrics


def train(
    method: Method,
    split: Split,
    config: TrialConfig,
    generator: torch.Generator,
    on_epoch: EpochCallback | None = None,
    *,
    test_split: Split | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 1,
) -> dict[str, float]:
    """Runs ``config.train.epochs`` epochs; returns the last epoch's metrics and the total time.

    The method's online classifiers (if any) are evaluated on ``test_split`` after every epoch.
    With ``checkpoint_dir``, resumes from the checkpoint there and writes one every
    ``checkpoint_every`` epochs and after the last.
    """
    batch_size = config.train.batch_size
    if batch_size > len(split):
        raise ValueError(f"train.batch_size={batch_size} is more than the {len(split)} training examples")
    steps_per_epoch = len(split) // batch_size  # the last partial batch is dropped
    # Online classifiers take no weight decay (the notebooks regularise only the encoder and head).
    optimizer, schedule = config.optim.build(
        method, steps_per_epoch, config.train.epochs, method.online.parameters(), batch_size=batch_size
    )
    device = generator.device
    # bfloat16 autocast: 2.0-2.3× faster SimCLR steps on this 2-core AVX-512 CPU (benchmarks/precision.py), and
    # the usual mixed precision on a GPU. Losses compute in float32 (see ``workers.methods``).
    mixed = config.train.precision == "bfloat16"
    method.train()
    metrics: dict[str, float] = {}
    first_epoch, seconds_before = 1, 0.0
    saved = None if checkpoint_dir is None else load_checkpoint(checkpoint_dir)
    if saved is not None:
        parts = {"method": method, "optimizer": optimizer, "schedule": schedule, "generator": generator}
        restore(saved, identity=config.identity(), **parts)
        first_epoch, metrics, seconds_before = saved["epoch"] + 1, saved["metrics"], saved["seconds"]
    started = time.perf_counter() - seconds_before  # train/seconds counts every run of the trial
    for epoch in range(first_epoch, config.train.epochs + 1):
        epoch_start = time.perf_counter()
        order = torch.randperm(len(split), device=device, generator=generator)
        total = torch.zeros((), device=device)
        for index in order[: steps_per_epoch * batch_size].view(steps_per_epoch, batch_size):
            # "index": the batch's rows in the split, for methods keyed by example (workers.memory_bank).
            labels = {target: values[index] for target, values in split.labels.items()} | {"index": index}
            if (second_view := split.second_view(index)) is not None:  # views that are different inputs
                labels["second_view"] = second_view
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed):
                loss, online_loss = method.training_loss(split.images(index), labels, generator)
            optimizer.zero_grad(set_to_none=True)
            (loss + online_loss).backward()
            optimizer.step()
            method.after_step()
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            schedule.step()
            total += loss.detach()
        mean_loss = (total / steps_per_epoch).item()
        if not math.isfinite(mean_loss):
            raise TrialDiverged(f"train/loss is {mean_loss} in epoch {epoch}")
        metrics = {
            "train/loss": mean_loss,
            "train/lr": lr,
            "train/epoch_seconds": time.perf_counter() - epoch_start,
        }
        # After the clock stops: train/epoch_seconds is training alone. train/loss is the method's
        # loss alone too; the online classifiers' cross-entropy only trains them.
        if method.online and test_split is not None:
            metrics |= online_accuracy(method.encoder, method.online, test_split, EXTRACTION_BATCH)
        if config.eval.contrast is not None and test_split is not None:
            metrics |= contrastive_diagnostics(
                method, test_split, config.eval.contrast, config.views, config.seed, EXTRACTION_BATCH
            )
        if checkpoint_dir is not None and (epoch % checkpoint_every == 0 or epoch == config.train.epochs):
            # Written before on_epoch: a callback may hand the folder on (Ray Tune), or stop the run.
            save_checkpoint(checkpoint_dir, capture(
                identity=config.identity(), epoch=epoch, method=method, optimizer=optimizer, schedule=schedule,
                generator=generator, metrics=metrics, seconds=time.perf_counter() - started,
            ))
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    metrics["train/seconds"] = time.perf_counter() - started
    return metrics


def evaluate(
    method: Method, dataset: Dataset, config: TrialConfig, *, artifact_dir: Path | None = None
) -> dict[str, float]:
    """Linear (and kNN) accuracy in percent per evaluated target, then the measurements asked for.

    Every split's representation is extracted once (``FeatureCache``) whoever reads it.
    """
    features = FeatureCache(method.encoder, EXTRACTION_BATCH)
    metrics = probe_accuracy(dataset, config, features)
    settings = config.eval
    if settings.linear is not None and settings.linear.projection:
        metrics |= projection_accuracy(method, dataset, config)
    if settings.geometry is not None:
        target = settings.geometry.target or next(iter(dataset.num_classes))
        metrics |= measure_geometry(
            method, dataset.test, features(dataset.test), settings.geometry, target, config.views, config.seed,
            EXTRACTION_BATCH,
        )
    if settings.similarities is not None:
        distributions = similarity_distributions(
            method, dataset.test, settings.similarities, config.views, config.seed, EXTRACTION_BATCH
        )
        metrics |= similarity_summary(*distributions)
        if artifact_dir is not None:
            save_similarities(artifact_dir, *distributions)
    if settings.transform_prediction is not None:
        metrics |= transform_prediction(method, dataset, settings.transform_prediction, config.seed, EXTRACTION_BATCH)
    return metrics


def projection_accuracy(method: Method, dataset: Dataset, config: TrialConfig) -> dict[str, float]:
    """The linear probes of ``eval.linear`` on z = g(h) (SimCLR's head study): ``linear_acc_z/<target>``."""
    linear_only = config.model_copy(update={"eval": config.eval.model_copy(update={"knn": None})})
    projected = FeatureCache(nn.Sequential(method.encoder, method.head), EXTRACTION_BATCH)
    return {
        name.replace("/", "_z/", 1): value for name, value in probe_accuracy(dataset, linear_only, projected).items()
    }


def probe_accuracy(dataset: Dataset, config: TrialConfig, features: FeatureCache) -> dict[str, float]:
    """``linear_acc/<target>`` (eval.linear; ``linear_error/<target>`` for a regression target) and
    ``knn_acc/<target>`` (eval.knn) of the frozen encoder."""
    linear, knn = config.eval.linear, config.eval.knn
    every_target = [*dataset.num_classes, *dataset.regression]
    linear_targets = (linear.targets or every_target) if linear is not None else []
    knn_targets = (knn.targets or list(dataset.num_classes)) if knn is not None else []
    # Targets whose probes read the same images share one extraction.
    groups: dict[tuple[int, int], tuple[Split, Split, list[str]]] = {}
    for target in dict.fromkeys([*linear_targets, *knn_targets]):
        train_split, test_split = dataset.train.probed_for(target), dataset.test.probed_for(target)
        groups.setdefault((id(train_split), id(test_split)), (train_split, test_split, []))[2].append(target)
    linear_accuracy: dict[str, float] = {}
    knn_accuracies: dict[str, float] = {}
    for train_split, test_split, group in groups.values():
        if regressed := [t for t in group if t in linear_targets and t in dataset.regression]:
            linear_accuracy |= linear_regression_error(
                features(train_split),
                {t: train_split.labels[t] for t in regressed},
                features(test_split),
                {t: test_split.labels[t] for t in regressed},
                weight_decay=linear.weight_decay,
            )
        if chosen := [t for t in group if t in linear_targets and t not in dataset.regression]:
            linear_accuracy |= linear_probe(
                features(train_split),
                {t: train_split.labels[t] for t in chosen},
                features(test_split),
                {t: test_split.labels[t] for t in chosen},
                dataset.num_classes,
                steps=linear.steps,
                weight_decay=linear.weight_decay,
            )
        if chosen := [t for t in group if t in knn_targets]:
            knn_accuracies |= knn_accuracy(
                features(train_split),
                {t: train_split.labels[t] for t in chosen},
                features(test_split),
                {t: test_split.labels[t] for t in chosen},
                dataset.num_classes,
                k=knn.k,
                temperature=knn.temperature,
            )
    linear_metric = {t: "linear_error" if t in dataset.regression else "linear_acc" for t in linear_targets}
    return {f"{linear_metric[t]}/{t}": linear_accuracy[t] for t in linear_targets} | {
        f"knn_acc/{t}": knn_accuracies[t] for t in knn_targets
    }
