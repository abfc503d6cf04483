"""`make demo`: the whole job on embedded defaults, offline, in ./demo_out.

synthetic videos (both tasks) -> features (Prefect flow, feature store) -> training (MLflow run in
demo_out/mlflow.db, model registered @candidate) -> labelling of the held-back test videos.
Re-running reuses everything already done (videos, features) and trains new runs.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from pipeline.cli.console import progress_bar
from pipeline.cli.runs import ui_hint
from pipeline.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "demo_out"
DATASETS = {"clip": 60, "frame": 30}  # task -> synthetic videos
ANNOTATIONS = {"clip": "labels.csv", "frame": "segments.csv"}  # what write_dataset writes

console = Console()


def synthesize(task: str, videos: int) -> Path:
    from pipeline.synth.dataset import write_dataset

    root = OUT / "data" / task
    marker = root / ANNOTATIONS[task]
    if marker.is_file():
        console.print(f"synthetic {task} dataset already in {root}: reused")
        return root
    with progress_bar(console) as progress:
        bar = progress.add_task(f"writing {task} videos", total=videos)
        summary = write_dataset(
            root, task=task, videos=videos, seed=0, on_video=lambda _: progress.advance(bar)
        )
    console.print(summary.describe())
    return root


def train(cfg: Config, config_file: Path) -> dict:
    from pipeline.cli.runs import run_train

    outcome = run_train(cfg, console, resume=False, test_only=False)
    console.print(
        f"run {outcome['run_id']}: models:/{cfg.tracking.registered_model}/"
        f"{outcome['registered_version']} (@candidate), best epoch {outcome['best_epoch']}"
    )
    for name, value in outcome["test_metrics"].items():
        console.print(f"  {name:<26} {value:.3f}")
    console.print(f"review: {ui_hint(outcome['tracking_uri'], config_file)}")
    return outcome


def held_back_folder(cfg: Config, task: str) -> Path:
    """Links (or copies) of the test-split videos: the 'new' videos the demo labels."""
    annotations = Path(cfg.data.annotations)
    inbox = OUT / "inbox" / task
    shutil.rmtree(inbox, ignore_errors=True)
    inbox.mkdir(parents=True)
    with open(annotations, newline="") as handle:
        videos = {row["video"] for row in csv.DictReader(handle) if row.get("split") == "test"}
    base = annotations.parent  # annotation paths are relative to the annotation file
    for relative in sorted(videos):
        source = base / relative
        target = inbox / Path(relative).name
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
    return inbox


def label(cfg: Config, task: str, model_uri: str) -> None:
    from pipeline.cli.runs import run_label

    inbox = held_back_folder(cfg, task)
    output = OUT / "labels" / task
    # The dataset's annotations as truth: the review page shows them above the prediction.
    truth = Path(cfg.data.annotations)
    run_label(cfg, inbox, model_uri, output, console, overwrite=True, truth=truth)  # prints paths


def main() -> None:
    started = time.perf_counter()
    OUT.mkdir(exist_ok=True)
    for task, videos in DATASETS.items():
        console.print(Rule(f"{task} task"))
        synthesize(task, videos)
        config_file = REPO / "configs" / f"demo_{task}.yaml"
        cfg = load_config(config_file)
        outcome = train(cfg, config_file)
        last_hint = ui_hint(outcome["tracking_uri"], config_file)
        label(cfg, task, f"models:/{cfg.tracking.registered_model}/{outcome['registered_version']}")
    console.print(Rule("done"))
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s; everything is in {OUT}")
    console.print(f"MLflow UI: .venv/bin/{last_hint}  (http://127.0.0.1:5000)", highlight=False)


if __name__ == "__main__":
    main()
