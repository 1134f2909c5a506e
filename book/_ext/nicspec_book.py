"""Sphinx extension for the nicspec book: the ``nicspec-models``, ``nicspec-profiles`` and
``nicspec-timings`` directives.

``{nicspec-models}`` renders the shipped NIC models as a table at build time, from
``data/models/manifest.json`` (written by ``nicspec models report``) when it exists, otherwise
from the metadata inside each checkpoint. ``{nicspec-profiles}`` renders ``book/profiles.yaml``
(the papermill parameters of each chapter under each profile) and ``{nicspec-timings}`` renders
``book/chapters/timings.json`` (written by ``nicspec book``). None of them fails the build: a
missing package or file becomes a sentence on the page and a warning in the log.

Two page hooks: duplicate ``<script>`` entries are dropped, and the chapters' launch (Binder)
buttons open the paired ``notebooks/NN_name.ipynb`` instead of the generated executed copy.

One post-transform (:class:`WideFigures`): every figure links to its full-resolution image,
and a figure wider than the text column (:data:`WIDE_PX`) takes the page's full width (its
notebook cell gets sphinx-book-theme's ``tag_full-width``, a ``figure`` directive the class
``nicspec-full-width``), so the G/R maps, the corruption grid and the heat maps are not shrunk
into the column.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.osutil import relative_uri

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
    """One table row per Kodak setting: the measured numbers first (beside the model's name, so
    they are on screen however narrow the page), then what the model is."""
    size = info.get("bytes")
    about = (
        f"| {info.get('metric', '?')} | {_lmbda(info)} | {_num(info.get('steps'), 'd')} "
        f"| {_num(size / 1e6 if size else None, '.1f')} | {info.get('architecture', '?')} |"
    )
    kodak = info.get("kodak_real_coding") or {}
    if not kodak:
        return [f"| `{name}` | – | – | – | – " + about]
    out = []
    for setting, m in kodak.items():
        label = "–" if setting == "default" else f"λ={setting}"
        metrics = (
            _num(m.get("bpp"), ".3f"),
            _num(m.get("psnr"), ".2f"),
            _num(m.get("ms_ssim"), ".4f"),
        )
        out.append(f"| `{name}` | {label} | " + " | ".join(metrics) + " " + about)
    return out


MODEL_COLUMNS = (
    "model", "Kodak at", "bpp", "PSNR (dB)", "MS-SSIM", "metric", "λ", "steps", "MB",
    "architecture",
)  # fmt: skip


def models_markdown(repo: Path) -> tuple[str, list[Path]]:
    """The page body (MyST markdown) and the files it was read from."""
    try:
        from nicspec_utils.nic.models import (
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
    lines = ["| " + " | ".join(MODEL_COLUMNS) + " |", "|---" * len(MODEL_COLUMNS) + "|"]
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
    missing = _not_available()
    for row in missing:  # the paper's models with a recipe but no checkpoint (ELIC)
        lines.append(
            f"| `{row['model']}` | not available | – | – | – | {row['metric']} "
            f"| {row['lmbda']:g} | – | – | {row['architecture']} |"
        )

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
    if missing:
        first = missing[0]
        names = ", ".join(f"`{r['model']}`" for r in missing)
        body += [
            f"**Not available**: {names}, "
            f"{first['family']} at N = {first['N']}, M = {first['M']}: {first['reason']}. "
            f"Each is trained by `{first['command'].replace(first['model'], 'NAME')}`, all of "
            f"them by `{first['gpu_command']}`.",
            "",
        ]
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


def _not_available() -> list[dict[str, Any]]:
    """The paper's models that are not here (ELIC), from ``nic.modelcard`` (none on error)."""
    try:
        from nicspec_utils.nic.modelcard import not_available

        return not_available()
    except Exception as exc:  # a broken recipes file is reported, not fatal
        LOG.warning("nicspec-models: cannot list the models that are not available (%s)", exc)
        return []


PROFILES = Path("book") / "profiles.yaml"
TIMINGS = Path("book") / "chapters" / "timings.json"


def _cell(value: Any) -> str:
    if value is None:
        return "all"
    if isinstance(value, bool):
        return "yes" if value else "no"
    # a space after each comma lets long lists wrap in the table
    return f"`{str(value).replace(',', ', ')}`".replace("|", "\\|")


