"""Labelling without videos: frames -> segments, output files, skip rule, schema, review page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.jobs import VideoRecord
from pipeline.labeling.folder import output_bases
from pipeline.labeling.outputs import (
    LABELS_SCHEMA,
    OutputPaths,
    current_document,
    labels_document,
    segments_csv_text,
    summary_csv_text,
    vtt_text,
    vtt_time,
    write_if_changed,
    write_outputs,
)
from pipeline.labeling.page import render_index
from pipeline.labeling.segments import (
    Run,
    SegmentBuilder,
    expand_frame_runs,
    frame_bounds,
    label_runs,
    labels_from_clip,
    labels_from_frames,
    merge_short_runs,
    steps_of_frames,
)
from pipeline.video.decode import VideoInfo

CLASSES = ["background", "stir", "pour"]
INFO = VideoInfo("/videos/sub/a.mp4", 20, 10.0, 2.0, 64, 48, 0, "h264", "opencv")


def one_hot(labels: list[int], classes: int = 3, confidence: float = 0.8) -> np.ndarray:
    """(T, C) probabilities with ``confidence`` on each step's label."""
    probs = np.full((len(labels), classes), (1 - confidence) / (classes - 1))
    probs[np.arange(len(labels)), labels] = confidence
    return probs


# --- sampled steps -> native frames -> runs ----------------------------------------------------


@pytest.mark.parametrize(
    ("indices", "frames", "expected"),
    [
        ([0, 3, 6], 8, [0, 0, 0, 1, 1, 1, 2, 2]),
        ([2, 5], 7, [0, 0, 0, 0, 0, 1, 1]),  # frames before the first sample take the first
        ([0], 4, [0, 0, 0, 0]),
        ([0, 1, 2], 3, [0, 1, 2]),  # every frame sampled
    ],
)
def test_each_native_frame_takes_the_latest_sample_at_or_before_it(indices, frames, expected):
    assert steps_of_frames(np.array(indices), frames).tolist() == expected


def test_frame_bounds_use_real_timestamps_and_end_at_the_duration() -> None:
    times = np.array([0.0, 0.1, 0.3, 0.35])  # variable frame rate
    assert frame_bounds(times, 4, 10.0, 0.45).tolist() == [0.0, 0.1, 0.3, 0.35, 0.45]
    assert frame_bounds(None, 3, 10.0, 0.3) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    # A duration that does not reach past the last frame: one frame period after it.
    assert frame_bounds(times, 4, 10.0, 0.2)[-1] == pytest.approx(0.45)


def test_label_runs_are_half_open_and_cover_every_frame() -> None:
    runs = label_runs(np.array([0, 0, 1, 1, 1, 0, 2]))
    assert runs == [Run(0, 0, 2), Run(1, 2, 5), Run(0, 5, 6), Run(2, 6, 7)]
    assert label_runs(np.array([], dtype=int)) == []


@pytest.mark.parametrize(
    ("frames", "min_s", "uniform_over", "expected"),
    [
        # A 0.1 s blip inside one label disappears.
        ("1" * 10 + "2" + "1" * 9, 0.5, None, "1" * 20),
        # Nothing shorter than the minimum, or no minimum: unchanged.
        ("1" * 10 + "2" * 10, 0.5, None, "1" * 10 + "2" * 10),
        ("1" * 10 + "2" + "0" * 9, 0.0, None, "1" * 10 + "2" + "0" * 9),
        # When the model scores both neighbours' labels alike over the short run, the longer
        # neighbour takes it (left here, right below).
        ("1" * 12 + "00" + "2" * 6, 0.5, None, "1" * 14 + "2" * 6),
        ("1" * 6 + "00" + "2" * 12, 0.5, (6, 8), "1" * 6 + "2" * 14),
        # Everything short: one run is left.
        ("1122", 1.0, None, "2222"),
    ],
)
def test_short_runs_merge_into_a_neighbour(frames, min_s, uniform_over, expected) -> None:
    labels = [int(c) for c in frames]
    probs = one_hot(labels)
    if uniform_over:
        probs[slice(*uniform_over)] = 1 / 3
    bounds = np.arange(len(labels) + 1) / 10.0
    merged = merge_short_runs(label_runs(np.array(labels)), bounds, min_s, probs)
    assert "".join(str(r.label) * (r.end - r.start) for r in merged) == expected


