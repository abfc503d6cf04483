"""flows/label.py end to end: a model trained here labels synthetic, real and damaged videos."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers_labeling import parse_vtt
from tests.helpers_trained import (
    DAMAGED,
    LABEL_MIN_SEGMENT_S,
    MODEL_NAME,
    MODEL_URI,
    Labelled,
    good_videos,
    invoke,
    summary_rows,
)

pytestmark = pytest.mark.slow  # every test labels with a model trained here (whole flows)


def per_video_files(output: Path) -> dict[str, int]:
    """Every per-video output file -> its mtime (ns)."""
    return {
        str(p.relative_to(output)): p.stat().st_mtime_ns
        for p in output.rglob("*")
        if p.is_file() and p.name not in ("summary.csv", "index.html")
    }


def test_every_good_video_gets_all_three_valid_files(labelled: Labelled) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from pipeline.labeling.outputs import LABELS_SCHEMA
    from pipeline.labeling.segments import expand_frame_runs

    rows = summary_rows(labelled.output)
    assert set(rows) == set(good_videos(labelled)) | set(DAMAGED), labelled.output_text
    assert len(good_videos(labelled)) >= len(labelled.held_out) + 2
    for video in good_videos(labelled):
        assert rows[video]["status"] == "ok", (video, rows[video])
        base = labelled.output / video
        if not video.startswith("twins/"):
            base = base.with_suffix("")
        doc = json.loads(base.with_name(base.name + ".labels.json").read_text())
        jsonschema.validate(doc, LABELS_SCHEMA)
        info = doc["info"]
        assert len(expand_frame_runs(doc["frames"])) == info["frames"], video
        assert doc["model"]["uri"] == MODEL_URI and doc["model"]["run_id"]
        assert doc["clip"] is None and doc["samples"]["labels"]
        cues = parse_vtt(base.with_name(base.name + ".vtt").read_text())
        assert len(cues) == len(doc["segments"])
        ends = [0.0] + [end for _, end, _ in cues]
        for (start, end, _), previous_end in zip(cues, ends, strict=False):
            assert previous_end <= start < end <= info["duration_s"] + 0.001, (video, cues)
        with open(base.with_name(base.name + ".segments.csv"), newline="") as handle:
            segments = list(csv.DictReader(handle))
        assert [s["label"] for s in segments] == [s["label"] for s in doc["segments"]]
        for segment in doc["segments"]:
            assert 0 <= segment["start_frame"] < segment["end_frame"] <= info["frames"]


def test_damaged_files_are_failed_rows_and_the_exit_code_is_1(labelled: Labelled) -> None:
    assert labelled.exit_code == 1, labelled.output_text
    rows = summary_rows(labelled.output)
    for video in DAMAGED:
        assert rows[video]["status"] == "failed" and rows[video]["error"], rows[video]
        assert not list((labelled.output / "damaged").glob(Path(video).stem + ".*"))
    assert "index.html" in labelled.output_text and "summary.csv" in labelled.output_text
    shown = "".join(labelled.output_text.split())  # rich wraps long lines
    videos = len(rows)  # the flow's count, reported before the first video, sized the bar
    assert f"labelling{videos}videoswith{MODEL_URI}" in shown and f"{videos}/{videos}" in shown


def test_videos_sharing_a_stem_keep_their_extension(labelled: Labelled) -> None:
    names = sorted(p.name for p in (labelled.output / "twins").iterdir())
    assert names == sorted(
        f"clip.{ext}.{kind}"
        for ext in ("mov", "mp4")
        # OpenCV mp4v (MPEG-4 Part 2): browsers cannot play it, so each gets its preview
        for kind in ("labels.json", "segments.csv", "vtt", "preview.mp4")
    )


def test_synthetic_segments_match_the_ground_truth(labelled: Labelled) -> None:
    from pipeline.labeling.segments import expand_frame_runs
    from pipeline.training.metrics import segment_f1

    preds, trues = [], []
    for video in labelled.held_out:
        stem = Path(video).stem
        doc = json.loads((labelled.output / "synthetic" / f"{stem}.labels.json").read_text())
        truth = (labelled.trained.dataset / "groundTruth" / f"{stem}.txt").read_text().split()
        assert len(truth) == doc["info"]["frames"]
        preds.append(expand_frame_runs(doc["frames"]))
        trues.append(truth)
    f1 = segment_f1(preds, trues, 0.5, background="background")
    assert f1 >= 0.85, f1


def copy_output(labelled: Labelled, tmp_path: Path) -> Path:
    """The first run's outputs (mtimes kept), so each test re-runs on its own copy."""
    out = tmp_path / "out"
    shutil.copytree(labelled.output, out, copy_function=shutil.copy2)
    return out


