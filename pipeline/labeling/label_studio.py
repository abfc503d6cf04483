"""A labelled folder -> Label Studio video tasks with vidtag's labels as predictions.

``export_label_studio(labelled, out)`` reads every ``*.labels.json`` (schema
``vidtag.labels/1``) under ``labelled`` and writes to ``out``:

- ``tasks.json``: one task per video, ``data`` = ``{video: URL, fps, frames, duration_s,
  vidtag_video, video_sha256}`` and one prediction whose ``TimelineLabels`` regions are the
  video's segments in Label Studio's 1-based, end-inclusive frame numbering, computed from the
  segments' real start and end times (:mod:`pipeline.data.label_studio`);
- ``label_config.xml``: the labeling interface to paste into the project (``<Video
  frameRate="$fps">`` so that each task is numbered at its own frame rate, and one ``<Label>``
  per class in vidtag's colours).

A video's URL is ``url_prefix`` + its path relative to ``document_root``: by default Label
Studio's local-files URL (``/data/local-files/?d=``), for a server started with
``LOCAL_FILES_SERVING_ENABLED=true`` and ``LOCAL_FILES_DOCUMENT_ROOT`` = ``document_root``.
Read the corrected project's JSON export back with ``data.annotations: export.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from pipeline.colours import class_colours
from pipeline.data.label_studio import REGION_TYPE, ls_range
from pipeline.errors import UserError
from pipeline.fileio import atomic_write_text

SCHEMA = "vidtag.labels/1"
LOCAL_FILES_URL = "/data/local-files/?d="
FROM_NAME, TO_NAME = "labels", "video"
TASKS_FILE, CONFIG_FILE = "tasks.json", "label_config.xml"


class ExportError(UserError):
    """A labelled folder that cannot be exported; the message names the file."""


@dataclass
class ExportSummary:
    tasks: int = 0
    regions: int = 0
    classes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def read_documents(labelled: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``*.labels.json`` under ``labelled`` (sorted), checked for vidtag's schema."""
    if not labelled.is_dir():
        raise ExportError(f"{labelled}: not a folder of labels (the --out of `vidtag label`)")
    docs = []
    for path in sorted(labelled.rglob("*.labels.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ExportError(f"{path}: cannot read labels: {exc}") from None
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise ExportError(f"{path}: not a {SCHEMA} document")
        docs.append((path, doc))
    if not docs:
        raise ExportError(f"{labelled}: no *.labels.json files (label the videos first)")
    return docs


def input_root(doc: dict[str, Any]) -> Path:
    """The folder that was labelled: the video's path with its relative key taken off."""
    path, key = Path(doc["path"]).resolve(), PurePosixPath(doc["video"])
    return Path(*path.parts[: len(path.parts) - len(key.parts)])


def class_list(docs: Iterable[dict[str, Any]]) -> tuple[list[str], str | None]:
    """The models' classes in first-seen order, and the background label (not a region)."""
    classes: list[str] = []
    background = None
    for doc in docs:
        model = doc.get("model") or {}
        background = background or model.get("background")
        classes += [c for c in model.get("classes", []) if c not in classes]
    return classes, background


def label_config(classes: list[str], background: str | None) -> str:
    """The Label Studio labeling interface for these tasks."""
    colours = class_colours(classes, background)
    labels = "\n".join(
        f"    <Label value={quoteattr(name)} background={quoteattr(colours[name])}/>"
        for name in classes
        if name != background
    )
    return (
        "<View>\n"
        f'  <Video name="{TO_NAME}" value="$video" frameRate="$fps" timelineHeight="120"/>\n'
        f'  <TimelineLabels name="{FROM_NAME}" toName="{TO_NAME}">\n'
        f"{labels}\n"
        "  </TimelineLabels>\n"
        "</View>\n"
    )


def regions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's segments as ``TimelineLabels`` results (from their real times)."""
    info = doc["info"]
    fps, frames = float(info["fps"]), int(info["frames"])
    results = []
    for index, segment in enumerate(doc["segments"]):
        start, end = ls_range(segment["start_s"], segment["end_s"], fps, frames)
        result = {
            "id": f"vidtag{index}",
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": REGION_TYPE,
            "origin": "prediction",
            "value": {"ranges": [{"start": start, "end": end}], REGION_TYPE: [segment["label"]]},
        }
        if segment.get("score") is not None:
            result["score"] = segment["score"]
        results.append(result)
    return results


def task(doc: dict[str, Any], document_root: Path, url_prefix: str) -> dict[str, Any]:
    """One Label Studio task with vidtag's labels as its prediction."""
    video = Path(doc["path"]).resolve()
    try:
        relative = video.relative_to(document_root).as_posix()
    except ValueError:
        raise ExportError(
            f"{video}: not under the document root {document_root} (set --document-root)"
        ) from None
    info, model = doc["info"], doc.get("model") or {}
    version = model.get("version") or model.get("run_id") or ""
    return {
        "data": {
            "video": url_prefix + quote(relative),
            "fps": info["fps"],
            "frames": info["frames"],
            "duration_s": info["duration_s"],
            "vidtag_video": doc["video"],
            "video_sha256": doc["video_sha256"],
        },
        "predictions": [
            {
                "model_version": f"vidtag {model.get('uri', '')} {version}".strip(),
                "score": (doc.get("summary") or {}).get("score"),
                "result": regions(doc),
            }
        ],
    }


def export_label_studio(
    labelled: Path,
    out: Path,
    document_root: Path | None = None,
    url_prefix: str = LOCAL_FILES_URL,
) -> ExportSummary:
    """Write ``tasks.json`` and ``label_config.xml`` for every labelled video to ``out``."""
    docs = [doc for _, doc in read_documents(labelled)]
    root = (document_root or input_root(docs[0])).resolve()
    tasks = [task(doc, root, url_prefix) for doc in docs]
    classes, background = class_list(docs)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / TASKS_FILE, json.dumps(tasks, indent=1) + "\n")
    atomic_write_text(out / CONFIG_FILE, label_config(classes, background))
    return ExportSummary(
        tasks=len(tasks),
        regions=sum(len(t["predictions"][0]["result"]) for t in tasks),
        classes=[c for c in classes if c != background],
        files=[out / TASKS_FILE, out / CONFIG_FILE],
    )


__all__ = ["ExportError", "ExportSummary", "export_label_studio", "label_config", "task"]