def test_a_short_run_goes_to_the_label_the_model_prefers_over_it() -> None:
    labels = [1] * 12 + [0] * 2 + [2] * 6
    probs = one_hot(labels)
    probs[12:14] = [0.3, 0.1, 0.6]  # the model half-saw label 2 there
    merged = merge_short_runs(label_runs(np.array(labels)), np.arange(21) / 10.0, 0.5, probs)
    assert merged == [Run(1, 0, 12), Run(2, 12, 20)]


# --- one video's labels ------------------------------------------------------------------------


def frame_labels(min_segment_s: float = 0.0, times: np.ndarray | None = None):
    # 10 samples at 5 fps of a 10 fps video: native frames 0, 2, ..., 18.
    steps = [0, 0, 1, 1, 1, 0, 2, 2, 0, 1]
    indices = np.arange(0, 20, 2)
    return labels_from_frames(
        one_hot(steps), indices, indices / 10.0, times, CLASSES, "background", INFO, min_segment_s
    )


def test_frame_labels_give_segments_without_background_end_exclusive() -> None:
    labels = frame_labels()
    assert [(s["label"], s["start_frame"], s["end_frame"]) for s in labels.segments] == [
        ("stir", 4, 10),
        ("pour", 12, 16),
        ("stir", 18, 20),
    ]
    first, _, last = labels.segments
    assert (first["start_s"], first["end_s"]) == (0.4, 1.0)
    assert last["end_s"] == INFO.duration_s  # the last frame ends with the video
    assert all(s["score"] == pytest.approx(0.8) for s in labels.segments)
    assert (labels.label, labels.score) == ("stir", pytest.approx(0.8))  # 8 frames vs pour's 4


def test_frame_labels_cover_exactly_the_native_frame_count() -> None:
    labels = frame_labels()
    per_frame = expand_frame_runs(labels.frames)
    assert len(per_frame) == INFO.frames
    assert per_frame[:6] == ["background"] * 4 + ["stir"] * 2
    assert labels.samples["labels"][:3] == ["background", "background", "stir"]
    assert labels.samples["indices"] == list(range(0, 20, 2))
    with pytest.raises(ValueError, match="cover"):
        expand_frame_runs({"count": 21, "runs": labels.frames["runs"]})


def test_segment_times_follow_real_timestamps() -> None:
    times = np.arange(20) / 10.0
    times[10:] += 0.05  # a pause in the middle of the video
    labels = frame_labels(times=times)
    assert [s["start_s"] for s in labels.segments] == [0.4, 1.25, 1.85]


def test_min_segment_s_removes_every_short_run() -> None:
    labels = frame_labels(min_segment_s=0.5)
    runs = labels.frames["runs"]
    assert all((end - start) / INFO.fps >= 0.5 for _, start, end in runs), runs
    assert len(expand_frame_runs(labels.frames)) == INFO.frames


def test_clip_labels_give_label_score_all_scores_and_one_whole_video_segment() -> None:
    labels = labels_from_clip(np.array([0.1, 0.7, 0.2]), CLASSES, INFO)
    assert labels.clip == {
        "label": "stir",
        "score": 0.7,
        "scores": {"background": 0.1, "stir": 0.7, "pour": 0.2},
    }
    assert labels.segments == [
        {
            "label": "stir",
            "start_s": 0.0,
            "end_s": 2.0,
            "start_frame": 0,
            "end_frame": 20,
            "score": 0.7,
        }
    ]
    assert labels.samples is None and labels.frames is None


def test_the_builder_holds_what_labels_need_and_the_task_picks_clip_or_frames() -> None:
    from dataclasses import replace

    from pipeline.training.task import task_named

    indices = np.arange(0, 20, 2)
    builder = SegmentBuilder(CLASSES, INFO, indices, indices / 10.0, background="background")
    probs = one_hot([0, 0, 1, 1, 1, 0, 2, 2, 0, 1])  # (T, C)
    frames = task_named("frame").to_labels(probs, builder)
    assert frames == replace(frame_labels(), sampled=len(indices))
    clip = task_named("clip").to_labels(probs[3], builder)  # (C,)
    assert clip == replace(labels_from_clip(probs[3], CLASSES, INFO), sampled=len(indices))
    assert (clip.task, frames.task) == ("clip", "frame")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (INFO.to_dict(), INFO),
        ({**INFO.to_dict(), "decoder_extra": 1}, INFO),  # a newer header's extra key
        ({k: getattr(INFO, k) for k in ("fps", "frames", "duration_s", "width", "height")},
         VideoInfo("", 20, 10.0, 2.0, 64, 48, 0, "unknown", "unknown")),  # an older header
    ],
)  # fmt: skip
def test_video_info_comes_back_typed_from_a_store_header(header, expected) -> None:
    assert VideoInfo.from_dict(json.loads(json.dumps(header))) == expected


