"""``index.html``: the self-contained review page of one labelling run.

One HTML file: inline CSS and script, the videos' data as one inline JSON block, no network and
no external assets; every link (video, preview, track, outputs) is relative to the page, so it
opens from disk (``file://``) or from any web server, and keeps working when the folder moves.

Per video (``article.video-row``): its name, status, label and score, the truth's frame
metrics when there is truth, and a timeline with a time axis: a truth lane (with truth), the
predicted segments coloured by label (``.seg``), a per-sample confidence strip drawn from
labels.json ``samples``, and a playhead. Beside it, the segments as a readable list (label,
start–end, frames, score), or for a clip model its top classes with their scores. Selecting a
video (click, or ``j``/``k``, ``↓``/``↑``) opens an HTML5 player of the video or of its
browser-playable preview with its WebVTT track; clicking a segment, a list row or a point of
the strip seeks the player there. Only the selected video has a ``<video>`` element and only
rows scrolled into view are drawn, so pages of hundreds of videos stay fast. Filters: status,
label, name; sort: order of the run, score (least sure first), name. Where the browser can play
neither the video nor a preview, the thumbnail strip labelling wrote is shown instead.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pipeline.colours import PALETTE  # the MLflow figures' colours too
from pipeline.jobs import plural

if TYPE_CHECKING:
    from pipeline.data.annotations import Annotations
    from pipeline.jobs import VideoRecord

BACKGROUND_COLOUR = "#e4e4e7"
# Sample scores and labels travel as one character each: 64 levels are finer than a pixel of
# the strip, and 500 videos of a few hundred samples stay well under a megabyte.
CODE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TOP_CLASSES = 5


def asset(name: str) -> str:
    """The page's stylesheet or script (``review_page.css``/``.js`` beside this module)."""
    from importlib.resources import files

    return files("pipeline.labeling").joinpath(name).read_text(encoding="utf-8")


def colours(classes: list[str], background: str | None) -> dict[str, str]:
    """Class -> colour: by class position in the model's class list, background light grey."""
    shown = [name for name in classes if name != background]
    mapping = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(shown)}
    if background is not None:
        mapping[background] = BACKGROUND_COLOUR
    return mapping


def page_data(
    records: list[VideoRecord],
    docs: dict[str, dict[str, Any]],
    model: dict[str, Any],
    truth: dict[str, dict[str, Any]] | None = None,
    output: Path | None = None,
) -> dict[str, Any]:
    """What the page's script draws: classes, colours and one compact entry per video.

    ``docs``: video -> labels.json; ``truth``: video -> {segments: [[label, start_s, end_s]],
    metrics: {...}} (:mod:`pipeline.labeling.truth`); ``output``: the page's folder, to link
    the source videos relative to it.
    """
    classes = list(model.get("classes", []))
    for doc in docs.values():  # a skipped video may come from an older model's class list
        for name in (doc.get("model") or {}).get("classes", []):
            if name not in classes:
                classes.append(name)
    for entry in (truth or {}).values():  # truth may name classes the model does not know
        for name, _, _ in entry.get("segments", []):
            if name not in classes:
                classes.append(name)
    palette = colours(classes, model.get("background"))
    index = {name: i for i, name in enumerate(classes)}
    videos = [
        _video(r, docs.get(r.video), (truth or {}).get(r.video), index, output) for r in records
    ]
    return {
        "classes": classes,
        "colours": [palette[name] for name in classes],
        "background": index.get(model.get("background"), -1),
        "task": model.get("task"),
        "truth": truth is not None,
        "videos": videos,
    }