def relabel(labelled: Labelled, out: Path, *extra: str):
    return invoke(
        str(labelled.input), "--model", MODEL_URI, "--out", str(out),
        "-c", str(labelled.trained.config_file), *extra,
    )  # fmt: skip


def test_a_rerun_skips_every_labelled_video_and_rewrites_nothing(labelled, tmp_path) -> None:
    out = copy_output(labelled, tmp_path)
    before = per_video_files(out)
    result = relabel(labelled, out)
    assert result.exit_code == 1, result.output
    statuses = {v: row["status"] for v, row in summary_rows(out).items()}
    assert {statuses[v] for v in good_videos(labelled)} == {"skipped"}
    assert {statuses[v] for v in DAMAGED} == {"failed"}
    assert per_video_files(out) == before
    summary_mtime = (out / "summary.csv").stat().st_mtime_ns
    assert relabel(labelled, out).exit_code == 1
    assert (out / "summary.csv").stat().st_mtime_ns == summary_mtime  # same content: untouched


def test_an_interrupted_run_is_finished_by_the_next_one(labelled, tmp_path) -> None:
    out = copy_output(labelled, tmp_path)
    first, second = (out / video for video in labelled.held_out[:2])
    # Killed after the CSV of one video, and before anything of another.
    first.with_suffix(".labels.json").unlink()
    first.with_suffix(".vtt").unlink()
    (first.parent / f".{first.stem}.vtt.123.tmp").write_text("partial")
    for path in second.parent.glob(second.stem + ".*"):
        path.unlink()
    result = relabel(labelled, out)
    rows = summary_rows(out)
    assert rows[labelled.held_out[0]]["status"] == "ok", result.output
    assert rows[labelled.held_out[1]]["status"] == "ok"
    assert (
        sum(row["status"] == "skipped" for row in rows.values()) == len(good_videos(labelled)) - 2
    )
    assert first.with_suffix(".labels.json").is_file() and second.with_suffix(".vtt").is_file()


def test_overwrite_relabels_and_min_segment_s_counts_as_a_change(labelled, tmp_path) -> None:
    from pipeline.labeling.segments import expand_frame_runs

    out = copy_output(labelled, tmp_path)
    synthetic = labelled.input / "synthetic"
    result = invoke(
        str(synthetic), "--model", MODEL_URI, "--out", str(out / "synthetic"),
        "-c", str(labelled.trained.config_file), "--overwrite",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in summary_rows(out / "synthetic").values()} == {"ok"}
    result = invoke(
        str(synthetic), "--model", MODEL_URI, "--out", str(out / "synthetic"),
        "-c", str(labelled.trained.config_file), "--set", "label.min_segment_s=1.5",
    )  # fmt: skip
    assert {r["status"] for r in summary_rows(out / "synthetic").values()} == {"ok"}
    for doc_path in (out / "synthetic").glob("*.labels.json"):
        doc = json.loads(doc_path.read_text())
        assert doc["options"] == {"min_segment_s": 1.5}
        runs = doc["frames"]["runs"]
        assert len(expand_frame_runs(doc["frames"])) == doc["info"]["frames"]
        fps = doc["info"]["fps"]
        assert len(runs) == 1 or all((end - start) / fps >= 1.5 - 2 / fps for _, start, end in runs)


