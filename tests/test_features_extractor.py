"""FeatureExtractor: batched embedding at a precision, eager or compiled, and where inductor
caches."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import torch

from pipeline.features.extractor import FeatureExtractor
from tests.helpers_features import make_spec


def _frames(count: int = 6, height: int = 80, width: int = 120, seed: int = 0) -> np.ndarray:
    """Smooth, structured frames (gradients + blobs), closer to video than white noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for _ in range(count):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(10, 30)
        blob = ((x - cx) ** 2 + (y - cy) ** 2 < r**2)[..., None] * rng.uniform(0, 255, 3)
        base = np.stack([x / width * 255, y / height * 255, np.full_like(x, 128.0)], -1)
        frames.append(np.clip(0.5 * base + blob + rng.normal(0, 8, base.shape), 0, 255))
    return np.stack(frames).astype(np.uint8)


def test_bf16_features_agree_with_fp32() -> None:
    frames = _frames(8)
    fp32 = FeatureExtractor(make_spec(precision="fp32"), device="cpu").embed(frames)
    bf16 = FeatureExtractor(make_spec(precision="bf16"), device="cpu").embed(frames)
    cosine = (fp32 * bf16).sum(1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(bf16, axis=1))
    assert cosine.min() >= 0.99, cosine


def test_embed_batches_are_independent_of_batch_size() -> None:
    frames = _frames(7)
    one = FeatureExtractor(make_spec(), device="cpu", batch_size=3).embed(frames)
    four = FeatureExtractor(make_spec(), device="cpu", batch_size=4).embed(frames)
    np.testing.assert_allclose(one, four, rtol=1e-4, atol=1e-4)


def test_failed_compile_falls_back_to_eager_with_a_warning(monkeypatch) -> None:
    def broken_compile(module, **kwargs):
        def run(batch):
            raise RuntimeError("inductor: no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    frames = _frames(5)
    compiled = FeatureExtractor(make_spec(), device="cpu", batch_size=4, compile_mode="on")
    assert compiled.compiled
    with pytest.warns(UserWarning, match="torch.compile failed"):
        out = compiled.embed(frames)
    assert not compiled.compiled
    eager = FeatureExtractor(make_spec(), device="cpu", batch_size=4).embed(frames)
    np.testing.assert_allclose(out, eager, rtol=1e-5, atol=1e-5)


def test_auto_compile_waits_until_the_job_is_long(monkeypatch) -> None:
    import pipeline.features.extractor as features

    calls = []
    monkeypatch.setattr(features, "AUTO_COMPILE_AFTER_FRAMES", 10)
    monkeypatch.setattr(torch, "compile", lambda module, **kw: calls.append(1) or module)
    extractor = FeatureExtractor(make_spec(), device="cpu", batch_size=4, compile_mode="auto")
    extractor.embed(_frames(6))
    assert not calls
    extractor.embed(_frames(6))
    assert calls and extractor.compiled


def test_compile_cache_goes_where_asked_unless_the_user_chose_one(monkeypatch, tmp_path) -> None:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from pipeline.features.extractor import _use_compile_cache

    # torchvision's import has already put inductor's default here: that is not a choice.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the default, inside this test
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    _use_compile_cache(tmp_path / "store" / ".compile_cache")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "store" / ".compile_cache")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    _use_compile_cache(tmp_path / "store" / ".compile_cache")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")


@pytest.mark.slow
def test_real_compile_agrees_with_eager_and_caches_under_the_given_folder(
    monkeypatch, tmp_path
) -> None:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    frames = np.random.default_rng(0).integers(0, 255, (4, 64, 80, 3), dtype=np.uint8)
    spec = make_spec(precision="fp32")
    eager = FeatureExtractor(spec, device="cpu", batch_size=4, compile_mode="off")
    cache = tmp_path / "store" / ".compile_cache"
    compiled = FeatureExtractor(
        spec, device="cpu", batch_size=4, compile_mode="on", cache_dir=cache
    )
    got = compiled.embed(frames)
    assert compiled.compiled, "torch.compile fell back to eager"
    np.testing.assert_allclose(got, eager.embed(frames), rtol=1e-3, atol=1e-3)
    assert any(path.is_file() for path in cache.rglob("*"))
