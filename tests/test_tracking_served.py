"""pipeline/tracking/served.py: the served model's signature and input example."""

from __future__ import annotations

import pytest

from pipeline.tracking import served


@pytest.mark.parametrize("task", ["clip", "frame"])
def test_signature_is_a_table_of_videos_with_optional_options(task) -> None:
    from pipeline.training.task import task_named

    signature = served.signature(task)
    inputs = {spec.name: spec for spec in signature.inputs.inputs}
    assert list(inputs) == ["video", *served.SERVED_OPTIONS]
    assert inputs["video"].required
    assert not any(inputs[name].required for name in served.SERVED_OPTIONS)
    outputs = signature.outputs.input_names()
    assert outputs[:5] == ["video", "status", "label", "score", "error"]
    assert ("segments" in outputs) == task_named(task).per_step
    assert signature.params is None  # options travel as columns, which MLflow never drops


def test_every_served_option_is_a_labelling_option_of_the_table_input() -> None:
    from pipeline.labeling.predict import OPTION_KEYS

    assert set(served.SERVED_OPTIONS) == set(OPTION_KEYS)


def test_the_input_example_fits_the_signature() -> None:
    from mlflow.models.utils import _enforce_schema

    example = served.input_example()
    checked = _enforce_schema(example, served.signature("frame").inputs)
    assert list(checked["video"]) == served.INPUT_EXAMPLE["video"]


def test_the_table_output_has_exactly_the_signature_columns() -> None:
    import pandas as pd

    from pipeline.labeling.predict import predict_table
    from tests.helpers_registry import random_model

    for task in ("clip", "frame"):
        table = predict_table(random_model(task), pd.DataFrame({"video": ["nope.mp4"]}), {})
        assert list(table.columns) == served.signature(task).outputs.input_names()
