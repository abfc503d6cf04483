"""`vidtag train` then `vidtag label` end to end with the other frame models: the tcn cell (causal
here) and a recurrent tagger with refinement stages. Each is trained, tracked and registered by
the CLI, labels held-back videos through the CLI, and its registered pyfunc, loaded in a fresh
process with pickle loading disabled, predicts what the loaded model does."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli.app import app
from tests.conftest import tiny_config
from tests.helpers_trained import summary_rows

pytestmark = pytest.mark.slow  # trains and labels through the CLI (whole flows)

MODELS = {
    "tcn": {
        "model.cell": "tcn", "model.stages": 2, "model.tcn_layers": 4, "model.tcn_channels": 16,
        "model.bidirectional": False,
    },
    "stages": {"model.cell": "gru", "model.hidden": 16, "model.stages": 3, "model.stage_hidden": 8},
}  # fmt: skip


class Run(NamedTuple):
    cfg: object  # pipeline.config.Config
    uri: str
    input: Path
    output: Path
    label_exit: int
    label_text: str


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("frame_models")  # one feature store: extracted once


@pytest.fixture(scope="module", params=sorted(MODELS))
def run(request, prefect_api, frame_dataset: Path, root: Path) -> Run:
    kind = request.param
    name = f"test-label-{kind}"
    cfg = tiny_config(
        root, frame_dataset / "videos", frame_dataset / "segments.csv", "frame",
        **{"train.epochs": 4, "train.patience": 0, "train.smooth_weight": 0.15,
           "tracking.registered_model": name, "train.checkpoint_dir": root / kind,
           **MODELS[kind]},
    )  # fmt: skip
    config_file = root / f"{kind}.yaml"
    config_file.write_text(cfg.to_yaml())
    trained = CliRunner().invoke(app, ["train", "-c", str(config_file)])
    assert trained.exit_code == 0, trained.output
    inbox = root / f"{kind}-in"
    inbox.mkdir()
    with open(frame_dataset / "segments.csv", newline="") as handle:
        held_out = sorted({r["video"] for r in csv.DictReader(handle) if r["split"] != "train"})
    for video in held_out[:2]:
        shutil.copy2(frame_dataset / video, inbox / Path(video).name)
    uri = f"models:/{name}@candidate"
    out = root / f"{kind}-out"
    labelled = CliRunner().invoke(
        app, ["label", str(inbox), "--model", uri, "--out", str(out), "-c", str(config_file)]
    )
    return Run(cfg, uri, inbox, out, labelled.exit_code, labelled.output)


def test_the_registered_model_is_the_configured_one(run: Run) -> None:
    import mlflow

    from pipeline.tracking.mlflow import load_model

    mlflow.set_tracking_uri(run.cfg.tracking.uri)
    model = load_model(run.uri)
    cfg = model.module.cfg
    assert (cfg.cell, cfg.stages) == (run.cfg.model.cell, run.cfg.model.stages)
    assert model.task == "frame" and not model.module.training
    assert model.module.causal is (not run.cfg.model.bidirectional)
    name = run.cfg.tracking.registered_model
    (tracked,) = mlflow.search_runs(
        experiment_names=[run.cfg.tracking.experiment],
        filter_string=f"params.`tracking.registered_model` = '{name}'",
        output_format="list",
    )
    assert tracked.data.params["model.stages"] == str(run.cfg.model.stages)
    assert tracked.data.params["model.cell"] == run.cfg.model.cell


def test_vidtag_label_labels_every_video(run: Run) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from pipeline.labeling.outputs import LABELS_SCHEMA
    from pipeline.labeling.segments import expand_frame_runs

    assert run.label_exit == 0, run.label_text
    rows = summary_rows(run.output)
    videos = sorted(p.name for p in run.input.iterdir())
    assert sorted(rows) == videos and all(r["status"] == "ok" for r in rows.values()), rows
    for video in videos:
        doc = json.loads((run.output / f"{Path(video).stem}.labels.json").read_text())
        jsonschema.validate(doc, LABELS_SCHEMA)
        assert doc["model"]["uri"] == run.uri and doc["model"]["task"] == "frame"
        classes = set(doc["model"]["classes"])
        # Four epochs may not find a segment: every frame and sample still gets a label.
        assert len(expand_frame_runs(doc["frames"])) == doc["info"]["frames"]
        assert doc["samples"]["labels"] and set(doc["samples"]["labels"]) <= classes
        assert {s["label"] for s in doc["segments"]} <= classes


def held_out(cfg) -> list[np.ndarray]:
    """The stored features of the videos not trained on."""
    from pipeline.data.annotations import load_annotations
    from pipeline.features import spec_from_config
    from pipeline.features.store import FeatureStore

    store, key = FeatureStore(cfg.features.store), spec_from_config(cfg).key()
    items = [item for item in load_annotations(cfg.data).items if item.split != "train"]
    return [store.get(store.video_key(item.path), key).features for item in items]


def test_the_pyfunc_predicts_what_the_model_does(run: Run, tmp_path: Path) -> None:
    import mlflow

    from pipeline.tracking.mlflow import load_model

    mlflow.set_tracking_uri(run.cfg.tracking.uri)
    model = load_model(run.uri)
    features = held_out(run.cfg)[:3]
    assert features
    expected = model.predict_proba(features)
    for index, array in enumerate(features):
        np.save(tmp_path / f"f{index}.npy", array)
    script = (
        "import sys, numpy as np, mlflow\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "model = mlflow.pyfunc.load_model(sys.argv[4])\n"
        "feats = [np.load(f'{sys.argv[2]}/f{i}.npy') for i in range(int(sys.argv[3]))]\n"
        # The signature describes the table of videos; arrays of features go to the model itself.
        "outs = model.unwrap_python_model().predict(None, feats)\n"
        "for i, out in enumerate(outs): np.save(f'{sys.argv[2]}/o{i}.npy', out)\n"
    )
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    subprocess.run(
        [sys.executable, "-c", script, run.cfg.tracking.uri, str(tmp_path), str(len(features)),
         run.uri],
        check=True, env=env, cwd=tmp_path, timeout=180,
    )  # fmt: skip
    for index, want in enumerate(expected):
        got = np.load(tmp_path / f"o{index}.npy")
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
