"""Claims (one holder per lock, waiting, timing out, released by a killed holder), and at work:
two runs on the same folder and store at once give complete files and do no work twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.claims import ClaimTimeout, claim
from pipeline.features.store import FeatureStore
from pipeline.features.store_admin import verify
from tests.conftest import REPO, tiny_config

RUN = """
import json, sys
from flows.prefect_env import configure
configure()
from pipeline.config import load_config
from flows.extract import extract_features
summary = extract_features(load_config(sys.argv[1]), print_summary=False)
print("SUMMARY " + json.dumps(summary))
"""


def _start(config: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN, str(config)], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _summary(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    line = next(line for line in out.splitlines() if line.startswith("SUMMARY "))
    return json.loads(line.removeprefix("SUMMARY "))


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["local", "dask"])
def test_two_extractions_at_once_share_the_work(prefect_server, clip_dataset, tmp_path, runner):
    videos = sorted(clip_dataset.rglob("*.mp4"))
    folder = clip_dataset if runner == "local" else videos[0].parent  # dask: one class folder
    count = len([v for v in videos if folder in v.parents])
    sets = {"runner.kind": runner, "runner.workers": 1}
    cfg = tiny_config(tmp_path, folder, None, "clip", **sets)
    config = tmp_path / "c.yaml"
    config.write_text(cfg.to_yaml())
    env = {**os.environ, "PREFECT_API_URL": prefect_server.url}
    first, second = _start(config, env), _start(config, env)
    summaries = [_summary(first), _summary(second)]
    for summary in summaries:
        assert summary["failed"] == 0 and summary["ok"] + summary["skipped"] == count, summary
    extracted = summaries[0]["ok"] + summaries[1]["ok"]
    assert extracted <= count + 1, summaries  # at most a race's one extra video
    store = FeatureStore(cfg.features.store)
    assert len(list(store.entries())) == count
    assert not verify(store).corrupt and not store.temp_files()


def test_claim_makes_the_second_holder_wait(tmp_path: Path) -> None:
    lock = tmp_path / ".locks" / "v.lock"
    events: list[str] = []

    def second() -> None:
        with claim(lock):
            events.append("second")

    with claim(lock):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        events.append("first done")
    thread.join(5)
    assert events == ["first done", "second"]


def test_claim_times_out_with_the_lock_named(tmp_path: Path) -> None:
    lock = tmp_path / "v.lock"
    with claim(lock):
        result: list[BaseException] = []

        def waiter() -> None:
            try:
                with claim(lock, wait_s=0.3):
                    pass
            except ClaimTimeout as exc:
                result.append(exc)

        thread = threading.Thread(target=waiter)
        thread.start()
        thread.join(5)
    assert result and "v.lock" in str(result[0])


def test_a_killed_holder_releases_its_claim(tmp_path: Path) -> None:
    lock = tmp_path / "v.lock"
    script = (
        "import sys, time\nfrom pipeline.claims import claim\n"
        "with claim(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(lock)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    with claim(lock, wait_s=5):
        pass
