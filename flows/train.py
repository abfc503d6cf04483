"""Prefect flow ``train``: extraction (a subflow; stored features are reused), then training."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow

from flows.extract import extract_features
from pipeline.config import Config
from pipeline.progress import reporter
from pipeline.training.job import require_test_checkpoint, run_training


@flow(name="train")
def train(
    config: Config, resume: bool = False, test_only: bool = False, promote: bool = False
) -> dict[str, Any]:
    """Extract the features of ``config.data.videos``, then train and log one MLflow run.
    ``promote``: the new version becomes @candidate even when it does not beat the current one
    (for a changed extractor, whose models the gate cannot compare)."""
    if test_only:
        require_test_checkpoint(config)  # before the extraction, not after it
    extraction = extract_features(config, print_summary=False)
    outcome = run_training(
        config, resume=resume, test_only=test_only, on_epoch=reporter().epoch, promote=promote
    )
    return {**asdict(outcome), "extraction": extraction}
