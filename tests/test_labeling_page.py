"""pipeline/labeling/page.py: the self-contained review page (index.html)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from pipeline.jobs import VideoRecord
from pipeline.labeling.page import render_index
from tests.helpers_labeling import (
    CLASSES,
    MODEL,
    document,
)
from tests.helpers_trained import (
    Labelled,
    summary_rows,
)


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


def chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
)  # fmt: skip


@pytest.mark.slow
def test_review_page_loads_in_headless_chromium(labelled: Labelled, tmp_path) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("Chromium is not installed")
    page = (labelled.output / "index.html").as_uri()
    env = {**os.environ, "HOME": str(tmp_path)}
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*common, "--dump-dom", page], capture_output=True, text=True, timeout=90, env=env
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="video-row"') == len(summary_rows(labelled.output))
    screenshot = tmp_path / "index.png"
    shot = subprocess.run(
        [*common, f"--screenshot={screenshot}", "--window-size=1280,1600", page],
        capture_output=True, text=True, timeout=90, env=env,
    )  # fmt: skip
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    print(f"review page screenshot: {screenshot}")
    # The page has no script: any console message at all (an error, a failed load) is wrong.
    console = [
        line
        for line in (dom.stderr + shot.stderr).splitlines()
        if ":CONSOLE" in line or "Uncaught" in line
    ]
    assert not console, console