def test_a_moved_alias_relabels_with_the_version_it_points_at_now(labelled, tmp_path) -> None:
    """The first run cached version 1 in this process; @candidate then moves to version 2."""
    import mlflow
    import torch
    from mlflow import MlflowClient

    from models.rnn import model_config_dict
    from pipeline.tracking.mlflow import CANDIDATE_ALIAS, load_model, log_model
    from pipeline.tracking.model_io import save_model_dir

    cfg = labelled.trained.cfg
    mlflow.set_tracking_uri(cfg.tracking.uri)
    model = load_model(MODEL_URI)
    with torch.no_grad():
        for parameter in model.module.parameters():
            parameter.add_(1e-3)  # other weights: another fingerprint
    folder = save_model_dir(
        tmp_path / "v2", model.module, model_config_dict(model.module), model.spec,
        model.classes, model.background,
    )  # fmt: skip
    out = copy_output(labelled, tmp_path)
    try:
        with mlflow.start_run():
            assert log_model(folder, MODEL_NAME)[1] == "2"
        result = invoke(
            str(labelled.input / "synthetic"), "--model", MODEL_URI, "--out",
            str(out / "synthetic"), "-c", str(labelled.trained.config_file),
        )  # fmt: skip
    finally:  # the other tests label with version 1
        MlflowClient(cfg.tracking.uri).set_registered_model_alias(MODEL_NAME, CANDIDATE_ALIAS, "1")
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in summary_rows(out / "synthetic").values()} == {"ok"}
    for doc_path in (out / "synthetic").glob("*.labels.json"):
        doc = json.loads(doc_path.read_text())
        assert doc["model"]["version"] == "2" and doc["model"]["uri"] == MODEL_URI


