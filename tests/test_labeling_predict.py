"""pipeline/labeling/predict.py: model loading and caching, fingerprints, the video table."""

from __future__ import annotations

import pytest

from tests.helpers_labeling import (
    random_model,
    register,
)


def test_model_fingerprint_follows_the_weights() -> None:
    from pipeline.labeling.predict import model_fingerprint

    assert model_fingerprint(random_model()) == model_fingerprint(random_model())
    assert model_fingerprint(random_model()) != model_fingerprint(random_model(seed=1))


def test_predict_table_turns_a_missing_video_into_a_failed_row(tmp_path) -> None:
    import pandas as pd

    from pipeline.labeling.predict import predict_table

    table = predict_table(random_model("frame"), pd.DataFrame({"video": [tmp_path / "x.mp4"]}), {})
    assert list(table.columns) == ["video", "status", "label", "score", "error", "segments"]
    assert table.loc[0, "status"] == "failed" and "x.mp4" in table.loc[0, "error"]


def test_a_model_from_another_decoder_version_is_refused() -> None:
    from dataclasses import replace

    from pipeline.errors import UserError
    from pipeline.labeling.predict import check_spec

    spec = random_model().spec
    check_spec(spec)
    with pytest.raises(UserError, match="decoder version"):
        check_spec(replace(spec, decoder="0"))


@pytest.mark.slow
def test_an_alias_loads_the_version_it_points_at_now(registry, tmp_path) -> None:
    from pipeline.labeling.predict import get_model

    uri = "models:/label-cache@candidate"
    assert register(tmp_path / "v1", random_model(), "label-cache") == "1"
    first = get_model(uri, registry)
    assert (first.version, first.uri) == ("1", uri)
    assert register(tmp_path / "v2", random_model(seed=1), "label-cache") == "2"
    second = get_model(uri, registry)  # the alias moved: not the cached version 1
    assert (second.version, second.uri) == ("2", uri) and second.run_id != first.run_id
    assert second.fingerprint != first.fingerprint  # so version 1's outputs are not current
    assert second.describe()["version"] == "2"
    pinned = get_model("models:/label-cache/1", registry)
    assert pinned.model is first.model and pinned.uri == "models:/label-cache/1"  # cached
    assert get_model("models:/label-cache/latest", registry).model is second.model


@pytest.mark.slow
def test_an_alias_that_names_nothing_is_a_clear_error(registry) -> None:
    from pipeline.labeling.predict import get_model
    from pipeline.tracking.mlflow import TrackingError

    with pytest.raises(TrackingError, match="models:/no-such-model@candidate"):
        get_model("models:/no-such-model@candidate", registry)
