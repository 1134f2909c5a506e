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


def test_the_three_profiles_exist() -> None:
    assert {"smoke", "quick", "paper"} <= set(PROFILES)


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
