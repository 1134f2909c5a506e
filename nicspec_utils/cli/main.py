"""The ``nicspec`` parser and entry point: one sub-command per concern; errors as one line and
an exit code (2: usage, 1: data)."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from .. import __version__
from ..errors import NicspecError

# Each module exposes ``add_cli(subparsers)``, which registers its sub-commands and sets
# ``func`` (taking the parsed namespace, returning an exit code) through ``set_defaults``.
COMMAND_MODULES = (
    "nicspec_utils.cli.data",
    "nicspec_utils.cli.corrupt",
    "nicspec_utils.cli.eval",
    "nicspec_utils.cli.train",
    "nicspec_utils.cli.models",
    "nicspec_utils.cli.book",
    "nicspec_utils.cli.fhm",
    "nicspec_utils.cli.classify",
    "nicspec_utils.cli.results",
)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``nicspec: error:`` line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog.removeprefix("nicspec").strip()
        self.exit(2, f"nicspec: error: {where + ': ' if where else ''}{message}\n")


def _one_line_warning(message: Warning | str, category: type[Warning], *args: object) -> str:
    return f"nicspec: warning: {message}\n"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = OneLineParser(
        prog="nicspec",
        description="Neural image compression: generalisation, robustness and spectral biases.",
    )
    parser.add_argument("--version", action="version", version=f"nicspec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        add_cli = getattr(module, "add_cli", None)
        if add_cli is not None:
            add_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nicspec`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    # compressai's import calls torch.jit.script, which recent torch deprecates noisily.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    try:
        return int(args.func(args) or 0)
    except NicspecError as exc:
        print(f"nicspec: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nicspec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
