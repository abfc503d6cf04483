"""What a folder job (extract or label) records per video, and the summary it ends with.

:class:`VideoRecord` is the one record a per-video task returns to its flow (small and
picklable: it crosses to Dask workers and back); :class:`JobSummary` counts them, measures the
throughput and keeps each failure's reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and the noun in the number it takes: "1 video", "2 videos", "0 videos"."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


@dataclass
class VideoRecord:
    """One video of a job: what happened to it, and what labelling found in it."""

    video: str  # as the job names it: the path (extract) or the path under the input (label)
    status: str  # ok | skipped | failed
    path: str | None = None  # the video file (label jobs)
    video_key: str | None = None  # content hash (extract jobs)
    frames: int = 0  # sampled frames read (0 when skipped)
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    label: str | None = None  # label jobs: the clip label or the dominant frame label
    score: float | None = None
    base: str | None = None  # label jobs: the output base, relative to the output folder
    outputs: list[str] = field(default_factory=list)  # label jobs: labels.json, csv, vtt
    host: str | None = None  # where the work ran: a Dask worker's address or the host name

    def failed(self, reason: str) -> VideoRecord:
        return replace(self, status="failed", error=reason)

    def row(self, columns: tuple[str, ...]) -> dict[str, Any]:
        """The named fields, as one table row."""
        return {column: getattr(self, column) for column in columns}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobSummary:
    job: str
    extractor_key: str | None = None
    records: list[VideoRecord] = field(default_factory=list)

    def add(self, record: VideoRecord) -> None:
        self.records.append(record)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)

    @property
    def failures(self) -> list[VideoRecord]:
        return [r for r in self.records if r.status == "failed"]

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.records if r.status == "ok")

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.records if r.status == "ok")

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> list[dict[str, Any]]:
        columns = ("video", "status", "frames", "seconds", "error", "host")
        return [r.row(columns) for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        """The flow's return value: counts, failures and every record, as plain data."""
        return {
            "job": self.job,
            "extractor_key": self.extractor_key,
            "videos": len(self.records),
            "ok": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "frames": self.frames,
            "frames_per_s": round(self.frames_per_s, 2),
            "failures": [r.row(("video", "error")) for r in self.failures],
            "records": [r.to_dict() for r in self.records],
        }

    def text(self) -> str:
        lines = [
            f"{self.job}: {plural(len(self.records), 'video')}: {self.count('ok')} ok, "
            f"{self.count('skipped')} skipped, {self.count('failed')} failed; "
            f"{self.frames} frames at {self.frames_per_s:.1f} frames/s"
        ]
        lines += [f"  FAILED {r.video}: {r.error}" for r in self.failures]
        return "\n".join(lines)

    def markdown(self) -> str:
        return self.text().replace("\n", "  \n")