# --- output files ------------------------------------------------------------------------------


def test_output_bases_mirror_folders_and_keep_the_extension_on_shared_stems(tmp_path) -> None:
    names = ["a.mp4", "a.AVI", "b.mp4", "sub/a.mp4", "sub/c.mkv", "sub/C.mov"]
    videos = [tmp_path / name for name in names]
    bases = output_bases(videos, tmp_path)
    assert [bases[v] for v in videos] == [
        "a.mp4",
        "a.AVI",
        "b",
        "sub/a",
        "sub/c.mkv",
        "sub/C.mov",
    ]
    paths = OutputPaths.at(tmp_path / "out", "sub/a.mp4")
    assert [p.name for p in paths] == ["a.mp4.labels.json", "a.mp4.segments.csv", "a.mp4.vtt"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "00:00:00.000"), (1.2345, "00:00:01.234"), (61.0005, "00:01:01.000"),
     (3661.5, "01:01:01.500"), (-0.001, "00:00:00.000")],
)  # fmt: skip
def test_vtt_time(seconds: float, text: str) -> None:
    assert vtt_time(seconds) == text


CUE_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$")


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue; asserts the WebVTT header."""
    lines = text.splitlines()
    assert lines[0] == "WEBVTT"
    cues = []
    for number, line in enumerate(lines):
        match = CUE_TIME.match(line)
        if match:
            parts = [int(p) for p in match.groups()]
            start = parts[0] * 3600 + parts[1] * 60 + parts[2] + parts[3] / 1000
            end = parts[4] * 3600 + parts[5] * 60 + parts[6] + parts[7] / 1000
            cues.append((start, end, lines[number + 1]))
    return cues


def test_vtt_has_one_cue_per_segment_with_label_and_score() -> None:
    segments = frame_labels().segments + [
        {"label": "a<b>&c", "start_s": 5.0, "end_s": 5.0, "score": 0.5}
    ]
    cues = parse_vtt(vtt_text(segments))
    assert cues[:2] == [(0.4, 1.0, "stir (0.80)"), (1.2, 1.6, "pour (0.80)")]
    assert cues[-1] == (5.0, 5.001, "a&lt;b&gt;&amp;c (0.50)")  # never empty, escaped
    assert vtt_text([]).startswith("WEBVTT\n")


def test_segments_and_summary_csv(tmp_path) -> None:
    text = segments_csv_text(frame_labels().segments)
    assert text.splitlines()[:2] == [
        "label,start_s,end_s,start_frame,end_frame,score",
        "stir,0.4,1.0,4,10,0.8",
    ]
    records = [
        VideoRecord("a.mp4", "ok", label="stir", score=0.81234),
        VideoRecord("b,c.mp4", "failed", error="not a video"),
    ]
    assert summary_csv_text(records).splitlines() == [
        "video,status,label,score,error",
        "a.mp4,ok,stir,0.8123,",
        '"b,c.mp4",failed,,,not a video',
    ]


MODEL = {
    "uri": "models:/m@candidate",
    "run_id": "abc",
    "version": "1",
    "task": "frame",
    "classes": CLASSES,
    "background": "background",
    "extractor": {"key": "k" * 20, "backbone": "resnet18", "sample_fps": 5.0},
    "fingerprint": "f" * 64,
}


def document(labels=None, fingerprint: str = "f" * 64) -> dict:
    return labels_document(
        "sub/a.mp4", Path("/videos/sub/a.mp4"), "0" * 64, labels or frame_labels(),
        {**MODEL, "fingerprint": fingerprint}, {"min_segment_s": 0.0},
    )  # fmt: skip


def test_labels_json_info_keeps_exactly_its_five_fields() -> None:
    info = document()["info"]
    assert info == {"fps": 10.0, "frames": 20, "duration_s": 2.0, "width": 64, "height": 48}
    assert list(info) == ["fps", "frames", "duration_s", "width", "height"]


def test_documents_validate_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    clip_model = {**MODEL, "task": "clip"}
    clip_doc = document(labels_from_clip(np.array([0.1, 0.7, 0.2]), CLASSES, INFO))
    clip_doc["model"] = clip_model
    for doc in (document(), clip_doc):
        jsonschema.validate(json.loads(json.dumps(doc)), LABELS_SCHEMA)
    broken = document()
    broken["segments"][0].pop("end_frame")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, LABELS_SCHEMA)


def test_outputs_are_current_only_for_the_same_video_model_and_options(tmp_path) -> None:
    paths = OutputPaths.at(tmp_path, "sub/a")
    doc = document()
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 0.0}) is None
    write_outputs(paths, doc)
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 0.0}) == doc
    assert current_document(paths, "1" * 64, "f" * 64, {"min_segment_s": 0.0}) is None
    assert current_document(paths, "0" * 64, "e" * 64, {"min_segment_s": 0.0}) is None
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 1.0}) is None
    paths.vtt.unlink()  # a run killed between two files
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 0.0}) is None
    paths.labels_json.write_text("{not json")
    assert current_document(paths, "0" * 64, "f" * 64, {"min_segment_s": 0.0}) is None
    assert not list(tmp_path.rglob("*.tmp"))


def test_write_if_changed_leaves_identical_files_alone(tmp_path) -> None:
    path = tmp_path / "summary.csv"
    assert write_if_changed(path, "a\n")
    before = path.stat().st_mtime_ns
    assert not write_if_changed(path, "a\n")
    assert path.stat().st_mtime_ns == before
    assert write_if_changed(path, "b\n") and path.read_text() == "b\n"


# --- review page -------------------------------------------------------------------------------


def test_review_page_is_self_contained_with_one_row_per_video() -> None:
    doc = document()
    records = [
        VideoRecord("sub/a.mp4", "ok", path="/videos/sub/a.mp4", label="stir", score=0.8,
                    outputs=["sub/a.labels.json", "sub/a.segments.csv", "sub/a.vtt"]),
        VideoRecord("<script>alert(1)</script>.mp4", "failed", error="bad & broken"),
    ]  # fmt: skip
    page = render_index(records, {"sub/a.mp4": doc}, MODEL)
    assert page.count('class="video-row"') == 2
    assert "<script>" not in page and "bad &amp; broken" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # no network, no external assets
    assert page.count('<div style="left:') == len(doc["segments"])
    for name in CLASSES:
        assert f"</i>{name}" in page  # the legend
    assert 'href="sub/a.vtt"' in page and 'href="file:///videos/sub/a.mp4"' in page


def test_review_page_links_are_url_encoded_and_the_names_shown_as_they_are() -> None:
    doc = document()
    records = [
        VideoRecord(name, "ok", path=f"/videos/{name}", label="stir", score=0.8,
                    outputs=[f"{stem}.labels.json", f"{stem}.segments.csv", f"{stem}.vtt"])
        for name, stem in (("take#2.mp4", "take#2"), ("50%.mp4", "50%"), ("a&b c.mp4", "a&b c"))
    ]  # fmt: skip
    page = render_index(records, {r.video: doc for r in records}, MODEL)
    for link in ("take%232.labels.json", "50%25.vtt", "a%26b%20c.segments.csv"):
        assert f'href="{link}"' in page, page
    for link in ("file:///videos/take%232.mp4", "file:///videos/50%25.mp4"):
        assert f'href="{link}"' in page
    assert 'href="take#2' not in page and 'href="50%.' not in page
    assert '<td class="video">take#2.mp4</td>' in page and ">50%.mp4<" in page
    assert ">a&amp;b c.mp4<" in page


# --- models ------------------------------------------------------------------------------------


def _random_model(task: str = "clip", seed: int = 0):
    import torch

    from models.rnn import build_model
    from pipeline.features.extractor import ExtractorSpec
    from pipeline.tracking.model_io import TrainedModel

    torch.manual_seed(seed)
    module = build_model(task, 8, 3, {"hidden": 8, "layers": 1}).eval()
    spec = ExtractorSpec("resnet18", "none:seed0", 64, 5.0, None, "fp32", "2")
    return TrainedModel(module, task, CLASSES, spec, "background")


def test_model_fingerprint_follows_the_weights() -> None:
    from pipeline.labeling.predict import model_fingerprint

    assert model_fingerprint(_random_model()) == model_fingerprint(_random_model())
    assert model_fingerprint(_random_model()) != model_fingerprint(_random_model(seed=1))


def test_predict_table_turns_a_missing_video_into_a_failed_row(tmp_path) -> None:
    import pandas as pd

    from pipeline.labeling.predict import predict_table

    table = predict_table(_random_model("frame"), pd.DataFrame({"video": [tmp_path / "x.mp4"]}), {})
    assert list(table.columns) == ["video", "status", "label", "score", "error", "segments"]
    assert table.loc[0, "status"] == "failed" and "x.mp4" in table.loc[0, "error"]


def test_a_model_from_another_decoder_version_is_refused() -> None:
    from dataclasses import replace

    from pipeline.errors import UserError
    from pipeline.labeling.predict import check_spec

    spec = _random_model().spec
    check_spec(spec)
    with pytest.raises(UserError, match="decoder version"):
        check_spec(replace(spec, decoder="0"))


def test_labels_json_text_is_valid_json_with_one_segment_per_line(tmp_path) -> None:
    from pipeline.labeling.outputs import document_text

    doc = document()
    text = document_text(doc)
    assert json.loads(text) == json.loads(json.dumps(doc))
    assert len(text.splitlines()) == len(doc) + len(doc["segments"]) + 3
    assert document_text({**doc, "segments": []}).count("\n") == len(doc) + 2


def _register(folder: Path, model, name: str) -> str:
    """Log ``model`` as a run's pyfunc, register it under ``name``; @candidate moves to it."""
    import mlflow

    from models.rnn import model_config_dict
    from pipeline.tracking.mlflow import log_model
    from pipeline.tracking.model_io import save_model_dir

    config = model_config_dict(model.module)
    save_model_dir(folder, model.module, config, model.spec, model.classes, model.background)
    with mlflow.start_run():
        return log_model(folder, name)[1]


