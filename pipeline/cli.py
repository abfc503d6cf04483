"""The ``vidtag`` command line: a thin Typer shell over ``pipeline/`` and ``flows/``.

Heavy libraries (torch, prefect, mlflow) are imported inside the commands that need them so
that ``vidtag --help`` stays fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

app = typer.Typer(
    name="vidtag",
    help="Folders of video to activity labels: decode, CNN features, RNN training, labelling.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (default: the embedded defaults)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override one key, e.g. --set train.lr=0.001 (repeatable)."),
]

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn the project's user-facing errors into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipeline.errors import UserError

        try:
            return func(*args, **kwargs)
        except UserError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def load(config: Path | None, overrides: list[str] | None):
    from pipeline.config import load_config

    return load_config(config, overrides or [])


# --- config ----------------------------------------------------------------------------------


@config_app.command("show")
@user_errors
def config_show(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the resolved config as YAML.

    Example: [bold]vidtag config show -c configs/clip_activity.yaml --set model.cell=lstm[/]
    """
    typer.echo(load(config, set_).to_yaml(), nl=False)


# --- synth -----------------------------------------------------------------------------------


@app.command()
@user_errors
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder for the dataset.")],
    task: Annotated[str, typer.Option(help="clip (one label per video) or frame (segments).")] = "clip",
    videos: Annotated[int, typer.Option(help="Number of videos to write.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same dataset.")] = 0,
) -> None:
    """Write a synthetic labelled video dataset (real mp4 files).

    Example: [bold]vidtag synth data/synth_clip --task clip --videos 60 --seed 0[/]
    """
    from pipeline.errors import UserError
    from pipeline.progress import progress_bar
    from pipeline.synth import write_dataset

    if task not in ("clip", "frame"):
        raise UserError(f"--task must be clip or frame, got {task!r}")
    with progress_bar(console) as progress:
        bar = progress.add_task(f"writing {task} videos", total=videos)
        summary = write_dataset(
            out, task=task, videos=videos, seed=seed, on_video=lambda _: progress.advance(bar)
        )
    console.print(summary.describe())


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
