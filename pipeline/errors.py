"""Errors a user can act on. The CLI prints their message (no traceback) and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Base of every error whose message alone tells the user what is wrong."""
