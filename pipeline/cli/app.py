"""The ``vidtag`` command line: a thin Typer shell over ``pipeline/`` and ``flows/``.

Heavy libraries (torch, prefect, mlflow) are imported inside the commands that need them so
that ``vidtag --help`` stays fast.
"""

from __future__ import annotations

import functools
import inspect
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
store_app = typer.Typer(help="Inspect, verify and clean the feature store.", no_args_is_help=True)
app.add_typer(store_app, name="store")
models_app = typer.Typer(
    help="Registered model versions and the @candidate alias labelling uses.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

console = Console()
err_console = Console(stderr=True)


@app.callback()
def _on_start() -> None:
    """SIGTERM (a scheduler's or `kill`'s stop) unwinds like Ctrl-C, so the temporary Prefect
    server, claims and temp files are cleaned up instead of being orphaned."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (an embedding program): leave its handler
        pass


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
    task: Annotated[
        str, typer.Option(help="clip (one label per video) or frame (segments).")
    ] = "clip",
    videos: Annotated[int, typer.Option(help="Number of videos to write.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same dataset.")] = 0,
) -> None:
    """Write a synthetic labelled video dataset (real mp4 files).

    Example: [bold]vidtag synth data/synth_clip --task clip --videos 60 --seed 0[/]
    """
    from pipeline.cli.console import progress_bar
    from pipeline.errors import UserError
    from pipeline.synth.dataset import write_dataset

    if task not in ("clip", "frame"):
        raise UserError(f"--task must be clip or frame, got {task!r}")
    with progress_bar(console) as progress:
        bar = progress.add_task(f"writing {task} videos", total=videos)
        summary = write_dataset(
            out, task=task, videos=videos, seed=seed, on_video=lambda _: progress.advance(bar)
        )
    console.print(summary.describe())


# --- extract ---------------------------------------------------------------------------------

VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's own logs.")]


@app.command()
@user_errors
def extract(config: ConfigOpt = None, set_: SetOpt = None, verbose: VerboseOpt = False) -> None:
    """Extract per-frame CNN features of every video into the feature store.

    Videos already in the store (same content, same extractor spec) are skipped; a bad video
    is reported and the rest go on. Exits 1 when any video failed.

    Example: [bold]vidtag extract -c configs/clip_activity.yaml --set features.weights=none[/]
    """
    from pipeline.cli.runs import run_extract

    cfg = load(config, set_)
    summary = run_extract(cfg, console, verbose=verbose)
    if summary["failed"]:
        raise typer.Exit(1)


# --- store -----------------------------------------------------------------------------------

StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="Store folder (default: features.store of -c).")
]


def _store(config: Path | None, set_: list[str] | None, store: Path | None):
    """The existing store of --store or the config; a UserError when there is none there."""
    from pipeline.features.store_admin import open_store

    return open_store(store if store is not None else load(config, set_).features.store)


@store_app.command("ls")
@user_errors
def store_ls(config: ConfigOpt = None, set_: SetOpt = None, store: StoreOpt = None) -> None:
    """List the extractor keys in the store: spec, videos, size.

    Example: [bold]vidtag store ls --store feature_store[/]
    """
    from rich.table import Table

    from pipeline.features.store_admin import usage

    feature_store = _store(config, set_, store)
    table = Table(title=f"feature store {feature_store.root}")
    for column in (
        "extractor key",
        "backbone",
        "weights",
        "size",
        "fps",
        "precision",
        "videos",
        "MB",
    ):
        table.add_column(column)
    rows = usage(feature_store)
    for row in rows:
        spec = row.spec or {}
        table.add_row(
            row.key, str(spec.get("backbone", "?")), str(spec.get("weights", "?")),
            str(spec.get("image_size", "?")), str(spec.get("sample_fps", "?")),
            str(spec.get("precision", "?")), str(row.videos), f"{row.bytes / 1e6:.1f}",
        )  # fmt: skip
    console.print(table)
    from pipeline.jobs import plural

    entries = sum(r.videos for r in rows)
    console.print(f"{plural(len(rows), 'extractor key')}, {plural(entries, 'entry', 'entries')}")


@store_app.command("verify")
@user_errors
def store_verify(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    store: StoreOpt = None,
    fix: Annotated[
        bool, typer.Option(help="Delete corrupt entries (recomputed next run).")
    ] = False,
) -> None:
    """Read every entry and check its checksum; exit 1 when any is corrupt (unless --fix) or
    unreadable (permissions, I/O: never deleted).

    Example: [bold]vidtag store verify --store feature_store --fix[/]
    """
    from pipeline.cli.console import progress_bar
    from pipeline.features.store_admin import verify

    feature_store = _store(config, set_, store)
    total = sum(1 for _ in feature_store.entries())
    with progress_bar(console, transient=True) as progress:
        bar = progress.add_task("verifying", total=total)
        report = verify(feature_store, fix=fix, on_entry=lambda: progress.advance(bar))
    for path, reason in report.corrupt:
        console.print(f"[red]corrupt[/] {path}: {reason}", highlight=False)
    for path, reason in report.unreadable:
        console.print(f"[red]unreadable[/] {path}: {reason}", highlight=False)
    from pipeline.jobs import plural

    console.print(
        f"checked {plural(report.checked, 'entry', 'entries')}: {len(report.corrupt)} corrupt, "
        f"{len(report.unreadable)} unreadable, {report.removed} removed"
    )
    if report.unreadable or (report.corrupt and not fix):
        raise typer.Exit(1)


@store_app.command("gc")
@user_errors
def store_gc(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    store: StoreOpt = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(help="Keep only these extractor keys (repeatable; a unique prefix will do)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be removed.")] = False,
) -> None:
    """Remove leftover temp files, corrupt entries, stale hash-cache files, other extractors.

    Example: [bold]vidtag store gc --store feature_store --keep 3f2a9c... --dry-run[/]
    """
    from pipeline.features.store_admin import gc

    report = gc(_store(config, set_, store), keep=keep, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for key in report.extractors:
        console.print(f"{verb} extractor key {key}", highlight=False)
    console.print(
        f"{verb}: {report.temp_files} temp files, {report.corrupt} corrupt entries, "
        f"{report.stale_hashes} stale hash-cache files, {len(report.extractors)} extractor keys "
        f"({report.bytes_freed / 1e6:.1f} MB)"
    )


# --- probe -----------------------------------------------------------------------------------


@app.command()
@user_errors
def probe(
    paths: Annotated[list[Path], typer.Argument(help="Video files to inspect.")],
    json_: Annotated[bool, typer.Option("--json", help="One JSON object per file.")] = False,
    backend: Annotated[str, typer.Option(help="auto, decord or opencv.")] = "auto",
) -> None:
    """Print each video's frames, fps, duration, upright size, rotation, codec and backend.

    A file that cannot be read gets an error line and the others go on; exit code 2 when any
    file failed.

    Example: [bold]vidtag probe data/videos/*.mp4 --json[/]
    """
    import json
    import warnings

    from pipeline.video.decode import VideoError
    from pipeline.video.decode import probe as probe_video

    failed = 0
    for path in paths:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                info = probe_video(path, backend=backend)
        except VideoError as exc:
            failed += 1
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            if json_:
                typer.echo(json.dumps({"path": str(path), "error": str(exc)}))
            continue
        for warning in caught:
            err_console.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
        if json_:
            typer.echo(json.dumps(info.to_dict()))
        else:
            fields = ", ".join(f"{k}={v}" for k, v in info.to_dict().items() if k != "path")
            typer.echo(f"{info.path}: {fields}")
    if len(paths) > 1:
        err_console.print(f"{len(paths) - failed} of {len(paths)} files probed")
    if failed:
        raise typer.Exit(2)


# --- train / ui ------------------------------------------------------------------------------


@app.command()
@user_errors
def train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
    test_only: Annotated[
        bool, typer.Option("--test-only", help="Only evaluate the checkpoint on the test split.")
    ] = False,
    promote: Annotated[
        bool,
        typer.Option(
            help="Make the new version @candidate even if it does not beat the current one "
            "(needed when the extractor changed)."
        ),
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Extract features (stored ones are reused), train the RNN, log and register the model.

    The new version gets the alias @challenger; it becomes @candidate (what labelling uses) only
    when it beats the current candidate on the test split by more than tracking.promote_margin.

    Example: [bold]vidtag train -c configs/clip_activity.yaml --set model.cell=lstm[/]
    """
    from pipeline.cli.runs import run_train, ui_hint
    from pipeline.tracking.mlflow import ui_command

    cfg = load(config, set_)
    outcome = run_train(
        cfg, console, resume=resume, test_only=test_only, verbose=verbose, promote=promote
    )
    extraction = outcome["extraction"]
    console.print(
        f"features: {extraction['ok']} extracted, {extraction['skipped']} reused, "
        f"{extraction['failed']} failed"
    )
    from pipeline.cli.console import print_failures

    print_failures(console, extraction["failures"])
    console.print(f"MLflow run: {outcome['run_id']} (best epoch {outcome['best_epoch']})")
    if outcome["registered_version"]:
        promoted = outcome["promotion"] == "promoted"
        aliases = "@challenger, @candidate" if promoted else "@challenger"
        console.print(
            f"registered model: models:/{cfg.tracking.registered_model}/"
            f"{outcome['registered_version']} ({aliases})",
            highlight=False,
        )
        verdict = "promoted to @candidate" if promoted else "not promoted: @candidate kept"
        console.print(f"{verdict}: {outcome['promotion_reason']}", highlight=False)
    for name, value in outcome["test_metrics"].items():
        console.print(f"  {name:<28} {value:.4f}")
    if outcome.get("min_segment_s") is not None:
        console.print(
            f"label.min_segment_s stored with the model: {outcome['min_segment_s']:g} s "
            f"({MERGE_SOURCES.get(outcome['min_segment_s_source'], '')})",
            highlight=False,
        )
    hint = ui_hint(outcome["tracking_uri"], config)
    console.print(f"review the runs: [bold]{hint}[/] (or {ui_command(outcome['tracking_uri'])})")


MERGE_SOURCES = {
    "validation": "auto: chosen on the validation videos",
    "fallback": "auto: no validation videos, the fallback",
    "config": "from the config",
    "clip": "a clip model merges nothing",
}


@app.command()
@user_errors
def ui(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Start the MLflow UI for the configured store on 127.0.0.1 (one worker: light). Ctrl-C or
    SIGTERM stops the whole server.

    Example: [bold]vidtag ui -c configs/clip_activity.yaml --port 5000[/]
    """
    import os
    import shlex
    import sys

    from pipeline.cli.server import run_server
    from pipeline.tracking.mlflow import require_store, resolve_uri, ui_command

    uri = resolve_uri(load(config, set_))
    require_store(uri)  # the UI only reads: never create an empty store
    command = shlex.split(ui_command(uri, port))
    command[0] = str(Path(sys.executable).with_name("mlflow"))
    console.print(f"MLflow UI for {uri} at [bold]http://127.0.0.1:{port}[/] (Ctrl-C stops it)")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    # Its own process group, stopped whole on Ctrl-C, SIGTERM, SIGHUP or exit: no web worker
    # keeps answering on the port after vidtag is gone.
    raise typer.Exit(run_server(command, env))


# --- models ----------------------------------------------------------------------------------


def _registry(config: Path | None, set_: list[str] | None) -> tuple[Any, str]:
    """(config, tracking URI) with MLflow pointed at an existing store (read-only commands never
    create one)."""
    from pipeline.tracking.mlflow import require_store, resolve_uri
    from pipeline.tracking.registry import use_tracking

    cfg = load(config, set_)
    uri = resolve_uri(cfg)
    require_store(uri)
    use_tracking(uri)
    return cfg, uri


NameArg = Annotated[
    str | None,
    typer.Argument(help="Registered model name (default: tracking.registered_model of -c)."),
]


@models_app.command("ls")
@user_errors
def models_ls(name: NameArg = None, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """List the registered versions, newest first: aliases, promotion decision, test metrics.

    Example: [bold]vidtag models ls -c configs/clip_activity.yaml[/]
    """
    from rich.table import Table

    from pipeline.tracking.registry import registered_versions

    cfg, uri = _registry(config, set_)
    name = name or cfg.tracking.registered_model
    versions = registered_versions(name)
    metric_names = sorted({k for v in versions for k in v.metrics if k.startswith("test_")})
    table = Table(title=f"registered model {name} ({uri})")
    for column in ("version", "aliases", "promotion", "run", *metric_names):
        table.add_column(column)
    for found in versions:
        table.add_row(
            found.version,
            " ".join(f"@{alias}" for alias in found.aliases),
            found.run_tags.get("promotion", ""),
            (found.run_id or "")[:12],
            *(_metric_cell(found.metrics.get(metric)) for metric in metric_names),
        )
    console.print(table)


def _metric_cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@models_app.command("promote")
@user_errors
def models_promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="The version that becomes @candidate.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Point @candidate at VERSION by hand (rollback undoes it).

    Example: [bold]vidtag models promote clip-activity 7 -c configs/clip_activity.yaml[/]
    """
    from pipeline.tracking.registry import move_candidate

    _registry(config, set_)
    previous = move_candidate(name, version)
    console.print(f"{name}@candidate: version {previous or '(none)'} -> {version}")


@models_app.command("rollback")
@user_errors
def models_rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Move @candidate back to the version that held it before.

    Example: [bold]vidtag models rollback clip-activity -c configs/clip_activity.yaml[/]
    """
    from pipeline.tracking.registry import rollback_candidate

    _registry(config, set_)
    current, previous = rollback_candidate(name)
    console.print(f"{name}@candidate: version {current} -> {previous}")


# --- label -----------------------------------------------------------------------------------


@app.command()
@user_errors
def label(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="models:/<name>@<alias>, models:/<name>/<version>, runs:/<run_id>/model or a "
            "local model folder.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    input: Annotated[
        Path | None, typer.Argument(help="Folder of videos (recursive), manifest or file.")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: Annotated[
        bool, typer.Option(help="Relabel videos whose outputs are already current.")
    ] = False,
    truth: Annotated[
        Path | None,
        typer.Option(
            help="Ground truth (any training annotation format): the review page shows it "
            "above the prediction, with each video's frame metrics."
        ),
    ] = None,
    verbose: VerboseOpt = False,
    live: Annotated[
        str | None,
        typer.Option(
            "--live",
            help="Label a live stream instead: a URL (rtsp://, udp://, http://...), a device "
            "(/dev/video0) or a file being written. Needs a causal frame model.",
        ),
    ] = None,
) -> None:
    """Label every video with a trained model: JSON, segments CSV and WebVTT per video, plus
    summary.csv and a review page (index.html).

    Features come from the model's own extractor spec (stored ones are reused). Videos already
    labelled by the same model are skipped; a bad video is a failed row and the rest go on.
    Exits 1 when any video failed.

    With --live SOURCE, label a stream as it plays: segments are appended to
    <name>.segments.jsonl and <name>.vtt as they become final; Ctrl-C stops cleanly.

    Example: [bold]vidtag label inbox/ --model models:/vidtag@candidate --out labels/[/]

    Example: [bold]vidtag label --live rtsp://cam1/stream --model models:/tagger@candidate
    --out live/[/]
    """
    cfg = load(config, set_)
    if (live is None) == (input is None):
        raise typer.BadParameter("give a folder/file to label, or --live SOURCE (not both)")
    if live is not None:
        from pipeline.cli.live import run_live

        summary = run_live(cfg, live, model, out, console, overwrite=overwrite)
        raise typer.Exit(1 if summary["failed"] else 0)
    from pipeline.cli.runs import run_label

    summary = run_label(
        cfg, input, model, out, console, overwrite=overwrite, verbose=verbose, truth=truth
    )
    if summary["failed"]:
        raise typer.Exit(1)


@app.command()
@user_errors
def export(
    labelled: Annotated[Path, typer.Argument(help="A folder `vidtag label` wrote (its --out).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the tool's files.")],
    to: Annotated[str, typer.Option("--to", help="The annotation tool: label-studio.")],
    document_root: Annotated[
        Path | None,
        typer.Option(help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT; default: the labelled input."),
    ] = None,
    url_prefix: Annotated[
        str, typer.Option(help="Prefix of each video's URL, before its path under the root.")
    ] = "/data/local-files/?d=",
) -> None:
    """Export labels to an annotation tool for correction: Label Studio video tasks with the
    labels as predictions (tasks.json) and the labeling interface to paste (label_config.xml).

    Import the corrected project's JSON export for training with data.annotations: export.json.

    Example: [bold]vidtag export labels/ --to label-studio --out ls/[/]
    """
    from pipeline.labeling.label_studio import export_label_studio

    if to != "label-studio":
        raise typer.BadParameter(f"unknown tool {to!r}: only label-studio", param_hint="--to")
    summary = export_label_studio(labelled, out, document_root, url_prefix)
    console.print(
        f"{summary.tasks} tasks, {summary.regions} regions, {len(summary.classes)} classes -> "
        + ", ".join(str(path) for path in summary.files)
    )


# --- watch ---------------------------------------------------------------------------------


@app.command()
@user_errors
def watch(
    inbox: Annotated[Path, typer.Argument(help="Folder that receives videos (recursive).")],
    model: Annotated[str, typer.Option("--model", "-m", help="A model, as for `vidtag label`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the inbox.")] = 0.5,
    damaged_after: Annotated[
        float,
        typer.Option(help="Seconds a file may stay unchanged and unreadable before it fails."),
    ] = 10.0,
) -> None:
    """Label each new video of INBOX once it is complete (unchanged between two looks and
    readable to its end), with the same outputs, skip rule and failure rows as `vidtag label`.

    The model is loaded once and stays warm; each video is labelled by direct library calls
    (no Prefect run), seconds after it lands. Videos already labelled are skipped, so a
    restart relabels nothing. Ctrl-C or SIGTERM stops after the video in hand, with a summary.

    Example: [bold]vidtag watch inbox/ --model models:/vidtag@candidate --out labels/[/]
    """
    from pipeline.cli.watch import run_watch

    run_watch(load(config, set_), inbox, model, out, console, poll, damaged_after)


# --- serve ---------------------------------------------------------------------------------


@app.command()
@user_errors
def serve(
    schedules: Annotated[
        Path, typer.Option("--file", "-f", help="Schedules file: named deployments.")
    ] = Path("configs/schedules.yaml"),
    limit: Annotated[
        int | None, typer.Option(help="Most flow runs at once (default: no limit).")
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Register the scheduled deployments of a schedules file and run them as they come due.

    Needs a Prefect server: `vidtag server start`, or one in PREFECT_API_URL (schedules never
    run on Prefect's temporary server). Ctrl-C stops serving; the schedules stay active, and
    on restart the runs missed meanwhile collapse to the latest one per deployment.

    Example: [bold]vidtag serve -f configs/schedules.yaml[/]
    """
    from pipeline.cli.prefect_server import use_running_server

    use_running_server(lambda message: console.print(message, highlight=False))
    from flows.prefect_env import configure

    configure(verbose)
    from flows.deploy import serve_schedules

    serve_schedules(schedules, limit=limit)


# --- server --------------------------------------------------------------------------------

server_app = typer.Typer(
    help="A local Prefect server in the background that every command reuses.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


@server_app.command("start")
@user_errors
def server_start(
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for it to answer.")] = 90.0,
) -> None:
    """Start `prefect server start` on 127.0.0.1 in the background (its own process group) and
    wait until it answers. Its PID file and log are in the Prefect home (PREFECT_HOME, default
    ~/.prefect). While it is up, extract, train, label, watch and serve use it instead of a
    temporary server (unless PREFECT_API_URL says otherwise).

    Example: [bold]vidtag server start --port 4200[/]
    """
    from pipeline.cli.prefect_server import pid_file, start, status

    if status().up:
        console.print(f"{status().describe()} (already running)", highlight=False)
        return
    with console.status("starting the Prefect server"):
        started = start(port=port, timeout_s=timeout)
    console.print(started.describe(), highlight=False)
    console.print(f"log: {started.record.log}  PID file: {pid_file()}", highlight=False)


@server_app.command("stop")
@user_errors
def server_stop(
    timeout: Annotated[float, typer.Option(help="Seconds between SIGTERM and SIGKILL.")] = 10.0,
) -> None:
    """Stop the server's whole process group (SIGTERM, then SIGKILL) and remove its PID file.

    Example: [bold]vidtag server stop[/]
    """
    from pipeline.cli.prefect_server import stop

    before = stop(grace_s=timeout)
    if before.record is None or before.state == "down":
        console.print(before.describe().replace("down", "not running"), highlight=False)
    else:
        console.print(f"stopped the Prefect server (pid {before.record.pid})", highlight=False)


@server_app.command("status")
@user_errors
def server_status() -> None:
    """Say whether the server is up, with its URL, PID and uptime. Exits 1 when it is down.

    Example: [bold]vidtag server status[/]
    """
    from pipeline.cli.prefect_server import status

    current = status()
    console.print(current.describe(), highlight=False)
    if not current.up:
        raise typer.Exit(1)


def unwrap_paragraphs(text: str) -> str:
    """Docstring paragraphs as one line each, so that ``--help`` wraps them to the terminal
    (Typer's rich mode keeps every line break after the first paragraph)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _unwrap_help(typer_app: typer.Typer) -> None:
    """Every command's and group's help text, unwrapped (source lines stay under 100 columns)."""
    for info in typer_app.registered_commands:
        doc = info.help or (info.callback.__doc__ if info.callback else None)
        if doc:
            info.help = unwrap_paragraphs(doc)
    for group in typer_app.registered_groups:
        _unwrap_help(group.typer_instance)


_unwrap_help(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
