"""The label output files: what they hold, written atomically.

Per video, beside its relative path under the output folder (``<base>``, planned by
:mod:`pipeline.labeling.folder`: the relative path without the extension, or with it where two
videos of one folder share a stem):

- ``<base>.labels.json`` (schema ``vidtag.labels/1``, :data:`LABELS_SCHEMA`);
- ``<base>.segments.csv``: ``label,start_s,end_s,start_frame,end_frame,score`` (end exclusive);
- ``<base>.vtt``: one WebVTT cue per segment, text ``label (score)``;
- where a browser cannot play the video (``label.previews``), ``<base>.preview.mp4`` or else
  ``<base>.thumbs.jpg`` (:mod:`pipeline.labeling.preview`), named in labels.json ``preview``.

Per run, in the output folder: ``summary.csv`` (``video,status,label,score,error``) and
``index.html`` (:mod:`pipeline.labeling.page`). The JSON is written last: it marks a finished
video, and a video is ``skipped`` only when all three files exist and the JSON names the same
video content, model and labelling options.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pipeline.fileio import atomic_write_text

if TYPE_CHECKING:
    from pipeline.jobs import VideoRecord
    from pipeline.labeling.segments import VideoLabels

SCHEMA = "vidtag.labels/1"
SEGMENT_COLUMNS = ("label", "start_s", "end_s", "start_frame", "end_frame", "score")
SUMMARY_COLUMNS = ("video", "status", "label", "score", "error")
INFO_KEYS = ("fps", "frames", "duration_s", "width", "height")  # labels.json ``info``
SUMMARY_CSV = "summary.csv"
INDEX_HTML = "index.html"


class OutputPaths(NamedTuple):
    labels_json: Path
    segments_csv: Path
    vtt: Path

    @classmethod
    def at(cls, output: Path, base: str) -> OutputPaths:
        stem = output / base
        return cls(
            stem.with_name(stem.name + ".labels.json"),
            stem.with_name(stem.name + ".segments.csv"),
            stem.with_name(stem.name + ".vtt"),
        )

    def exist(self) -> bool:
        return all(path.is_file() for path in self)


# --- labels.json -------------------------------------------------------------------------------


def labels_document(
    video: str,
    path: Path,
    video_sha256: str,
    labels: VideoLabels,
    model: dict[str, Any],
    options: dict[str, Any],
) -> dict[str, Any]:
    """One video's labels.json, as a dict (see the module doc and :data:`LABELS_SCHEMA`)."""
    return {
        "schema": SCHEMA,
        "video": video,
        "path": str(path),
        "video_sha256": video_sha256,
        "info": {key: getattr(labels.info, key) for key in INFO_KEYS},
        "model": model,
        "options": options,
        "summary": {"label": labels.label, "score": labels.score},
        "clip": labels.clip,
        "segments": labels.segments,
        "samples": labels.samples,
        "frames": labels.frames,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def current_document(
    paths: OutputPaths, video_sha256: str, fingerprint: str, options: dict[str, Any]
) -> dict[str, Any] | None:
    """The existing labels.json when all three files exist for this video, model and options."""
    if not paths.exist():
        return None
    try:
        doc = json.loads(paths.labels_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = (
        isinstance(doc, dict)
        and doc.get("schema") == SCHEMA
        and doc.get("video_sha256") == video_sha256
        and (doc.get("model") or {}).get("fingerprint") == fingerprint
        and doc.get("options") == options
    )
    return doc if same else None


def write_outputs(paths: OutputPaths, doc: dict[str, Any]) -> None:
    """CSV and VTT first, the JSON (the "finished" mark) last; each one atomically."""
    atomic_write_text(paths.segments_csv, segments_csv_text(doc["segments"]))
    atomic_write_text(paths.vtt, vtt_text(doc["segments"]))
    atomic_write_text(paths.labels_json, document_text(doc))


def document_text(doc: dict[str, Any]) -> str:
    """One top-level key per line, one segment per line, long arrays on one line: readable
    and diffable without the tens of thousands of lines ``indent`` gives per-sample arrays."""
    lines = []
    for key, value in doc.items():
        if key == "segments" and value:
            items = ",\n".join(f"  {json.dumps(segment)}" for segment in value)
            lines.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


# --- CSV and WebVTT ----------------------------------------------------------------------------


def segments_csv_text(segments: list[dict[str, Any]]) -> str:
    return _csv_text(SEGMENT_COLUMNS, segments)


def summary_csv_text(records: list[VideoRecord]) -> str:
    rows = [r.row(SUMMARY_COLUMNS) for r in records]
    rows = [{**r, "score": "" if r["score"] is None else f"{r['score']:.4f}"} for r in rows]
    return _csv_text(SUMMARY_COLUMNS, rows)


def _csv_text(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if row.get(k) is None else row[k]) for k in columns} for row in rows)
    return buffer.getvalue()


