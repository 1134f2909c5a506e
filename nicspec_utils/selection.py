"""Which images a chapter uses: the datasets this machine has, and the first N ids of each.

A chapter asks for images (``{"kodak": 4, CLIC: 2}``) and gets a :class:`Selection`: the ids it
can use here and, for every dataset it cannot open (no data mirror, no network), a line saying
what was left out and how to get it. So a clone with nothing beside it still builds the book:
Kodak ships with the repository, everything else is reported rather than fatal.

``CLIC`` is an alias: the paper's CLIC 2020 test set where it is on this machine (a mirror, or
downloaded before into the cache), else the CLIC 2025 stand-in of the mirror; downloading CLIC
2020 from a chapter happens only with ``NICSPEC_DOWNLOAD=1`` (its archives are gigabytes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError, UsageError
from .labels import CLIC2020_TEST as CLIC2020_TEST
from .labels import IMAGENET as IMAGENET
from .labels import KODAK as KODAK
from .labels import STAND_IN as STAND_IN
from .labels import dataset_label as dataset_label

CLIC = "clic"
DOWNLOAD_ENV = "NICSPEC_DOWNLOAD"

# How a reader gets each dataset that is not in the repository.
HOW_TO_GET = {
    STAND_IN: "set NICSPEC_DATA_MIRROR to a folder holding clic2025/validation (README, Data)",
    CLIC2020_TEST: "run with NICSPEC_DOWNLOAD=1 (downloads the official archives), or set "
    "NICSPEC_DATA_MIRROR to a folder holding clic2020/test",
    IMAGENET: "set NICSPEC_DATA_MIRROR to a folder holding imagenet-val-subset/images, or pass "
    "an ImageNet folder with a labels.csv as folder:PATH",
    "cid22-train": "set NICSPEC_DATA_MIRROR to a folder holding train/cid22",
    "cid22-val": "set NICSPEC_DATA_MIRROR to a folder holding train/cid22-validation",
    "gb82": "set NICSPEC_DATA_MIRROR to a folder holding train/gb82",
}


def downloads_allowed() -> bool:
    """Whether chapters may download datasets (``NICSPEC_DOWNLOAD=1``)."""
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def _clic2020_local(split: str) -> bool:
    """CLIC 2020 ``split`` is in the mirror or already unpacked in the download cache."""
    from .data import CLIC2020_URLS, cache_root, mirror_root

    root = mirror_root()
    if root is not None and (root / "clic2020" / split).is_dir():
        return True
    folder = cache_root() / "clic2020"
    return all((folder / Path(url).stem).is_dir() for url in CLIC2020_URLS[split])


def unavailable_reason(name: str) -> str | None:
    """None when ``name`` opens here without a download; else one line saying why not."""
    if name.startswith("clic2020-"):
        split = name.removeprefix("clic2020-")
        if _clic2020_local(split) or downloads_allowed():
            return None
        return f"{dataset_label(name)} is not on this machine"
    from .data import get_dataset

    try:
        get_dataset(name)
    except DataError as exc:
        if "not available offline" in str(exc):
            return "not on this machine (no data mirror, and no download for it here)"
        return str(exc)
    return None


def resolve(name: str) -> str:
    """A dataset name with the ``clic`` alias resolved (see the module doc)."""
    if name != CLIC:
        return name
    return CLIC2020_TEST if unavailable_reason(CLIC2020_TEST) is None else STAND_IN


def how_to_get(name: str) -> str:
    """How a reader makes ``name`` available."""
    return HOW_TO_GET.get(name, "see `nicspec data list`")


def first_ids(name: str, n: int | None) -> list[str]:
    """The first ``n`` image ids of a dataset (``None``: all; 0: none, the dataset unopened)."""
    if n is not None and (isinstance(n, bool) or int(n) < 0):
        raise UsageError(f"number of images must be 0 or more (None for all), got {n!r}")
    if n is not None and int(n) == 0:
        return []
    from .data import get_dataset

    ids = get_dataset(name).image_ids
    return list(ids) if n is None else list(ids[: int(n)])


@dataclass
class Selection:
    """The images a chapter uses (dataset -> ids) and what it left out (dataset -> reason)."""

    sets: dict[str, list[str]] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)
    # datasets whose images are not here but whose results this profile's bundle holds
    bundled: list[str] = field(default_factory=list)

    def ids(self, name: str) -> list[str]:
        """The ids selected from ``name`` (``clic`` resolved); [] when it was left out."""
        return self.sets.get(resolve(name), [])

    def note(self, what: str = "this page") -> str:
        """Markdown for the page: what was left out and how to get it, and which datasets'
        results come from the bundle without their images ("" when neither)."""
        parts = []
        if self.bundled:
            names = ", ".join(f"**{dataset_label(n)}**" for n in self.bundled)
            parts.append(
                f"{names}: the images are not on this machine; the numbers of {what} on them "
                "come from this profile's results bundle (data/results), found by the "
                "checksums the repository ships for them (data/catalogue). To recompute them: "
                + "; ".join(how_to_get(n) for n in self.bundled)
                + ", and build with FRESH=1."
            )
        if self.omitted:
            lines = [
                f"- **{dataset_label(name)}**: {reason}. To include it: {how_to_get(name)}."
                for name, reason in self.omitted.items()
            ]
            parts.append(
                f"**Left out of {what} on this machine** (its numbers below do not include "
                "these datasets; the verdicts rest on what remains):\n\n" + "\n".join(lines)
            )
        return "\n\n".join(parts)


def select(requests: Mapping[str, int | None]) -> Selection:
    """Resolve every requested dataset (``clic`` alias included) to its first N ids here.

    A count of 0 skips a dataset silently (the parameters asked for none); a dataset this
    machine cannot open is recorded in :attr:`Selection.omitted` instead of raising.
    """
    out = Selection()
    for requested, n in requests.items():
        name = resolve(requested)
        if n is not None and not isinstance(n, bool) and int(n) == 0:
            continue
        reason = unavailable_reason(name)
        if reason is not None:
            out.omitted[name] = reason.rstrip(".")
            continue
        ids = first_ids(name, n)
        if ids:
            out.sets[name] = ids
            if _catalogue_only(name):
                out.bundled.append(name)
    return out


def _catalogue_only(name: str) -> bool:
    """Whether ``name`` opens here from its checksum catalogue only (a bundle covers it)."""
    from .data import get_dataset

    return bool(getattr(get_dataset(name), "catalogue", False))


def partition(names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``names`` (aliases resolved) split into those that open here and {name: reason}."""
    present: list[str] = []
    omitted: dict[str, str] = {}
    for requested in names:
        name = resolve(requested)
        reason = unavailable_reason(name)
        if reason is None:
            present.append(name)
        else:
            omitted[name] = reason.rstrip(".")
    return present, omitted


def split_list(spec: str | Sequence[str]) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; a sequence is returned cleaned, in order."""
    items = spec.split(",") if isinstance(spec, str) else [str(s) for s in spec]
    return [s.strip() for s in items if s.strip()]
