"""What the flow tests share: a random-init model folder to label with, a flow run's task runs."""

from __future__ import annotations

from pathlib import Path


def random_model(cfg, folder: Path) -> Path:
    """A random-init clip model folder with ``cfg``'s extractor spec (labelling needs one)."""
    import torch

    from models.rnn import build_model, model_config_dict
    from pipeline.features import spec_from_config
    from pipeline.tracking.model_io import save_model_dir

    torch.manual_seed(0)
    module = build_model("clip", 512, 3, cfg.model)
    config = model_config_dict(module)
    return save_model_dir(folder, module, config, spec_from_config(cfg), ["a", "b", "c"], None)


def task_runs(flow_run_id) -> list:
    """Every task run of one flow run, as the Prefect API has them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        return client.read_task_runs(flow_run_filter=runs_filter)
