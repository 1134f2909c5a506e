"""Sphinx extension for the nicspec book: the ``nicspec-models`` directive.

``{nicspec-models}`` renders the shipped NIC models as a table at build time, from
``data/models/manifest.json`` (written by ``nicspec models report``) when it exists, otherwise
from the metadata inside each checkpoint. It never fails the build: a missing package or
manifest becomes a sentence on the page and a warning in the log.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

LOG = logging.getLogger(__name__)


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        return format(value, fmt)
    except (TypeError, ValueError):
        return str(value)


def _lmbda(info: dict[str, Any]) -> str:
    if info.get("lmbda_min") is not None and info.get("lmbda_max") is not None:
        return f"{info['lmbda_min']:g} – {info['lmbda_max']:g} (variable)"
    return _num(info.get("lmbda"), "g")


def _rows(name: str, info: dict[str, Any]) -> list[str]:
    size = info.get("bytes")
    common = (
        f"| `{name}` | {info.get('architecture', '?')} | {info.get('metric', '?')} "
        f"| {_lmbda(info)} | {_num(info.get('steps'), 'd')} "
        f"| {_num(size / 1e6 if size else None, '.1f')} "
    )
    kodak = info.get("kodak_real_coding") or {}
    if not kodak:
        return [common + "| – | – | – | – |"]
    out = []
    for setting, m in kodak.items():
        label = "–" if setting == "default" else f"λ={setting}"
        metrics = (
            _num(m.get("bpp"), ".3f"),
            _num(m.get("psnr"), ".2f"),
            _num(m.get("ms_ssim"), ".4f"),
        )
        out.append(common + f"| {label} | " + " | ".join(metrics) + " |")
    return out


def models_markdown(repo: Path) -> tuple[str, list[Path]]:
    """The page body (MyST markdown) and the files it was read from."""
    try:
        from nicspec_utils.models import (
            MODELS_DIR,
            manifest_path,
            read_checkpoint_meta,
            shipped_models,
        )
    except ImportError as exc:
        LOG.warning("nicspec-models: cannot import nicspec_utils (%s)", exc)
        return f"*The model list needs the `nicspec_utils` package ({exc}): `make book`.*", []

    manifest = manifest_path()
    models = shipped_models()
    if not models:
        return "*No checkpoints in `data/models` yet: `nicspec train --missing` trains them.*", []
    used = [manifest] if manifest.exists() else []
    lines = [
        "| model | architecture | metric | λ | steps | MB | Kodak at | bpp | PSNR (dB) | MS-SSIM |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in models.items():
        info = dict(entry)
        if "architecture" not in info:  # no manifest entry: the checkpoint's own metadata
            path = MODELS_DIR / entry["file"]
            used.append(path)
            try:
                info.update(read_checkpoint_meta(path))
            except Exception as exc:  # a broken file is shown, not fatal
                LOG.warning("nicspec-models: %s: %s", path, exc)
            info.setdefault("bytes", path.stat().st_size if path.exists() else None)
        lines.extend(_rows(name, info))

    if manifest.exists():
        generated = json.loads(manifest.read_text()).get("generated_by", "nicspec models report")
        source = (
            f"Read from `data/models/manifest.json` ({generated}). Kodak columns: all 24 images, "
            "real entropy-coded bitstreams."
        )
    else:
        source = (
            "`data/models/manifest.json` does not exist yet (`nicspec models report` writes it, "
            "with the Kodak benchmark): the columns come from each checkpoint's own metadata."
        )
    body = [source, "", *lines, ""]
    for fig, caption in (
        ("kodak-rd.png", "Rate–distortion on Kodak."),
        ("training-curves.png", "Training curves."),
    ):
        path = (MODELS_DIR / "figures" / fig).resolve()
        if path.exists() and path.is_relative_to(repo.resolve()):
            used.append(path)
            # a leading "/" is the book's root (the repository) in Sphinx paths
            rel = path.relative_to(repo.resolve()).as_posix()
            body += [f"```{{figure}} /{rel}", caption, "```", ""]
    return "\n".join(body), used


class ModelsDirective(SphinxDirective):
    """``{nicspec-models}``: the table of shipped models."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        repo = Path(self.env.srcdir)
        text, used = models_markdown(repo)
        for path in used:
            self.env.note_dependency(str(path))
        container = nodes.container()
        lines = StringList(text.splitlines(), source="nicspec-models")
        self.state.nested_parse(lines, 0, container)
        return container.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("nicspec-models", ModelsDirective)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