def profiles_markdown(repo: Path) -> tuple[str, list[Path]]:
    """``book/profiles.yaml`` as one table per profile (parameter x chapter)."""
    path = repo / PROFILES
    try:
        import yaml

        profiles = (yaml.safe_load(path.read_text()) or {}).get("profiles") or {}
    except Exception as exc:  # missing file, broken YAML, no PyYAML: say so, do not fail
        LOG.warning("nicspec-profiles: cannot read %s: %s", path, exc)
        return f"*The profiles could not be read from `{PROFILES.as_posix()}` ({exc}).*", []
    body: list[str] = []
    for name, profile in profiles.items():
        profile = profile or {}
        chapters = profile.get("chapters") or {}
        body += [f"**{name}** — {profile.get('description', '')}", ""]
        if not chapters:
            body += ["*(no parameters: every chapter runs with its defaults)*", ""]
            continue
        params: list[str] = []
        for values in chapters.values():
            params += [k for k in (values or {}) if k not in params]
        body.append("| parameter | " + " | ".join(f"`{c}`" for c in chapters) + " |")
        body.append("|---" * (len(chapters) + 1) + "|")
        for key in params:
            cells = [
                _cell((values or {})[key]) if key in (values or {}) else "(default)"
                for values in chapters.values()
            ]
            body.append(f"| `{key}` | " + " | ".join(cells) + " |")
        body.append("")
    body.append(
        "`all` (a `null` in the file) means every image, model or rate point; `(default)` means "
        "the chapter's own default from its `parameters` cell."
    )
    return "\n".join(body), [path]


def timings_markdown(repo: Path) -> tuple[str, list[Path]]:
    """``book/chapters/timings.json`` as a table: chapter, profile, CPUs, seconds."""
    path = repo / TIMINGS
    if not path.exists():
        return (
            f"*No `{TIMINGS.as_posix()}` yet: `nicspec book --profile NAME` writes it.*",
            [],
        )
    try:
        timings = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        LOG.warning("nicspec-timings: cannot read %s: %s", path, exc)
        return f"*`{TIMINGS.as_posix()}` could not be read ({exc}).*", []
    lines = [
        "| chapter | profile | CPUs | wall-clock time |",
        "|---|---|---|---|",
    ]
    total = 0.0
    for chapter, info in sorted(timings.items()):
        info = info or {}
        seconds = info.get("seconds")
        total += seconds or 0.0
        lines.append(
            f"| `{chapter}` | {info.get('profile', '?')} | {_num(info.get('cpus'), 'd')} "
            f"| {_num(seconds, '.1f')} s |"
        )
    lines.append(f"| **total** | | | {total:.1f} s |")
    return "\n".join(lines), [path]


class _MarkdownDirective(SphinxDirective):
    """A directive whose body is MyST markdown made at build time from repository files."""

    has_content = False

    def markdown(self, repo: Path) -> tuple[str, list[Path]]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        repo = Path(self.env.srcdir)
        text, used = self.markdown(repo)
        for path in used:
            self.env.note_dependency(str(path))
        container = nodes.container()
        lines = StringList(text.splitlines(), source=self.name)
        self.state.nested_parse(lines, 0, container)
        return container.children


class ProfilesDirective(_MarkdownDirective):
    """``{nicspec-profiles}``: the book's profiles and each chapter's parameters."""

    def markdown(self, repo: Path) -> tuple[str, list[Path]]:
        return profiles_markdown(repo)


class TimingsDirective(_MarkdownDirective):
    """``{nicspec-timings}``: the chapters' last run times."""

    def markdown(self, repo: Path) -> tuple[str, list[Path]]:
        return timings_markdown(repo)


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