@pytest.fixture
def registry(tmp_path):
    """A SQLite MLflow store in ``tmp_path`` (the previous tracking URI restored after)."""
    import mlflow

    from pipeline.tracking.mlflow import ensure_experiment

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    ensure_experiment(uri, "tests")
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.mark.slow
def test_an_alias_loads_the_version_it_points_at_now(registry, tmp_path) -> None:
    from pipeline.labeling.predict import get_model

    uri = "models:/label-cache@candidate"
    assert _register(tmp_path / "v1", _random_model(), "label-cache") == "1"
    first = get_model(uri, registry)
    assert (first.version, first.uri) == ("1", uri)
    assert _register(tmp_path / "v2", _random_model(seed=1), "label-cache") == "2"
    second = get_model(uri, registry)  # the alias moved: not the cached version 1
    assert (second.version, second.uri) == ("2", uri) and second.run_id != first.run_id
    assert second.fingerprint != first.fingerprint  # so version 1's outputs are not current
    assert second.describe()["version"] == "2"
    pinned = get_model("models:/label-cache/1", registry)
    assert pinned.model is first.model and pinned.uri == "models:/label-cache/1"  # cached
    assert get_model("models:/label-cache/latest", registry).model is second.model


@pytest.mark.slow
def test_an_alias_that_names_nothing_is_a_clear_error(registry) -> None:
    from pipeline.labeling.predict import get_model
    from pipeline.tracking.mlflow import TrackingError

    with pytest.raises(TrackingError, match="models:/no-such-model@candidate"):
        get_model("models:/no-such-model@candidate", registry)


