"""The package's layering, read from the source: chapters never import each other (a chapter
subpackage's modules may import each other, never another chapter's), nothing below the
chapters imports them, codecs.base does not import the rate matcher, and each chapter notebook
imports only its own chapter (module or subpackage)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "nicspec_utils"
CHAPTERS = "nicspec_utils.chapters"
# The modules that sit above the chapters and may use them.
ABOVE_CHAPTERS = {"nicspec_utils.book", "nicspec_utils.cli"}
# notebook -> the one chapter module it may import (None: the chapter lives in an engine)
NOTEBOOK_CHAPTER = {
    "01_corruption_benchmark": "corruption_benchmark",
    "02_rate_distortion": "rate_distortion",
    "03_spectral_analysis": "spectral_analysis",
    "03b_fourier_heatmaps": "fourier_heatmaps",
    "04_lowpass_theory": "lowpass_theory",
    "05_classification": "classification",
    "06_beyond_the_paper": "beyond_the_paper",
    "07_claims": None,  # the summary page reads the ledger, no chapter
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code, relative imports resolved."""
    return _imports_of(path.read_text(), _module_name(path), path.name == "__init__.py")


def _imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """The imports of ``source``, the text of ``module`` (a package's ``__init__`` when
    ``is_package``)."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
    return out


def _chapter_of(module: str) -> str | None:
    if not module.startswith(CHAPTERS + "."):
        return None
    return module.split(".")[2]


MODULES = sorted(PKG.rglob("*.py"))


def test_the_package_has_chapters() -> None:
    chapters = {_chapter_of(_module_name(p)) for p in MODULES} - {None}
    assert {"rate_distortion", "spectral_analysis", "lowpass_theory"} <= chapters


# chapter subpackages split by job (#13); each has at least these modules
SPLIT_CHAPTERS = (
    "corruption_benchmark",
    "lowpass_theory",
    "rate_distortion",
    "spectral_analysis",
)
SPLIT_JOBS = ("settings", "study", "claims", "plots")


@pytest.mark.parametrize("chapter", SPLIT_CHAPTERS)
def test_a_split_chapter_is_a_subpackage_by_job(chapter: str) -> None:
    folder = PKG / "chapters" / chapter
    assert not (PKG / "chapters" / f"{chapter}.py").exists(), f"{chapter}.py beside its package"
    assert {f"{j}.py" for j in ("__init__", *SPLIT_JOBS)} <= {p.name for p in folder.glob("*.py")}


def test_a_chapter_subpackage_is_one_chapter() -> None:
    """Modules of one chapter subpackage all belong to it: the rule above treats them as one."""
    study = PKG / "chapters" / "corruption_benchmark" / "study.py"
    claims = PKG / "chapters" / "corruption_benchmark" / "claims.py"
    assert _chapter_of(_module_name(study)) == _chapter_of(_module_name(claims))
    assert _chapter_of(_module_name(study)) == "corruption_benchmark"
    # a relative import from a subpackage's module resolves inside the subpackage
    assert f"{CHAPTERS}.corruption_benchmark.study" in _imports(claims)
    # ... and one that reaches another chapter is seen as that chapter
    module = f"{CHAPTERS}.corruption_benchmark.claims"
    used = _imports_of("from ..rate_distortion.study import rd_sweep\n", module)
    assert {_chapter_of(m) for m in used} == {"rate_distortion"}
    used = _imports_of("from .study import band_table\nfrom ... import stats\n", module)
    assert {_chapter_of(m) for m in used} - {None} == {"corruption_benchmark"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_layering(path: Path) -> None:
    module = _module_name(path)
    own = _chapter_of(module)
    chapters_used = {c for c in map(_chapter_of, _imports(path)) if c is not None}
    if own is not None:
        assert chapters_used <= {own}, f"{module} imports chapters {chapters_used - {own}}"
    elif not any(module == m or module.startswith(m + ".") for m in ABOVE_CHAPTERS):
        assert not chapters_used, f"{module} sits below the chapters but imports {chapters_used}"


def test_codec_base_does_not_import_the_rate_matcher() -> None:
    assert not any("ratematch" in m for m in _imports(PKG / "codecs" / "base.py"))


@pytest.mark.parametrize("notebook", sorted(NOTEBOOK_CHAPTER))
def test_a_notebook_imports_only_its_own_chapter(notebook: str) -> None:
    text = (REPO / "notebooks" / f"{notebook}.md").read_text()
    used = set(re.findall(r"nicspec_utils\.chapters(?:\.(\w+)| import (\w+))", text))
    names = {a or b for a, b in used}
    allowed = {NOTEBOOK_CHAPTER[notebook]} - {None}
    assert names <= allowed, f"{notebook} imports chapters {names - allowed}"
