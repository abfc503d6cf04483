"""The ``vidtag`` command line: a thin Typer shell over ``flows/`` and ``pipeline/``."""

from pipeline.cli.app import app

__all__ = ["app"]
