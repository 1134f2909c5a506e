"""book/profiles.yaml against the chapters: every profile (paper included, which no CI machine
runs) names only chapters that exist, parameters their `parameters` cell defines, shipped models
and known corruptions."""

from __future__ import annotations

import ast
import re
from typing import Any

import jupytext
import pytest

from nicspec_utils import book
from nicspec_utils.corruptions import parse_corruptions
from nicspec_utils.nic.models import shipped_models

PROFILES = book.load_profiles()
CHAPTERS = book.chapter_names()
MODEL_NAME = re.compile(r"\bsh-[a-z0-9.-]*[a-z0-9]")


def _parameter_names(chapter: str) -> set[str]:
    nb = jupytext.read(book.NOTEBOOKS / f"{chapter}.md")
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{chapter}: {len(cells)} parameters cells"
    names = set()
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_the_profiles_exist() -> None:
    assert {"smoke", "quick", "paper", "protocol"} <= set(PROFILES)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_nicspec_book_accepts_the_profile(profile: str) -> None:
    """``nicspec book --profile NAME`` gets past the profile check (it stops at the chapter
    list, before any work); an unknown name is refused."""
    from nicspec_utils.errors import UsageError

    with pytest.raises(UsageError, match="unknown chapter"):
        book.build(profile, ["no-such-chapter"], html=False)
    with pytest.raises(UsageError, match="unknown profile"):
        book.build(profile + "-nope", ["no-such-chapter"], html=False)


def test_paper_says_what_it_leaves_out() -> None:
    assert "leaves out" in PROFILES["paper"]["description"]
    assert "cluster" in PROFILES["protocol"]["description"]


def test_protocol_is_issue_19s_list() -> None:
    """All images, all 15 corruptions at 5 severities, the whole training set, ImageNet's
    1,300 images at severity 3, heat maps at grid 64 / crop 512 on at least 8 (image, draw)
    pairs: the protocol profile leaves nothing of #19's list out (None: every image)."""
    ch = PROFILES["protocol"]["chapters"]
    assert ch["01_corruption_benchmark"]["kodak_images"] is None
    assert ch["01_corruption_benchmark"]["clic_images"] is None
    assert ch["01_corruption_benchmark"]["severities"] == "1-5"
    rd = ch["02_rate_distortion"]
    assert rd["severity"] == "1-5" and rd["corruptions"] == "all" and rd["nic_models"] == "all"
    assert rd["corrupted_images"] is None and rd["corrupted_datasets"] == "kodak,clic"
    vr = "scale-hyperprior-vr"
    fixed = {n for n, m in shipped_models().items() if m.get("architecture") != vr}
    assert set(rd["corrupted_models"].split(",")) == fixed
    sa = ch["03_spectral_analysis"]
    assert set(sa["gr_models"].split(",")) == fixed and sa["corruptions"] == "all"
    fh = ch["03b_fourier_heatmaps"]
    assert (fh["grid"], fh["crop"]) == (64, 512) and fh["kodak_images"] is None
    assert ch["04_lowpass_theory"]["train_images"] is None
    cls = ch["05_classification"]
    assert cls["imagenet_images"] is None and cls["corruptions"] == "all"
    assert cls["severity"] == 3 and cls["psnr_matching"] == "all"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_covers_every_chapter(profile: str) -> None:
    chapters = PROFILES[profile].get("chapters") or {}
    assert sorted(chapters) == CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_profile_parameters_are_the_chapters_own(chapter: str) -> None:
    names = _parameter_names(chapter)
    for profile, spec in PROFILES.items():
        given = set((spec.get("chapters") or {}).get(chapter) or {})
        assert given <= names, f"{profile}/{chapter}: unknown {sorted(given - names)}"


def _values(chapter: str) -> list[tuple[str, str, Any]]:
    return [
        (profile, key, value)
        for profile, spec in PROFILES.items()
        for key, value in ((spec.get("chapters") or {}).get(chapter) or {}).items()
    ]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_profile_models_and_corruptions_exist(chapter: str) -> None:
    shipped = set(shipped_models())
    for profile, key, value in _values(chapter):
        if not isinstance(value, str):
            continue
        for name in MODEL_NAME.findall(value):
            assert name in shipped, f"{profile}/{chapter}/{key}: no shipped model {name!r}"
        if "corruptions" in key and value:
            assert parse_corruptions(value), f"{profile}/{chapter}/{key}"
