"""The ``nicspec`` command line: :mod:`.main` builds the parser from one small module per
command; :mod:`.args` holds the argument groups that several commands share."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
