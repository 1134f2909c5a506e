"""Errors that the CLI turns into one clear line and an exit code."""

from __future__ import annotations


class NicspecError(Exception):
    """Base class: a message meant for a person, and the process exit code."""

    exit_code = 1


class UsageError(NicspecError):
    """Bad command-line input: unknown names, values out of range (exit code 2)."""

    exit_code = 2


class DataError(NicspecError):
    """Bad or missing data: unreadable files, failed checksums, no network (exit code 1)."""

    exit_code = 1


class Interrupted(NicspecError):
    """Stopped on request (SIGTERM / Ctrl-C) after saving what a rerun needs (exit code 130)."""

    exit_code = 130