def dedupe_scripts(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Drop repeated ``<script>`` entries (same file or inline body, same attributes) from a page.

    Under Sphinx 7.4, sphinx-thebe 0.3.1's inline configuration reaches every page twice (once as
    file ``None``, once as ``""``, which Sphinx does not see as equal). It declares
    ``const THEBE_JS_URL``, so the second copy is a SyntaxError in every reader's console. The
    first copy of each script is kept, in place.
    """
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        name = str(getattr(js, "filename", js) or "")
        key = (name, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    if len(unique) != len(scripts):
        context["script_files"] = unique


# Launch buttons (Binder): sphinx-book-theme points them at the page's source, which for a
# chapter is the executed book/chapters/NN_name.ipynb -- generated by `nicspec book`, not in the
# repository. Binder gets notebooks/NN_name.ipynb instead, which the repository's postBuild
# pairs from the committed text notebook notebooks/NN_name.md (see book/reproducibility.md).
EXECUTED_PREFIX = "book/chapters/"
LAUNCH_PREFIX = "notebooks/"


def _relaunch(buttons: Any) -> int:
    """Rewrite executed-chapter paths in launch-button URLs, in place; return how many."""
    changed = 0
    for button in buttons if isinstance(buttons, list) else []:
        if not isinstance(button, dict):
            continue
        changed += _relaunch(button.get("buttons"))
        url = button.get("url")
        if button.get("type") == "link" and isinstance(url, str) and EXECUTED_PREFIX in url:
            button["url"] = url.replace(EXECUTED_PREFIX, LAUNCH_PREFIX, 1)
            changed += 1
    return changed


def launch_from_notebooks(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Point a chapter's launch buttons at ``notebooks/`` (after the theme made them)."""
    if not pagename.startswith(EXECUTED_PREFIX):
        return
    for group in context.get("header_buttons") or []:
        if isinstance(group, dict) and group.get("label") == "launch-buttons":
            _relaunch(group.get("buttons"))


# A figure whose natural width is more than this many pixels is shrunk in the text column
# (688 px wide on a 1280 px screen; 936 px in the full-width layout): it gets the full width.
WIDE_PX = 800
FULL_WIDTH_CLASS = "tag_full-width"  # sphinx-book-theme's class for a full-width cell
WIDE_IMAGE_CLASS = "nicspec-wide"
WIDE_FIGURE_CLASS = "nicspec-full-width"  # a wide figure directive (book/_static/nicspec.css)
FULLRES_CLASS = "nicspec-fullres"


def natural_width(path: Path) -> int | None:
    """The width in pixels of an image file (None when it cannot be read)."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            return int(image.size[0])
    except Exception:  # a missing file, an SVG: no layout change
        return None


def is_wide(width: int | None, limit: int = WIDE_PX) -> bool:
    """Whether a figure ``width`` px wide needs more than the text column."""
    return width is not None and width > limit


def _enclosing(node: nodes.Node, cls: str) -> nodes.Element | None:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, nodes.Element) and cls in parent.get("classes", []):
            return parent
        parent = parent.parent
    return None


class WideFigures(SphinxPostTransform):
    """Figures: a link to the full-resolution image around each (cell outputs and ``figure``
    directives alike), and the full-width layout for those wider than :data:`WIDE_PX`: the
    cell of a cell output (``tag_full-width``), the ``figure`` of a directive
    (:data:`WIDE_FIGURE_CLASS`, book/_static/nicspec.css)."""

    default_priority = 900
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        builder = self.app.builder
        imagedir = getattr(builder, "imagedir", None)
        if not imagedir:
            return
        imgpath = relative_uri(builder.get_target_uri(self.env.docname), imagedir)
        for image in list(self.document.findall(nodes.image)):
            path = (image.get("candidates") or {}).get("*", image.get("uri", ""))
            if path not in self.env.images:
                continue
            output = _enclosing(image, "cell_output")
            if is_wide(natural_width(Path(self.env.srcdir) / path)):
                image["classes"].append(WIDE_IMAGE_CLASS)
                if output is not None:
                    holder, cls = _enclosing(output, "cell") or output, FULL_WIDTH_CLASS
                else:  # not the theme's "full-width": its script fails on a page without a
                    # table of contents (it hides that sidebar behind full-width content)
                    holder, cls = image.parent, WIDE_FIGURE_CLASS
                    if not isinstance(holder, nodes.figure):
                        holder = None
                if holder is not None and cls not in holder["classes"]:
                    holder["classes"].append(cls)
            if isinstance(image.parent, nodes.reference):
                continue
            name = self.env.images[path][1]
            link = nodes.reference(
                "",
                "",
                internal=True,
                refuri=f"{imgpath}/{name}",
                classes=[FULLRES_CLASS],
                reftitle="Open the figure at full resolution",
            )
            image.replace_self(link)
            link.append(image)


def setup(app: Any) -> dict[str, Any]:
    app.add_post_transform(WideFigures)
    app.add_directive("nicspec-models", ModelsDirective)
    app.add_directive("nicspec-profiles", ProfilesDirective)
    app.add_directive("nicspec-timings", TimingsDirective)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("html-page-context", launch_from_notebooks, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
