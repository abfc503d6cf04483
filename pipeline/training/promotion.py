"""The promotion gate: does a newly registered version become ``@candidate``?

Every new version gets ``@challenger``. It takes ``@candidate`` (the alias labelling uses) only
when there is no candidate yet, or when its selection score (:meth:`Task.selection_score` over
the final split's metrics) beats the candidate's *on the same split* by more than
``tracking.promote_margin``. When the candidate was trained on another dataset (another
fingerprint: other videos, labels or splits), it is evaluated again on the new run's split
first. A candidate with another extractor, task or class list cannot be compared on these
features: the new version is promoted only when the user says so (``--promote``), which also
promotes unconditionally in every other case.
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
    setup: TrainingSetup, candidate: VersionInfo, old: TrainedModel, split: str
) -> tuple[dict[str, float], str]:
    """The candidate's metrics on this run's ``split``: its own run's when it was trained on
    the same dataset (same fingerprint, hence the same split), else evaluated again here."""
    own = split_metrics(candidate.metrics, split)
    same_split = candidate.run_tags.get("dataset_fingerprint") == setup.fingerprint
    if same_split and own:
        return own, f"on the same {split} split"
    from pipeline.training.loop import evaluate

    module = old.module.to(setup.device)
    result = evaluate(module, setup.loaders[split], setup.task, len(setup.classes), setup.device)
    return result.metrics, f"evaluated again on this run's {split} split"


def gate(setup: TrainingSetup, metrics: dict[str, float], version: str, force: bool) -> Promotion:
    """Decide, move ``@candidate`` when promoted, log the decision on the active run."""
    name = setup.cfg.tracking.registered_model
    split = "test" if "test" in setup.loaders else "val"
    new_score = setup.task.selection_score(split_metrics(metrics, split))
    candidate = tracking.alias_info(name, tracking.CANDIDATE_ALIAS)
    promotion = _decide(setup, candidate, split, new_score, version, force)
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
    old_metrics, where = candidate_metrics(setup, candidate, old, split)
    old_score = setup.task.selection_score(old_metrics)
    margin = setup.cfg.tracking.promote_margin
    verdict = "beats" if beats(new_score, old_score, margin) else "does not beat"
    reason = (
        f"score {new_score:.4f} {verdict} candidate version {candidate.version}'s "
        f"{old_score:.4f} by more than {margin} ({where})"
    )
    return outcome(verdict == "beats", reason, old_score)
