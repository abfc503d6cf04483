"""A real Label Studio server for the round-trip test, from its own virtual environment.

Label Studio pins many packages, so it never goes into vidtag's environment: ``make
test-interop`` installs it into ``.venv-interop`` (or ``$VIDTAG_LABEL_STUDIO`` names another
``label-studio`` executable). The server runs on 127.0.0.1 with a free port, its database and
files in a temp folder, one user whose legacy API token the test sets, and local-file serving
rooted at the videos' folder; it is stopped (process group) when the context ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import free_port, stop, wait_healthy

REPO = Path(__file__).resolve().parents[1]
VENV_EXECUTABLE = REPO / ".venv-interop" / "bin" / "label-studio"


def label_studio_executable() -> Path | None:
    named = os.environ.get("VIDTAG_LABEL_STUDIO")
    path = Path(named) if named else VENV_EXECUTABLE
    return path if path.is_file() and os.access(path, os.X_OK) else None


@dataclass
class LabelStudio:
    url: str
    token: str
    log: Path

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call with the user's token; the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
            f"{self.url}{path}", data=data, method=method,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            text = response.read().decode()
        return json.loads(text) if text else None


@contextlib.contextmanager
def running_label_studio(
    executable: Path, home: Path, document_root: Path, timeout_s: float = 240
) -> Iterator[LabelStudio]:
    port, token = free_port(), secrets.token_hex(20)
    data = home / "data"
    data.mkdir(parents=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_USERNAME": "vidtag@example.com",
        "LABEL_STUDIO_PASSWORD": secrets.token_hex(8),
        "LABEL_STUDIO_USER_TOKEN": token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LOCAL_FILES_SERVING_ENABLED": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
        "COLLECT_ANALYTICS": "false",
    }
    command = [
        str(executable), "start", "--no-browser", "--internal-host", "127.0.0.1",
        "--port", str(port), "--data-dir", str(data), "--enable-legacy-api-token",
        "--log-level", "WARNING",
    ]  # fmt: skip
    log = home / "label-studio.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(f"{url}/health", process, log, timeout_s)
        yield LabelStudio(url, token, log)
    finally:
        stop(process)


def round_trip(server: LabelStudio, tasks: list[dict], label_config: str) -> list[dict]:
    """Create a project with ``label_config``, import ``tasks`` (with their predictions), turn
    the predictions into annotations as a reviewer accepting them would, export JSON."""
    body = {"title": "vidtag", "label_config": label_config}
    project = server.call("POST", "/api/projects", body)
    pid = project["id"]
    server.call("POST", f"/api/projects/{pid}/import", tasks)
    server.call(
        "POST", f"/api/dm/actions?id=predictions_to_annotations&project={pid}",
        {"selectedItems": {"all": True, "excluded": []}},
    )  # fmt: skip
    return server.call("GET", f"/api/projects/{pid}/export?exportType=JSON")
