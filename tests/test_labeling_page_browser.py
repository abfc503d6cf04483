"""The review page in a real browser: Playwright for Python driving Debian's Chromium.

The page is opened from disk (``file://``) as a user opens it. The folder is labelled for real
(synthetic OpenCV ``mp4v`` videos like the demo's, which Chromium cannot play, so they play
through their H.264 previews; an MPEG-4 Part 2 AVI; a broken file), by a random-init model:
what is tested is the page, not the model. Skips cleanly where Playwright or Chromium is
missing (``.ci/run`` installs chromium).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers_review import Folder, label_into
from tests.helpers_trained import Labelled, summary_rows

pytestmark = pytest.mark.slow  # labels a folder and starts a browser

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-dev-shm-usage",
]  # fmt: skip


def chromium_path() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def folder(review_folder: Folder) -> Folder:
    return review_folder


class Opened:
    """A page opened from disk, with every console error, page error and failed request."""

    def __init__(self, browser, index: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.goto(index.as_uri())
        self.page.wait_for_selector(".video-row")

    def _console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def row(self, name: str):
        return self.page.locator(".video-row", has=self.page.locator(".name", has_text=name))

    def select(self, name: str):
        """Open ``name``'s player and wait until it has a frame to show."""
        self.row(name).locator(".head .name").click()
        video = self.row(name).locator("video")
        video.wait_for()
        self.page.wait_for_function(
            "v => v.readyState >= 2 || v.error", arg=video.element_handle(), timeout=15_000
        )
        return video


@pytest.fixture
def opened(browser, folder: Folder):
    page = Opened(browser, folder.output / "index.html")
    yield page
    page.page.close()


def ok_videos(folder: Folder) -> list[str]:
    return [r.video for r in folder.records if r.status == "ok"]


def test_the_page_opens_from_disk_with_no_console_error(opened: Opened, folder, tmp_path) -> None:
    assert opened.page.locator(".video-row").count() == len(folder.records) == 4
    assert opened.page.locator(".video-row .error").count() == 1  # broken.mp4
    for name in ok_videos(folder):  # drawn: timeline, axis, list
        row = opened.row(name)
        row.scroll_into_view_if_needed()
        assert row.locator(".lane .track").count() >= 1 and row.locator(".axis span").count() >= 2
    opened.select("video_000.mp4")
    shot = tmp_path / "review.png"
    opened.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    print(f"review page screenshot: {shot}")
    assert opened.problems == []


def test_a_click_on_a_segment_seeks_the_player_to_its_start(opened: Opened, folder) -> None:
    name = next(
        n for n in ok_videos(folder) if opened.row(n).locator(".seg").count() and "video_" in n
    )
    opened.select(name)
    segments = opened.row(name).locator(".lanes .seg")
    last = segments.nth(segments.count() - 1)
    start = float(last.get_attribute("data-start"))
    last.click()
    video = opened.row(name).locator("video")
    current = video.evaluate("v => v.currentTime")
    assert current == pytest.approx(start, abs=1e-3)
    # the playhead follows, and the list beside the timeline marks the segment
    playhead = opened.row(name).locator(".playhead").evaluate("e => e.style.left")
    assert "calc" in playhead
    assert opened.row(name).locator(".side tr.now").count() == 1
    # a click in the list seeks too
    opened.row(name).locator(".side tr.item").first.click()
    first_start = float(segments.first.get_attribute("data-start"))
    assert video.evaluate("v => v.currentTime") == pytest.approx(first_start, abs=1e-3)
    assert opened.problems == []


def test_filters_hide_rows_and_sort_puts_the_least_sure_first(opened: Opened, folder) -> None:
    page = opened.page
    visible = "() => [...document.querySelectorAll('.video-row')].filter(r => !r.hidden).length"
    page.select_option("#filter-status", "failed")
    assert page.evaluate(visible) == 1
    assert page.locator("#shown").inner_text() == "showing 1 of 4"
    page.select_option("#filter-status", "")
    assert page.evaluate(visible) == 4
    names = [r.video for r in folder.records]
    used = {
        seg["label"] for r in folder.records if r.status == "ok" for seg in _segments(folder, r)
    }
    absent = next(label for label in folder.classes[1:] if label not in used) if (
        set(folder.classes[1:]) - used) else None  # fmt: skip
    if absent is not None:
        page.select_option("#filter-label", str(folder.classes.index(absent)))
        assert page.evaluate(visible) == 0
    label = sorted(used)[0]
    with_label = [r.video for r in folder.records if r.status == "ok"
                  and any(s["label"] == label for s in _segments(folder, r))]  # fmt: skip
    page.select_option("#filter-label", str(folder.classes.index(label)))
    shown = page.eval_on_selector_all(
        ".video-row:not([hidden]) .name", "els => els.map(e => e.textContent)"
    )
    assert sorted(shown) == sorted(with_label) and len(shown) < len(names)
    page.select_option("#filter-label", "")
    page.fill("#filter-name", "camera")
    assert page.evaluate(visible) == 1
    page.fill("#filter-name", "")
    page.select_option("#sort", "score")
    order = page.eval_on_selector_all(".video-row .name", "els => els.map(e => e.textContent)")
    scores = {r.video: r.score for r in folder.records if r.status == "ok"}
    expected = sorted(scores, key=lambda n: (scores[n], names.index(n))) + ["broken.mp4"]
    assert order == expected
    assert opened.problems == []


