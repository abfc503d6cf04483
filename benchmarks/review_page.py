"""How big the review page is and how fast it opens, for many videos: medians, side by side.

Writes the labels.json of ``--videos`` synthetic frame-model results (20-120 s videos sampled at
5 fps, 6 classes, a segment every ~6 s, previews beside them), builds ``index.html`` with
:func:`pipeline.labeling.page.index_html`, and opens it ``--repeats`` times from disk in
headless Chromium (Playwright, ``--chromium``): DOMContentLoaded and load as the browser's
navigation timing reports them, and the first row drawn. The same for a tenth of the videos,
to show how opening time grows with the page.

    python benchmarks/review_page.py --videos 500 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.jobs import VideoRecord
from pipeline.labeling.outputs import document_text
from pipeline.labeling.page import index_html

CLASSES = ["background", "pour", "stir", "cut", "wash", "serve"]
MODEL = {"uri": "models:/bench@candidate", "run_id": "0" * 32, "version": "1", "task": "frame",
         "classes": CLASSES, "background": "background"}  # fmt: skip


def synthetic_doc(rng: np.random.Generator, name: str) -> dict:
    duration = float(rng.uniform(20, 120))
    fps, sample_fps = 30.0, 5.0
    frames = int(duration * fps)
    times = np.arange(0, duration, 1 / sample_fps)
    labels = rng.integers(0, len(CLASSES), size=max(1, int(duration / 6))).repeat(30)[: len(times)]
    labels = np.pad(labels, (0, len(times) - len(labels)), mode="edge")
    scores = rng.uniform(0.3, 1.0, size=len(times))
    segments, start = [], 0
    for i in range(1, len(times) + 1):
        if i == len(times) or labels[i] != labels[start]:
            if labels[start] != 0:
                segments.append({
                    "label": CLASSES[labels[start]], "start_s": round(times[start], 6),
                    "end_s": round(times[i] if i < len(times) else duration, 6),
                    "start_frame": int(times[start] * fps),
                    "end_frame": int((times[i] if i < len(times) else duration) * fps),
                    "score": round(float(scores[start:i].mean()), 6),
                })  # fmt: skip
            start = i
    stem = name.removesuffix(".avi")
    return {
        "schema": "vidtag.labels/1", "video": name, "path": f"/videos/{name}",
        "info": {"fps": fps, "frames": frames, "duration_s": duration, "width": 640,
                 "height": 360},
        "model": MODEL, "summary": {"label": segments[0]["label"] if segments else "background",
                                    "score": round(float(scores.mean()), 6)},
        "clip": None, "segments": segments,
        "samples": {"times_s": [round(float(t), 6) for t in times],
                    "indices": [int(t * fps) for t in times],
                    "labels": [CLASSES[i] for i in labels],
                    "scores": [round(float(s), 6) for s in scores]},
        "preview": {"policy": "auto", "playable": False, "file": f"{stem}.preview.mp4",
                    "thumbs": None, "error": None},
    }  # fmt: skip


def write_folder(out: Path, videos: int) -> Path:
    rng = np.random.default_rng(0)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(videos):
        name = f"camera_{i:04d}.avi"
        doc = synthetic_doc(rng, name)
        stem = name.removesuffix(".avi")
        (out / f"{stem}.labels.json").write_text(document_text(doc))
        records.append(VideoRecord(
            name, "ok", path=f"/videos/{name}", base=stem, label=doc["summary"]["label"],
            score=doc["summary"]["score"],
            outputs=[f"{stem}.labels.json", f"{stem}.segments.csv", f"{stem}.vtt"],
        ))  # fmt: skip
    started = time.perf_counter()
    page = index_html(out, records, MODEL)
    build_s = time.perf_counter() - started
    (out / "index.html").write_text(page, encoding="utf-8")
    print(f"{videos} videos: index.html built in {build_s:.2f} s (Python)")
    return out / "index.html"


def open_times(browser, index: Path, repeats: int) -> dict[str, float]:
    """Medians (ms) over fresh pages: DOMContentLoaded, load, first row drawn."""
    measures: dict[str, list[float]] = {"domcontentloaded_ms": [], "load_ms": [], "drawn_ms": []}
    for _ in range(repeats):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(index.as_uri(), wait_until="load")
        page.wait_for_selector(".body.drawn")
        timing = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.domContentLoadedEventEnd, n.loadEventEnd, performance.now()]; }"
        )
        measures["domcontentloaded_ms"].append(timing[0])
        measures["load_ms"].append(timing[1])
        measures["drawn_ms"].append(timing[2])
        page.close()
    return {name: statistics.median(values) for name, values in measures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )  # fmt: skip
        rows = {}
        for videos in (max(1, args.videos // 10), args.videos):
            index = write_folder(Path(tmp) / f"v{videos}", videos)
            rows[videos] = {
                "bytes": index.stat().st_size,
                **open_times(browser, index, args.repeats),
            }
        browser.close()
    print(
        f"{'videos':>7} {'size MB':>8} {'DOMContentLoaded ms':>20} {'load ms':>8} {'drawn ms':>9}"
    )
    for videos, row in rows.items():
        print(
            f"{videos:>7} {row['bytes'] / 1e6:>8.2f} {row['domcontentloaded_ms']:>20.0f} "
            f"{row['load_ms']:>8.0f} {row['drawn_ms']:>9.0f}"
        )
    small, large = rows.values()
    print(json.dumps({
        "videos": args.videos, "size_mb": round(large["bytes"] / 1e6, 3),
        "domcontentloaded_ms": round(large["domcontentloaded_ms"]),
        "dcl_ratio_vs_tenth": round(large["domcontentloaded_ms"] / small["domcontentloaded_ms"], 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
