"""The summary every folder job ends with: counts, throughput, and each failure's reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class JobSummary:
    job: str
    extractor_key: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r["status"] == status)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "failed"]

    @property
    def frames(self) -> int:
        return sum(r.get("frames", 0) for r in self.records if r["status"] == "ok")

    @property
    def seconds(self) -> float:
        return sum(r.get("seconds", 0.0) for r in self.records if r["status"] == "ok")

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> list[dict[str, Any]]:
        keys = ("video", "status", "frames", "seconds", "error")
        return [{k: r.get(k) for k in keys} for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "extractor_key": self.extractor_key,
            "videos": len(self.records),
            "ok": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "frames": self.frames,
            "frames_per_s": round(self.frames_per_s, 2),
            "failures": [{"video": r["video"], "error": r["error"]} for r in self.failures],
            "records": self.records,
        }

    def text(self) -> str:
        lines = [
            f"{self.job}: {len(self.records)} videos: {self.count('ok')} ok, "
            f"{self.count('skipped')} skipped, {self.count('failed')} failed; "
            f"{self.frames} frames at {self.frames_per_s:.1f} frames/s"
        ]
        lines += [f"  FAILED {r['video']}: {r['error']}" for r in self.failures]
        return "\n".join(lines)

    def markdown(self) -> str:
        return self.text().replace("\n", "  \n")