def _segments(folder: Folder, record) -> list[dict]:
    import json

    return json.loads((folder.output / record.outputs[0]).read_text())["segments"]


def test_keyboard_moves_to_the_next_and_previous_video(opened: Opened, folder) -> None:
    page = opened.page
    selected = "() => document.querySelector('.video-row.selected .name').textContent"
    names = [r.video for r in folder.records]
    seen = []
    for _ in names:
        page.keyboard.press("j")
        seen.append(page.evaluate(selected))
        # one player at a time, for the selected video only (a failed one has none)
        players = page.locator("video").count()
        assert players == (0 if seen[-1] == "broken.mp4" else 1), seen
    assert seen == names
    page.keyboard.press("k")
    page.keyboard.press("ArrowUp")
    assert page.evaluate(selected) == names[-3]
    page.keyboard.press("ArrowDown")
    assert page.evaluate(selected) == names[-2]
    assert opened.problems == []


def test_demo_like_videos_play_with_their_track(opened: Opened, folder) -> None:
    for name in [n for n in ok_videos(folder) if n.startswith("video_")]:
        record = next(r for r in folder.records if r.video == name)
        segments = _segments(folder, record)
        video = opened.select(name)
        state = video.evaluate("v => [v.readyState, v.error && v.error.code, v.videoWidth]")
        assert state[0] >= 2 and state[1] is None and state[2] > 0, (name, state)
        assert video.evaluate("v => v.currentSrc").endswith(".preview.mp4")  # mp4v: preview
        if not segments:
            continue
        segment = segments[len(segments) // 2]
        middle = (segment["start_s"] + segment["end_s"]) / 2
        cues = video.evaluate(
            """(v, t) => new Promise(done => {
                v.addEventListener('seeked', () => requestAnimationFrame(() => done(
                    [...v.textTracks[0].activeCues].map(c => c.text))), {once: true});
                v.currentTime = t;
            })""",
            middle,
        )
        assert cues == [f"{segment['label']} ({segment['score']:.2f})"], (name, middle)
        assert video.evaluate("v => v.textTracks[0].mode") == "showing"
    assert opened.problems == []


def test_an_avi_plays_through_its_preview(opened: Opened) -> None:
    video = opened.select("camera.avi")
    assert video.evaluate("v => v.currentSrc").endswith("camera.preview.mp4")
    assert video.evaluate("v => v.duration") == pytest.approx(40 / 30, abs=0.05)
    assert opened.problems == []


def test_the_thumbnail_strip_shows_for_an_avi_when_previews_are_off(browser, folder) -> None:
    out = folder.output.parent / "out_never"
    cfg = folder.cfg.model_copy(deep=True)
    cfg.label.previews = "never"
    label_into(folder.input, out, cfg, folder.model)
    assert not list(out.glob("*.preview.mp4"))
    opened = Opened(browser, out / "index.html")
    row = opened.row("camera.avi")
    image = row.locator(".thumbs img")
    image.wait_for()
    opened.page.wait_for_function(
        "i => i.complete && i.naturalWidth > 0", arg=image.element_handle()
    )
    assert "label.previews: never" in row.locator(".note").inner_text()
    row.locator(".head .name").click()
    assert row.locator("video").count() == 0  # nothing a browser can play
    assert opened.problems == []
    opened.page.close()


def test_the_flow_made_page_opens_and_plays(browser, labelled: Labelled, tmp_path) -> None:
    """The page `vidtag label` wrote (the trained frame model's folder, demo-like videos)."""
    opened = Opened(browser, labelled.output / "index.html")
    rows = summary_rows(labelled.output)
    assert opened.page.locator(".video-row").count() == len(rows)
    name = next(n for n, r in rows.items() if r["status"] == "ok" and n.startswith("synthetic/"))
    video = opened.select(name)
    assert video.evaluate("v => v.readyState") >= 2
    shot = tmp_path / "flow_page.png"
    opened.page.screenshot(path=str(shot), full_page=True)
    print(f"review page screenshot: {shot}")
    assert opened.problems == []
    opened.page.close()


def test_a_video_the_browser_cannot_play_says_so(browser, review_folder: Folder, tmp_path) -> None:
    """Labels written before previews existed (no ``preview`` entry): the page tries the video
    itself, and where the browser fails it says why and what to do."""
    import json

    from pipeline.labeling.page import index_html

    out = tmp_path / "out"
    shutil.copytree(review_folder.output, out)
    labels = out / "camera.labels.json"
    doc = json.loads(labels.read_text())
    del doc["preview"]
    labels.write_text(json.dumps(doc))
    (out / "camera.preview.mp4").unlink()
    page = index_html(out, review_folder.records, review_folder.model.describe())
    (out / "index.html").write_text(page, encoding="utf-8")
    opened = Opened(browser, out / "index.html")
    row = opened.row("camera.avi")
    row.locator(".head .name").click()
    note = row.locator(".player .note")
    note.wait_for(timeout=15_000)
    assert "cannot play this video" in note.inner_text()
    assert "label.previews" in note.inner_text()
    opened.page.close()