def vtt_time(seconds: float) -> str:
    """``HH:MM:SS.mmm``, as WebVTT wants it (hours always present)."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def vtt_text(segments: list[dict[str, Any]]) -> str:
    """One cue per segment; a cue never ends before it starts, even after rounding."""
    lines = ["WEBVTT", ""]
    for number, segment in enumerate(segments, start=1):
        start_ms = round(segment["start_s"] * 1000)
        end_ms = max(round(segment["end_s"] * 1000), start_ms + 1)
        label = _vtt_escape(segment["label"])
        lines += [
            str(number),
            f"{vtt_time(start_ms / 1000)} --> {vtt_time(end_ms / 1000)}",
            f"{label} ({segment['score']:.2f})",
            "",
        ]
    return "\n".join(lines)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_if_changed(path: Path, text: str) -> bool:
    """Write atomically unless the file already holds exactly ``text``; True when written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


# --- the documented schema ---------------------------------------------------------------------

_NUMBER = {"type": "number"}
_SEGMENT = {
    "type": "object",
    "required": list(SEGMENT_COLUMNS),
    "properties": {
        "label": {"type": "string"},
        "start_s": {"type": "number", "minimum": 0},
        "end_s": {"type": "number", "minimum": 0},
        "start_frame": {"type": "integer", "minimum": 0},
        "end_frame": {"type": "integer", "minimum": 1},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
LABELS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": SCHEMA,
    "type": "object",
    "required": ["schema", "video", "video_sha256", "info", "model", "clip", "segments", "samples"],
    "properties": {
        "schema": {"const": SCHEMA},
        "video": {"type": "string"},
        "path": {"type": "string"},
        "video_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "info": {
            "type": "object",
            "required": ["fps", "frames", "duration_s", "width", "height"],
            "properties": {
                "fps": _NUMBER,
                "frames": {"type": "integer", "minimum": 1},
                "duration_s": _NUMBER,
                "width": {"type": "integer"},
                "height": {"type": "integer"},
            },
        },
        "model": {
            "type": "object",
            "required": ["uri", "run_id", "task", "classes", "extractor", "fingerprint"],
            "properties": {
                "uri": {"type": "string"},
                "run_id": {"type": ["string", "null"]},
                "version": {"type": ["string", "null"]},
                "task": {"enum": ["clip", "frame"]},
                "classes": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "background": {"type": ["string", "null"]},
                "extractor": {"type": "object", "required": ["key", "backbone", "sample_fps"]},
                "fingerprint": {"type": "string"},
            },
        },
        "options": {"type": "object", "properties": {"min_segment_s": _NUMBER}},
        "summary": {
            "type": "object",
            "required": ["label", "score"],
            "properties": {"label": {"type": "string"}, "score": _NUMBER},
        },
        "clip": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["label", "score", "scores"],
                    "properties": {
                        "label": {"type": "string"},
                        "score": _NUMBER,
                        "scores": {"type": "object", "additionalProperties": _NUMBER},
                    },
                },
            ]
        },
        "segments": {"type": "array", "items": _SEGMENT},
        "samples": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["times_s", "labels", "scores"],
                    "properties": {
                        "times_s": {"type": "array", "items": _NUMBER},
                        "indices": {"type": "array", "items": {"type": "integer"}},
                        "labels": {"type": "array", "items": {"type": "string"}},
                        "scores": {"type": "array", "items": _NUMBER},
                    },
                },
            ]
        },
        "frames": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["count", "runs"],
                    "properties": {
                        "count": {"type": "integer", "minimum": 1},
                        "runs": {
                            "type": "array",
                            "items": {
                                "type": "array",
                                "prefixItems": [
                                    {"type": "string"},
                                    {"type": "integer", "minimum": 0},
                                    {"type": "integer", "minimum": 1},
                                ],
                                "minItems": 3,
                                "maxItems": 3,
                            },
                        },
                    },
                },
            ]
        },
        "preview": {  # what the review page plays (pipeline/labeling/preview.py)
            "type": "object",
            "required": ["policy", "playable", "file", "thumbs", "error"],
            "properties": {
                "policy": {"enum": ["auto", "always", "never"]},
                "playable": {"type": "boolean"},
                "file": {"type": ["string", "null"]},
                "thumbs": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["file", "times_s"],
                            "properties": {
                                "file": {"type": "string"},
                                "times_s": {"type": "array", "items": _NUMBER},
                            },
                        },
                    ]
                },
                "error": {"type": ["string", "null"]},
            },
        },
        "created_at": {"type": "string"},
    },
}