def test_a_clip_model_from_a_local_folder_labels_the_whole_video(labelled, tmp_path) -> None:
    import mlflow

    from flows.label import label_folder
    from models.rnn import build_model
    from pipeline.tracking.mlflow import load_model
    from pipeline.tracking.model_io import save_model_dir

    cfg = labelled.trained.cfg
    mlflow.set_tracking_uri(cfg.tracking.uri)
    spec = load_model(MODEL_URI).spec  # same extractor: the stored features are reused
    classes = ["grow", "shrink", "blink"]
    module = build_model("clip", 512, len(classes), {"hidden": 16, "layers": 1})
    model_config = {"task": "clip", "input_dim": 512, "num_classes": 3,
                    "cfg": {"hidden": 16, "layers": 1}}  # fmt: skip
    folder = save_model_dir(tmp_path / "clip_model", module, model_config, spec, classes, None)
    summary = label_folder(
        str(labelled.input / "synthetic"), str(folder), str(tmp_path / "out"), cfg,
        print_summary=False,
    )  # fmt: skip
    assert summary["ok"] == len(labelled.held_out) and summary["failed"] == 0
    for record in summary["records"]:
        doc = json.loads((tmp_path / "out" / record["outputs"][0]).read_text())
        assert doc["clip"]["label"] == record["label"] in classes
        assert sum(doc["clip"]["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert doc["samples"] is None and doc["frames"] is None
        (segment,) = doc["segments"]
        assert (segment["start_frame"], segment["end_frame"]) == (0, doc["info"]["frames"])
        assert len(parse_vtt((tmp_path / "out" / record["outputs"][2]).read_text())) == 1
        assert doc["model"]["run_id"] is None and doc["model"]["uri"] == str(folder.resolve())


def test_an_unknown_model_is_one_clear_error(labelled: Labelled, tmp_path) -> None:
    result = invoke(
        str(labelled.input / "synthetic"), "--model", "models:/no-such-model@candidate",
        "--out", str(tmp_path), "-c", str(labelled.trained.config_file),
    )  # fmt: skip
    assert result.exit_code == 2 and "no-such-model" in result.output, result.output


def test_labelled_videos_cost_no_task_run(prefect_api, clip_dataset: Path, tmp_path) -> None:
    from flows.label import label_folder
    from tests.conftest import tiny_config
    from tests.helpers_flows import random_model, task_runs

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    videos = sorted(clip_dataset.rglob("*.mp4"))
    for video in videos[:2]:
        shutil.copy(video, folder / video.name)
    cfg = tiny_config(tmp_path, folder, None, "clip")
    model = random_model(cfg, tmp_path / "model")

    def run() -> tuple[dict, int]:
        state = label_folder(
            str(folder), str(model), str(out), cfg, print_summary=False, return_state=True
        )
        return state.result(), len(task_runs(state.state_details.flow_run_id))

    first, _ = run()
    assert first["ok"] == 2
    summary, runs = run()
    assert runs == 0 and (summary["ok"], summary["skipped"]) == (0, 2)
    assert [r["label"] for r in summary["records"]] == [r["label"] for r in first["records"]]
    assert {row["status"] for row in summary_rows(out).values()} == {"skipped"}
    shutil.copy(videos[2], folder / "zz_new.mp4")
    summary, runs = run()
    assert runs == 1 and [r["status"] for r in summary["records"]] == ["skipped"] * 2 + ["ok"]
    assert summary_rows(out)["zz_new.mp4"]["status"] == "ok"


def test_auto_labels_with_the_merge_length_stored_with_the_model(labelled, tmp_path) -> None:
    """The trained model stores its config's number (0.5); `auto` (the default) uses it rather
    than the fallback, and a number given with --set wins (the test above)."""
    import mlflow

    from pipeline.tracking.mlflow import load_model

    mlflow.set_tracking_uri(labelled.trained.cfg.tracking.uri)
    assert load_model(MODEL_URI).options == {"min_segment_s": LABEL_MIN_SEGMENT_S}
    out = tmp_path / "auto"
    result = invoke(
        str(labelled.input / "synthetic"), "--model", MODEL_URI, "--out", str(out),
        "-c", str(labelled.trained.config_file), "--set", "label.min_segment_s=auto",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    docs = [json.loads(p.read_text()) for p in out.glob("*.labels.json")]
    assert docs and all(d["options"] == {"min_segment_s": LABEL_MIN_SEGMENT_S} for d in docs)
    for doc in docs:  # the same segments as the fixture's run, whose config gives 0.5
        stem = Path(doc["video"]).stem
        before = json.loads((labelled.output / "synthetic" / f"{stem}.labels.json").read_text())
        assert doc["segments"] == before["segments"]


def test_truth_puts_each_videos_frame_metrics_on_the_page(labelled, tmp_path) -> None:
    import re

    out = copy_output(labelled, tmp_path)
    # the MS-TCN folder (frame per frame) of the dataset the held-back videos come from
    result = relabel(labelled, out, "--truth", str(labelled.trained.dataset))
    assert result.exit_code == 1, result.output  # the damaged videos, as without truth
    page = (out / "index.html").read_text()
    block = re.search(r'<script type="application/json" id="vidtag-data">(.*?)</script>', page)
    videos = {v["name"]: v for v in json.loads(block.group(1))["videos"]}
    from pipeline.labeling.segments import expand_frame_runs
    from pipeline.training.metrics import frame_metrics

    for video in labelled.held_out:
        stem = Path(video).stem
        doc = json.loads((out / "synthetic" / f"{stem}.labels.json").read_text())
        truth = (labelled.trained.dataset / "groundTruth" / f"{stem}.txt").read_text().split()
        # the same as training's metrics over the video's native frames, frame for frame
        expected = frame_metrics([expand_frame_runs(doc["frames"])], [truth], {"background"})
        entry = videos[video]
        assert entry["metrics"] == {k: round(v, 4) for k, v in expected.items()}, video
        assert entry["truth"] and entry["truth_error"] is None
    assert videos["twins/clip.mp4"]["truth_error"] == "no truth"  # renamed: not in the truth

    bad = tmp_path / "truth.csv"
    bad.write_text("video,start,end,label\nnowhere.mp4,0,1,spin\n")
    result = relabel(labelled, tmp_path / "never", "--truth", str(bad))
    assert result.exit_code == 2 and "truth.csv" in result.output and "nowhere.mp4" in result.output
    assert not (tmp_path / "never").exists()  # stopped before any work


def test_watch_inbox_flow_labels_what_is_in_the_inbox(prefect_api, tmp_path: Path) -> None:
    from flows.label import watch_inbox
    from tests.conftest import tiny_config
    from tests.helpers_video import write_video
    from tests.helpers_watch import resnet18_model_dir

    (tmp_path / "inbox").mkdir()
    write_video(tmp_path / "inbox" / "a.mp4", "mp4v", frames=30)
    cfg = tiny_config(tmp_path, tmp_path / "inbox", None, "frame")
    model = str(resnet18_model_dir(tmp_path / "model"))
    result = watch_inbox(
        str(tmp_path / "inbox"), model, str(tmp_path / "out"), cfg, poll_s=0.05, run_for_s=1.0
    )
    assert (result["ok"], result["failed"]) == (1, 0), result
    assert summary_rows(tmp_path / "out")["a.mp4"]["status"] == "ok"
