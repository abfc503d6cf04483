"""The promotion gate: does a newly registered version become ``@candidate``?

Every new version gets ``@challenger``. It takes ``@candidate`` (the alias labelling uses) only
when there is no candidate yet, or when its selection score (:meth:`Task.selection_score` over
the final split's metrics) beats the candidate's *on the same split* by more than
``tracking.promote_margin``. When the candidate was trained on another dataset (another
fingerprint: other videos, labels or splits), it is evaluated again on the new run's split
first. A candidate with another extractor, task or class list cannot be compared on these
features: the new version is promoted only when the user says so (``--promote``), which also
promotes unconditionally in every other case.

A frame model is scored on what users get: its ``smoothed_*`` metrics (labels after the merging
``vidtag label`` applies, at native frames; :func:`promotion_score`), the candidate's at its
own stored merge length. Runs without them (older candidates) are evaluated again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline import tracking
from pipeline.tracking.registry import VersionInfo

if TYPE_CHECKING:
    from pipeline.tracking.model_io import TrainedModel
    from pipeline.training.job import TrainingSetup


@dataclass(frozen=True)
class Promotion:
    """The gate's decision for one new version, as logged on its run."""

    promoted: bool
    reason: str
    version: str
    candidate_version: str | None  # the candidate before the decision
    new_score: float
    candidate_score: float | None  # None: not compared (no candidate, or incomparable)

    @property
    def decision(self) -> str:
        return "promoted" if self.promoted else "kept"

    def tags(self) -> dict[str, str]:
        return {
            "promotion": self.decision,
            "promotion.reason": self.reason,
            "promotion.candidate_version": self.candidate_version or "",
        }

    def metrics(self) -> dict[str, float]:
        scores = {"promotion_new_score": self.new_score}
        if self.candidate_score is not None:
            scores["promotion_candidate_score"] = self.candidate_score
        return scores


def beats(new_score: float, candidate_score: float, margin: float) -> bool:
    """The rule: strictly better than the candidate by more than ``margin``."""
    return new_score > candidate_score + margin


def split_metrics(metrics: dict[str, float], split: str) -> dict[str, float]:
    """``{"accuracy": …}`` from ``{"test_accuracy": …}`` (the other keys dropped)."""
    prefix = f"{split}_"
    return {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}


SMOOTHED = "smoothed_"


def has_smoothed(metrics: dict[str, float]) -> bool:
    return any(name.startswith(SMOOTHED) for name in metrics)


def promotion_score(task, metrics: dict[str, float], smoothed: bool) -> float:
    """The task's selection score over one split's metrics: over the ``smoothed_*`` ones
    (``smoothed_f1_50`` and ``smoothed_frame_accuracy`` for a frame model) when ``smoothed``."""
    if not smoothed:
        return task.selection_score(metrics)
    view = {k.removeprefix(SMOOTHED): v for k, v in metrics.items() if k.startswith(SMOOTHED)}
    return task.selection_score(view)


def incomparable(setup: TrainingSetup, old: TrainedModel) -> str | None:
    """Why the candidate cannot be scored on this run's features (None: it can)."""
    if old.spec.key() != setup.spec.key():
        return "the extractor changed"
    if old.task != setup.task.name:
        return "the task changed"
    if list(old.classes) != setup.classes:
        return "the classes changed"
    return None


def candidate_metrics(
    setup: TrainingSetup,
    candidate: VersionInfo,
    old: TrainedModel,
    split: str,
    smoothed: bool = False,
) -> tuple[dict[str, float], str]:
    """The candidate's metrics on this run's ``split``: its own run's when it was trained on
    the same dataset (same fingerprint, hence the same split) and has what the gate compares
    (``smoothed``: the ``smoothed_*`` metrics), else evaluated again here (``smoothed``: also
    labelled at its own stored merge length)."""
    own = split_metrics(candidate.metrics, split)
    same_split = candidate.run_tags.get("dataset_fingerprint") == setup.fingerprint
    if same_split and own and (has_smoothed(own) or not smoothed):
        return own, f"on the same {split} split"
    from pipeline.config import AUTO
    from pipeline.data.frames import merge_length
    from pipeline.training.loop import evaluate
    from pipeline.training.smoothing import split_smoothed_metrics

    module = old.module.to(setup.device)
    result = evaluate(module, setup.loaders[split], setup.task, len(setup.classes), setup.device)
    metrics = dict(result.metrics)
    if smoothed:
        min_s = merge_length(AUTO, old.options)
        again = split_smoothed_metrics(
            setup.annotations, setup.native, result, split, min_s, setup.task.background_ids
        )
        metrics.update(split_metrics(again, split))
    return metrics, f"evaluated again on this run's {split} split"


def gate(setup: TrainingSetup, metrics: dict[str, float], version: str, force: bool) -> Promotion:
    """Decide, move ``@candidate`` when promoted, log the decision on the active run."""
    name = setup.cfg.tracking.registered_model
    split = "test" if "test" in setup.loaders else "val"
    new_metrics = split_metrics(metrics, split)
    smoothed = setup.task.per_step and has_smoothed(new_metrics)
    new_score = promotion_score(setup.task, new_metrics, smoothed)
    candidate = tracking.alias_info(name, tracking.CANDIDATE_ALIAS)
    promotion = _decide(setup, candidate, split, new_score, version, force, smoothed)
    if promotion.promoted:
        tracking.move_candidate(name, version)
    tracking.set_tags(promotion.tags())
    tracking.log_metrics(promotion.metrics())
    return promotion


def _decide(
    setup: TrainingSetup,
    candidate: VersionInfo | None,
    split: str,
    new_score: float,
    version: str,
    force: bool,
    smoothed: bool = False,
) -> Promotion:
    def outcome(promoted: bool, reason: str, old: float | None = None) -> Promotion:
        previous = candidate.version if candidate is not None else None
        return Promotion(promoted, reason, version, previous, new_score, old)

    if candidate is None:
        return outcome(True, "no candidate yet")
    if force:
        return outcome(True, f"--promote (over version {candidate.version})")
    old = tracking.load_model(f"models:/{candidate.name}/{candidate.version}")
    why = incomparable(setup, old)
    if why is not None:
        return outcome(
            False, f"{why} since candidate version {candidate.version}: pass --promote to use it"
        )
    old_metrics, where = candidate_metrics(setup, candidate, old, split, smoothed)
    old_score = promotion_score(setup.task, old_metrics, smoothed)
    margin = setup.cfg.tracking.promote_margin
    verdict = "beats" if beats(new_score, old_score, margin) else "does not beat"
    basis = "smoothed " if smoothed else ""
    reason = (
        f"{basis}score {new_score:.4f} {verdict} candidate version {candidate.version}'s "
        f"{old_score:.4f} by more than {margin} ({where})"
    )
    return outcome(verdict == "beats", reason, old_score)
