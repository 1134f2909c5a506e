"""Build the book: jupytext (text notebooks -> .ipynb) -> papermill (a profile's parameters) ->
jupyter-book (static HTML). ``nicspec book --profile smoke|quick|paper [--chapters ...]``.

Chapters are ``notebooks/NN_name.md`` (MyST notebooks paired with ``.ipynb`` by jupytext; the
``.ipynb`` files are generated, never edited). Executed notebooks land in ``book/chapters/``,
which ``_toc.yml`` lists; run times go to ``book/chapters/timings.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .errors import DataError, NicspecError, UsageError

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
EXECUTED = REPO / "book" / "chapters"
PROFILES_FILE = REPO / "book" / "profiles.yaml"


class ChapterFailed(NicspecError):
    """A chapter raised while executing (exit code 1)."""


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, dict[str, Any]]:
    """Profile name -> {"description": ..., "chapters": {chapter: parameters}}."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read profiles {path}: {exc}") from None
    return raw.get("profiles", {})


def chapter_names() -> list[str]:
    """Chapters in reading order: the stems of ``notebooks/NN_*.md``."""
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.md"))


def chapter_parameters(profile: str, chapter: str) -> dict[str, Any]:
    """The papermill parameters of one chapter under a profile."""
    profiles = load_profiles()
    if profile not in profiles:
        raise UsageError(f"unknown profile {profile!r}; choose from {', '.join(profiles)}")
    return dict((profiles[profile].get("chapters") or {}).get(chapter) or {})


def pair(chapter: str) -> Path:
    """Write ``notebooks/<chapter>.ipynb`` from its text twin (jupytext); return its path."""
    import jupytext

    source = NOTEBOOKS / f"{chapter}.md"
    target = NOTEBOOKS / f"{chapter}.ipynb"
    nb = jupytext.read(source)
    nb.metadata.setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
    )
    jupytext.write(nb, target, fmt="ipynb")
    return target


def execute(chapter: str, profile: str, log_output: bool = False) -> float:
    """Execute one chapter with papermill under a profile; return seconds taken."""
    import papermill as pm

    source = pair(chapter)
    EXECUTED.mkdir(parents=True, exist_ok=True)
    target = EXECUTED / f"{chapter}.ipynb"
    partial = EXECUTED / f".{chapter}.partial.ipynb"
    params = chapter_parameters(profile, chapter)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(source),
            str(partial),
            parameters=params,
            kernel_name="python3",
            cwd=str(REPO),
            log_output=log_output,
            progress_bar=False,
        )
    except pm.PapermillExecutionError as exc:
        raise ChapterFailed(
            f"chapter {chapter} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
            f"the partly executed notebook is {partial}"
        ) from None
    os.replace(partial, target)
    return time.perf_counter() - start


def build_html(builder: str = "html") -> Path:
    """Run ``jupyter-book build`` on the repository root; return the output folder."""
    script = Path(sys.executable).parent / "jupyter-book"
    if not script.exists():
        raise UsageError("jupyter-book is not installed: pip install -e '.[book]'")
    cmd = [str(script), "build", str(REPO), "--builder", builder]
    done = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        print(tail, file=sys.stderr)
        raise DataError("jupyter-book build failed (its last lines are above)")
    return REPO / "_build" / "html"


def build(profile: str, chapters: list[str] | None = None, html: bool = True) -> dict[str, Any]:
    """Execute the chapters under a profile, record their times, then build the site."""
    load_profiles()  # fail early on a broken profiles file
    chapter_parameters(profile, "")  # validates the profile name
    names = chapters or chapter_names()
    unknown = sorted(set(names) - set(chapter_names()))
    if unknown:
        raise UsageError(f"unknown chapter(s) {unknown}; chapters: {', '.join(chapter_names())}")
    timings_path = EXECUTED / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    for name in names:
        print(f"book: executing {name} ({profile})", flush=True)
        seconds = execute(name, profile)
        timings[name] = {"profile": profile, "seconds": round(seconds, 1), "cpus": os.cpu_count()}
        print(f"book: {name} done in {seconds:.0f} s", flush=True)
    from .io import atomic_write_json

    atomic_write_json(timings_path, timings)
    out = build_html() if html else EXECUTED
    return {"timings": timings, "output": str(out)}


def _cmd_book(args: argparse.Namespace) -> int:
    chapters = [c for c in (args.chapters or "").split(",") if c] or None
    result = build(args.profile, chapters, html=not args.no_html)
    print(f"book: site in {result['output']}")
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec book``."""
    p = subparsers.add_parser("book", help="execute the chapters (papermill) and build the site")
    p.add_argument("--profile", default="quick", help="smoke, quick (default) or paper")
    p.add_argument("--chapters", help="comma-separated chapter names (default: all)")
    p.add_argument("--no-html", action="store_true", help="execute only; skip jupyter-book")
    p.set_defaults(func=_cmd_book)
