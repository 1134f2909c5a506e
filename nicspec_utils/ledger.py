"""The book's ledger of verdicts: every chapter publishes its findings table, and the summary page
(*The paper's claims, verdict by verdict*) reads them all, one profile at a time.

A chapter calls :func:`publish` with the table it shows (a :func:`findings.findings_table` with
the reader's column names, or a :func:`stats.effects_table`); the rows go to
``<results>/claims/<profile>/<chapter>.json`` (atomically), with the profile the book runs under
(``$NICSPEC_PROFILE``, set by ``nicspec book``; ``custom`` for a chapter run by hand) and the
time. :func:`collect` reads a profile's rows as one table; :func:`summary_table` puts another
profile's verdict (the quick book's, say) beside each row.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .errors import DataError, UsageError

PROFILE_ENV = "NICSPEC_PROFILE"
LEDGER_FOLDER = "claims"
FORMAT = "nicspec-claims-1"

# the summary's columns, and the names each kind of findings table gives them
COLUMNS = ("chapter", "claim", "verdict", "effect", "interval", "measure", "matching", "rounding",
           "n", "images needed", "paper", "note")  # fmt: skip
_ALIASES = {
    "measure (unit)": "measure",
    "JPEG2000 matched in": "matching",
    "reference rounding": "rounding",
    "95 % interval": "interval",
    "the paper's side": "paper",
    "images_needed": "images needed",
    "n_clusters": "images",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def current_profile() -> str:
    """The profile the book is being built under (``$NICSPEC_PROFILE``), else ``custom``."""
    return os.environ.get(PROFILE_ENV, "").strip() or "custom"


def ledger_dir(profile: str | None = None, root: str | Path | None = None) -> Path:
    """``<results>/claims/<profile>`` (``root``: another results folder)."""
    from .cache import results_dir

    name = profile or current_profile()
    if not _NAME.match(name):
        raise UsageError(f"a profile name is letters, digits, '.', '_' or '-', got {name!r}")
    return (Path(root) if root is not None else results_dir()) / LEDGER_FOLDER / name


def _cell(value: Any) -> Any:
    """A JSON-safe table cell: NaN and missing values as None, numbers as numbers."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def normalise(table: Any) -> Any:
    """A findings table (reader's or raw column names) in the summary's columns."""
    import pandas as pd

    t = pd.DataFrame(table).rename(columns=_ALIASES).copy()
    if "claim" not in t or "verdict" not in t:
        raise UsageError("a findings table needs the columns 'claim' and 'verdict'")
    if "interval" not in t and {"ci_low", "ci_high"} <= set(t):
        t["interval"] = [
            f"[{lo:+.3g}, {hi:+.3g}]" if pd.notna(lo) and pd.notna(hi) else "–"
            for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)
        ]
    if "effect" in t:
        t["effect"] = [
            f"{v:+.3g}" if isinstance(v, int | float) and math.isfinite(v) else v
            for v in t["effect"]
        ]
    for column in COLUMNS:
        if column not in t:
            t[column] = ""
    t["claim"] = t["claim"].astype(str)
    return t[list(COLUMNS)].fillna("").reset_index(drop=True)


def publish(
    chapter: str, table: Any, *, profile: str | None = None, root: str | Path | None = None
) -> Path:
    """Write a chapter's findings to the ledger of ``profile``; return the file's path."""
    from .io import atomic_write_json

    if not _NAME.match(chapter):
        raise UsageError(f"a chapter name is letters, digits, '.', '_' or '-', got {chapter!r}")
    t = normalise(table)
    t["chapter"] = chapter
    rows = [{k: _cell(v) for k, v in row.items()} for row in t.to_dict("records")]
    path = ledger_dir(profile, root) / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        path,
        {
            "format": FORMAT,
            "chapter": chapter,
            "profile": profile or current_profile(),
            "nicspec": __version__,
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rows": rows,
        },
    )
    return path


def collect(profile: str | None = None, root: str | Path | None = None) -> Any:
    """Every chapter's published rows under ``profile``, in chapter order (an empty table in the
    summary's columns when none has published)."""
    import pandas as pd

    from .store import served_files

    frames = []
    folder = ledger_dir(profile, root)
    # a bundle carries the ledgers its chapters read (the other profile's, for the summary)
    for path in served_files(folder, "*.json"):
        try:
            data = json.loads(path.read_text())
            rows = data["rows"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"unreadable claims file {path} ({exc}); rerun its chapter") from None
        frames.append(pd.DataFrame(rows, columns=list(COLUMNS)))
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True).fillna("")


def _row_key(t: Any) -> Any:
    return t[["chapter", "claim", "measure", "matching", "rounding"]].astype(str).agg("|".join, 1)


def summary_table(current: Any, other: Any | None = None, other_name: str = "quick") -> Any:
    """``current`` rows with the ``other`` profile's verdict of the same check beside each
    (``verdict (<other_name>)``; "–" where it has none) and whether the two differ."""
    t = current.copy()
    if other is None or len(other) == 0 or len(t) == 0:
        return t
    theirs = dict(zip(_row_key(other), other["verdict"], strict=True))
    column = f"verdict ({other_name})"
    t.insert(t.columns.get_loc("verdict") + 1, column, [theirs.get(k, "–") for k in _row_key(t)])
    t["changed"] = [
        "yes" if b not in ("–", a) else "" for a, b in zip(t["verdict"], t[column], strict=True)
    ]
    return t


def verdict_counts(table: Any) -> Any:
    """How many checks each chapter reproduced, contradicted, or left inconclusive."""
    import pandas as pd

    if len(table) == 0:
        return pd.DataFrame()
    counts = pd.crosstab(table["chapter"], table["verdict"])
    return counts.rename_axis(index="chapter", columns=None).reset_index()


def reconcile(table: Any) -> Any:
    """One row per claim that more than one chapter tests: each chapter's word for it
    (:func:`stats.combine` of its checks) and the book's one verdict over every check of every
    chapter (reproduced only if all are, contradicted only if all are). Checks a chapter could
    not test on this machine are left out of the words."""
    import pandas as pd

    from .stats import VERDICTS, combine

    columns = ["claim", "chapters", "per chapter", "checks", "verdict"]
    if len(table) == 0:
        return pd.DataFrame(columns=columns)
    testable = table[table["verdict"].isin(VERDICTS)]
    rows = []
    for claim, group in testable.groupby("claim", sort=True):
        chapters = list(dict.fromkeys(group["chapter"]))
        if len(chapters) < 2:
            continue
        words = []
        for ch in chapters:
            n = int((group["chapter"] == ch).sum())
            word = combine(group.loc[group["chapter"] == ch, "verdict"])
            words.append(f"{ch}: {word} ({n} check{'s' if n != 1 else ''})")
        rows.append({"claim": claim, "chapters": len(chapters), "per chapter": "; ".join(words),
                     "checks": len(group), "verdict": combine(group["verdict"])})  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
