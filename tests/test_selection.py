"""Dataset selection for the chapters: what this machine has, and what a page says it left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicspec_utils import selection
from nicspec_utils.errors import UsageError


@pytest.fixture
def no_mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A bare clone: no data mirror, no downloads, an empty download cache."""
    monkeypatch.delenv("NICSPEC_DATA_MIRROR", raising=False)
    monkeypatch.delenv(selection.DOWNLOAD_ENV, raising=False)
    monkeypatch.setenv("NICSPEC_CACHE", str(tmp_path / "cache"))


def _fake_mirror(root: Path, relative: str, n: int = 2) -> None:
    folder = root / relative
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((40, 48, 3), 10 * i, np.uint8)).save(folder / f"im{i}.png")


def test_without_a_mirror_kodak_is_kept_and_clic_reported(no_mirror: None) -> None:
    picked = selection.select({"kodak": 2, selection.CLIC: 1})
    assert picked.sets == {"kodak": ["kodim01", "kodim02"]}
    assert list(picked.omitted) == [selection.STAND_IN]
    note = picked.note()
    assert "Left out" in note and "NICSPEC_DATA_MIRROR" in note
    assert selection.dataset_label(selection.STAND_IN) in note
    assert picked.ids(selection.CLIC) == []


def test_zero_images_skip_a_dataset_without_a_note(no_mirror: None) -> None:
    picked = selection.select({"kodak": 1, selection.CLIC: 0})
    assert picked.sets == {"kodak": ["kodim01"]} and picked.note() == ""


def test_imagenet_missing_says_how_to_get_a_folder(no_mirror: None) -> None:
    picked = selection.select({selection.IMAGENET: 8})
    assert picked.sets == {}
    assert "folder:PATH" in picked.note()


def test_with_the_mirror_the_stand_in_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_mirror: None
) -> None:
    _fake_mirror(tmp_path / "m", "clic2025/validation", 3)
    monkeypatch.setenv("NICSPEC_DATA_MIRROR", str(tmp_path / "m"))
    assert selection.resolve(selection.CLIC) == selection.STAND_IN
    picked = selection.select({selection.CLIC: None})
    assert picked.sets == {selection.STAND_IN: ["im0", "im1", "im2"]} and not picked.omitted


def test_real_clic2020_is_preferred_where_it_is_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_mirror: None
) -> None:
    _fake_mirror(tmp_path / "m", "clic2025/validation")
    _fake_mirror(tmp_path / "m", "clic2020/test")
    monkeypatch.setenv("NICSPEC_DATA_MIRROR", str(tmp_path / "m"))
    assert selection.resolve(selection.CLIC) == selection.CLIC2020_TEST
    # ... and, without it, downloading is opt-in only
    monkeypatch.setenv("NICSPEC_DATA_MIRROR", str(tmp_path / "none"))
    (tmp_path / "none").mkdir()
    assert selection.unavailable_reason(selection.CLIC2020_TEST) is not None
    monkeypatch.setenv(selection.DOWNLOAD_ENV, "1")
    assert selection.unavailable_reason(selection.CLIC2020_TEST) is None


def test_partition(no_mirror: None) -> None:
    present, omitted = selection.partition(["kodak", "cid22-train", "gb82"])
    assert present == ["kodak"] and set(omitted) == {"cid22-train", "gb82"}


@pytest.mark.parametrize("bad", [-1, True])
def test_bad_counts(bad: object) -> None:
    with pytest.raises(UsageError):
        selection.first_ids("kodak", bad)  # type: ignore[arg-type]