PREDICT_PATH = (
    "pipeline.labeling.pyfunc",
    "pipeline.labeling.predict",
    "pipeline.labeling.segments",
    "pipeline.tracking.registry",
    "pipeline.training.task",
    "pipeline.features.extract",
    "models.rnn",
)
# Imported on the predict path but not the model's own requirement: mlflow requires pandas;
# decord is optional (`decode.backend: auto` decodes with OpenCV).
NOT_REQUIRED = {"pandas", "decord"}


def _imported_names(module_names: list[str]) -> set[str]:
    """Top-level names every ``import`` of these modules' sources names (function-level too)."""
    import ast
    import importlib

    names = set()
    for module_name in module_names:
        source = Path(importlib.import_module(module_name).__file__).read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.slow
def test_the_pyfunc_requires_every_distribution_its_predict_path_imports() -> None:
    import subprocess
    import sys
    from importlib.metadata import packages_distributions

    from pipeline.tracking.mlflow import _requirements

    script = (
        "import importlib, sys\n"
        f"for name in {PREDICT_PATH!r}: importlib.import_module(name)\n"
        "print(' '.join(n for n in sys.modules if n.split('.')[0] in ('pipeline', 'models')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=180
    ).stdout.split()
    required = {re.split(r"[=<>!~ ;\[]", pin)[0].lower() for pin in _requirements()}
    assert "opencv-python-headless" in required
    distributions = packages_distributions()  # import name -> the distributions that hold it
    imported = _imported_names(loaded) - set(sys.stdlib_module_names) - {"pipeline", "models"}
    missing = {
        name
        for name in imported
        if not {d.lower() for d in distributions.get(name, [name])} & required
    }
    assert missing <= NOT_REQUIRED, missing - NOT_REQUIRED
