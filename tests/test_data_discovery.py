"""pipeline/data/discovery.py: manifests (text and CSV) and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest


def _manifest(folder: Path, name: str, data: bytes) -> Path:
    manifest = folder / name
    manifest.write_bytes(data)
    return manifest


def test_text_manifest_keeps_whole_lines_with_spaces(tmp_path: Path) -> None:
    from pipeline.data.discovery import discover_videos

    text = "# for review\n\nmy clip.mp4\n  sub dir/second take.mp4  \n#skipped.mp4\nplain.mp4\n"
    manifest = _manifest(tmp_path, "list.txt", text.encode())
    videos = discover_videos(manifest, [".mp4"])
    names = ["my clip.mp4", "plain.mp4", "sub dir/second take.mp4"]
    assert videos == sorted((tmp_path / name).resolve() for name in names)


def test_csv_manifest_with_a_bom_is_read_as_csv(tmp_path: Path) -> None:
    from pipeline.data.discovery import discover_videos

    data = "\ufeffvideo,label\r\nmy clip.mp4,walk\r\nb.mp4,run\r\n".encode()
    videos = discover_videos(_manifest(tmp_path, "excel.csv", data), [".mp4"])
    assert videos == [(tmp_path / "b.mp4").resolve(), (tmp_path / "my clip.mp4").resolve()]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("latin1.txt", "caf\xe9.mp4\n".encode("latin-1"), "not UTF-8"),
        ("empty_cell.csv", b"video,label\na.mp4,walk\n,run\n", r"empty_cell.csv:3: empty 'video'"),
        ("short_row.csv", b"label,video\nwalk,a.mp4\nrun\n", r"short_row.csv:3: empty 'video'"),
    ],
)
def test_bad_manifests_are_one_line_user_errors(tmp_path: Path, name, data, message) -> None:
    from pipeline.data.discovery import DiscoveryError, discover_videos

    manifest = _manifest(tmp_path, name, data)
    with pytest.raises(DiscoveryError, match=message) as caught:
        discover_videos(manifest, [".mp4"])
    assert str(manifest) in str(caught.value) and "\n" not in str(caught.value)
