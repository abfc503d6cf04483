"""``index.html``: a self-contained review page for one labelling run.

One HTML file, inline CSS, no script, no network and no external assets: it opens from disk in
any browser. One table row (``tr.video-row``) per video: its relative path, status, label and
score (clip) or a timeline of its segments coloured by label (frame), and links to its files.
A legend maps each class to its colour; background is not drawn.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pipeline.jobs import plural

if TYPE_CHECKING:
    from pipeline.jobs import VideoRecord

# Tableau 20: distinct on white, in an order that keeps neighbours apart.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
BACKGROUND_COLOUR = "#eeeeee"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
.meta { color: #555; margin: 0 0 1em; }
.legend { display: flex; flex-wrap: wrap; gap: .4em 1em; margin: 0 0 1em; }
.legend span { display: inline-flex; align-items: center; gap: .3em; }
.swatch { width: 1em; height: 1em; border: 1px solid #999; display: inline-block; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #ddd;
         vertical-align: middle; }
th { background: #f6f6f6; }
td.video { font-family: ui-monospace, monospace; word-break: break-all; max-width: 22em; }
.status { padding: .1em .5em; border-radius: .8em; font-size: .85em; }
.status-ok { background: #d9f2d9; } .status-skipped { background: #e6ecf7; }
.status-failed { background: #f7d9d9; }
.error { color: #a00; font-family: ui-monospace, monospace; font-size: .85em; }
.timeline { position: relative; height: 1.4em; min-width: 24em; background: #eeeeee;
            border: 1px solid #ccc; }
.timeline div { position: absolute; top: 0; bottom: 0; }
.axis { display: flex; justify-content: space-between; color: #777; font-size: .75em; }
a { margin-right: .6em; }
"""


def colours(classes: list[str], background: str | None) -> dict[str, str]:
    """Class -> colour: by class position in the model's class list, background light grey."""
    shown = [name for name in classes if name != background]
    mapping = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(shown)}
    if background is not None:
        mapping[background] = BACKGROUND_COLOUR
    return mapping


def render_index(
    records: list[VideoRecord], docs: dict[str, dict[str, Any]], model: dict[str, Any]
) -> str:
    """The page for ``records`` (summary rows); ``docs`` maps a video to its labels.json."""
    palette = colours(model.get("classes", []), model.get("background"))
    counts = {s: sum(r.status == s for r in records) for s in ("ok", "skipped", "failed")}
    rows = "\n".join(_row(r, docs.get(r.video), palette) for r in records)
    run = f", run {escape(model['run_id'])}" if model.get("run_id") else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vidtag labels</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<h1>vidtag labels</h1>
<p class="meta">model <code>{escape(str(model.get("uri", "?")))}</code> ({
        escape(str(model.get("task", "?")))
    } task{run}) &middot; {plural(len(records), "video")}: {counts["ok"]} ok,
{counts["skipped"]} skipped, {counts["failed"]} failed
&middot; <a href="summary.csv">summary.csv</a></p>
{_legend(palette, model.get("background"))}
<table>
<thead><tr><th>video</th><th>status</th><th>label</th><th>segments</th><th>files</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""


def _legend(palette: dict[str, str], background: str | None) -> str:
    items = []
    for name, colour in palette.items():
        note = " (not drawn)" if name == background else ""
        items.append(
            f'<span><i class="swatch" style="background:{colour}"></i>{escape(name)}{note}</span>'
        )
    return f'<div class="legend">{"".join(items)}</div>'


def _row(record: VideoRecord, doc: dict[str, Any] | None, palette: dict[str, str]) -> str:
    status = record.status
    video = escape(record.video)
    badge = f'<span class="status status-{escape(status)}">{escape(status)}</span>'
    if status == "failed" or doc is None:
        error = escape(record.error or "no labels")
        return (
            f'<tr class="video-row" data-status="{escape(status)}"><td class="video">{video}</td>'
            f'<td>{badge}</td><td colspan="3" class="error">{error}</td></tr>'
        )
    label = f"{escape(str(record.label))} ({float(record.score or 0):.2f})"
    links = " ".join(f'<a href="{_href(path)}">{_kind(path)}</a>' for path in record.outputs)
    if record.path:
        links += f' <a href="{escape(Path(record.path).as_uri())}">video</a>'
    return (
        f'<tr class="video-row" data-status="{escape(status)}"><td class="video">{video}</td>'
        f"<td>{badge}</td><td>{label}</td><td>{_timeline(doc, palette)}</td><td>{links}</td></tr>"
    )


def _href(relative_path: str) -> str:
    """A relative link to an output file: URL-quoted (``#``, ``%``, ``?``, spaces), then
    escaped for the attribute."""
    return escape(quote(relative_path))


def _kind(path: str) -> str:
    for suffix, kind in ((".labels.json", "json"), (".segments.csv", "csv"), (".vtt", "vtt")):
        if path.endswith(suffix):
            return kind
    return "file"


def _timeline(doc: dict[str, Any], palette: dict[str, str]) -> str:
    duration = float(doc["info"]["duration_s"]) or 1.0
    bars = []
    for segment in doc["segments"]:
        left = 100.0 * segment["start_s"] / duration
        width = max(100.0 * (segment["end_s"] - segment["start_s"]) / duration, 0.15)
        colour = palette.get(segment["label"], "#000000")
        tip = (
            f"{segment['label']}: {segment['start_s']:.2f}-{segment['end_s']:.2f} s, frames "
            f"{segment['start_frame']}-{segment['end_frame']}, score {segment['score']:.2f}"
        )
        bars.append(
            f'<div style="left:{left:.3f}%;width:{width:.3f}%;background:{colour}" '
            f'title="{escape(tip)}"></div>'
        )
    return (
        f'<div class="timeline">{"".join(bars)}</div>'
        f'<div class="axis"><span>0 s</span><span>{duration:.2f} s</span></div>'
    )


def index_html(output: Path, records: list[VideoRecord], model: dict[str, Any]) -> str:
    """The page's HTML, reading each labelled video's labels.json from ``output``."""
    docs = {}
    for record in records:
        if record.status == "failed":
            continue
        try:
            path = output / record.outputs[0]
            docs[record.video] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, IndexError, KeyError):
            continue
    return render_index(records, docs, model)