def _video(
    record: VideoRecord,
    doc: dict[str, Any] | None,
    truth: dict[str, Any] | None,
    index: dict[str, int],
    output: Path | None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": record.video, "status": record.status}
    if record.status == "failed" or doc is None:
        entry["error"] = record.error or "no labels"
        return entry
    info = doc["info"]
    entry.update(
        label=record.label, score=_r(record.score or 0.0), duration=_r(info["duration_s"]),
        fps=_r(info["fps"]), frames=info["frames"],
        files={_kind(path): _href(path) for path in record.outputs},
        segments=[
            [index[s["label"]], _r(s["start_s"]), _r(s["end_s"]), s["start_frame"],
             s["end_frame"], _r(s["score"])]
            for s in doc["segments"]
        ],
    )  # fmt: skip
    entry.update(_media(record, doc.get("preview"), output))
    if doc.get("samples"):
        entry["samples"] = _samples(doc["samples"], index)
    if doc.get("clip"):
        scores = sorted(doc["clip"]["scores"].items(), key=lambda item: -item[1])
        entry["top"] = [[index[name], _r(score)] for name, score in scores[:TOP_CLASSES]]
    if truth is not None:
        entry["truth"] = [[index[name], _r(a), _r(b)] for name, a, b in truth.get("segments", [])]
        entry["metrics"] = truth.get("metrics")
        entry["truth_error"] = truth.get("error")
    return entry


def _media(record: VideoRecord, preview: dict[str, Any] | None, output: Path | None):
    """``src`` (what the player plays: the preview, else the playable source), ``source``
    (the video itself, relative), ``thumbs`` and ``note`` (why nothing plays)."""
    media: dict[str, Any] = {}
    source = _video_href(record.path, output)
    if source:
        media["source"] = source
    folder = Path(record.base or "").parent.as_posix()
    if preview and preview.get("file"):
        media["src"] = _href(_join(folder, preview["file"]))
        media["preview"] = True
    elif source and (preview is None or preview.get("playable")):
        media["src"] = source
    if preview and preview.get("thumbs"):
        media["thumbs"] = _href(_join(folder, preview["thumbs"]["file"]))
        media["thumb_times"] = preview["thumbs"]["times_s"]
    if "src" not in media:
        reason = (preview or {}).get("error") or (
            "previews are off (label.previews: never)" if (preview or {}).get("policy") == "never"
            else "no preview")  # fmt: skip
        media["note"] = f"the browser cannot play this video: {reason}"
    return media


def _samples(samples: dict[str, Any], index: dict[str, int]) -> dict[str, Any]:
    times = [float(t) for t in samples["times_s"]]
    out: dict[str, Any] = {
        "scores": "".join(CODE[min(63, max(0, round(float(s) * 63)))] for s in samples["scores"])
    }
    if len(index) <= len(CODE):
        out["labels"] = "".join(CODE[index[name]] for name in samples["labels"])
    if len(times) > 1:
        step = (times[-1] - times[0]) / (len(times) - 1)
        if all(abs(t - (times[0] + i * step)) < 5e-4 for i, t in enumerate(times)):
            out.update(start=_r(times[0]), step=round(step, 6), count=len(times))
            return out
    out["times"] = [_r(t) for t in times]
    return out


def _r(value: float) -> float:
    return round(float(value), 3)


def _join(folder: str, name: str) -> str:
    return name if folder in ("", ".") else f"{folder}/{name}"


def _href(relative_path: str) -> str:
    """A relative link: URL-quoted (``#``, ``%``, ``?``, spaces; the page escapes it)."""
    return quote(relative_path)


def _video_href(path: str | None, output: Path | None) -> str | None:
    """The video file relative to the page's folder (``../inbox/a.mp4``)."""
    if not path:
        return None
    if output is None:
        return quote(Path(path).name)
    try:
        return quote(Path(os.path.relpath(Path(path).resolve(), output.resolve())).as_posix())
    except ValueError:  # another drive (Windows): no relative path exists
        return Path(path).resolve().as_uri()


def _kind(path: str) -> str:
    for suffix, kind in ((".labels.json", "json"), (".segments.csv", "csv"), (".vtt", "vtt")):
        if path.endswith(suffix):
            return kind
    return "file"


def _json_for_script(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``</script>`` or ``<!--`` can end or bend the block."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_index(
    records: list[VideoRecord],
    docs: dict[str, dict[str, Any]],
    model: dict[str, Any],
    truth: dict[str, dict[str, Any]] | None = None,
    output: Path | None = None,
) -> str:
    """The page for ``records`` (summary rows); ``docs`` maps a video to its labels.json."""
    data = page_data(records, docs, model, truth, output)
    counts = {s: sum(r.status == s for r in records) for s in ("ok", "skipped", "failed")}
    run = f" &middot; run <code>{escape(model['run_id'])}</code>" if model.get("run_id") else ""
    truth_note = " &middot; with truth" if truth is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vidtag labels</title>
<link rel="icon" href="data:,">
<style>{asset("review_page.css")}</style>
</head>
<body>
<header class="top">
<h1>vidtag labels</h1>
<p class="meta">model <code>{escape(str(model.get("uri", "?")))}</code> &middot; {
        escape(str(model.get("task", "?")))
    } task{run} &middot; {plural(len(records), "video")}: {counts["ok"]} ok,
{counts["skipped"]} skipped, {counts["failed"]} failed{truth_note}
&middot; <a href="summary.csv">summary.csv</a></p>
<div class="toolbar">
<label>status <select id="filter-status"><option value="">all</option><option>ok</option>
<option>skipped</option><option>failed</option></select></label>
<label>label <select id="filter-label"><option value="">all</option></select></label>
<label>name <input id="filter-name" type="search" placeholder="filter by name"></label>
<label>sort <select id="sort"><option value="order">as labelled</option>
<option value="score">score (least sure first)</option><option value="name">name</option>
</select></label>
<span id="shown" class="shown"></span>
<span class="keys"><kbd>j</kbd>/<kbd>k</kbd> next/previous video &middot;
<kbd>space</kbd> play</span>
</div>
<div id="legend" class="legend"></div>
</header>
<main id="videos"></main>
<noscript>This page draws its timelines with JavaScript; summary.csv holds the same results.
</noscript>
<script type="application/json" id="vidtag-data">{_json_for_script(data)}</script>
<script>{asset("review_page.js")}</script>
</body>
</html>
"""


def index_html(
    output: Path,
    records: list[VideoRecord],
    model: dict[str, Any],
    annotations: Annotations | None = None,
) -> str:
    """The page's HTML, reading each labelled video's labels.json from ``output``; with
    ``annotations`` (``--truth``) the truth's segments and metrics beside the labels."""
    from pipeline.labeling.truth import truth_views

    docs = read_documents(output, records)
    truth = truth_views(annotations, records, docs) if annotations is not None else None
    return render_index(records, docs, model, truth, output)


def read_documents(output: Path, records: list[VideoRecord]) -> dict[str, dict[str, Any]]:
    """video -> its labels.json, for every record that has a readable one."""
    docs = {}
    for record in records:
        if record.status == "failed":
            continue
        try:
            path = output / record.outputs[0]
            docs[record.video] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, IndexError, KeyError):
            continue
    return docs
