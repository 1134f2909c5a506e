"""Chapter 1's findings: which band dominates each corruption, against the paper's grouping,
its sensitivity to the band edges, and the verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import corruptions as C
from ...errors import UsageError
from ...spectral import BAND_NAMES
from .settings import HIGH_EDGE_GRID, LOW_EDGE_GRID, VERDICTS, _fmt_name, _pct, severity_span
from .study import CorruptionSpectra, band_table, image_table


def grouping_agreement(table: Any) -> Any:
    """Add ``dominant`` (band with the largest share), ``paper_share`` (share in the paper's
    band) and ``agree`` (dominant == the paper's group) to a :func:`band_table`."""
    out = table.copy()
    shares = out[list(BAND_NAMES)].to_numpy()
    out["dominant"] = [BAND_NAMES[i] for i in shares.argmax(axis=1)]
    out["paper_share"] = [row[g] for g, (_, row) in zip(out["group"], out.iterrows(), strict=True)]
    out["agree"] = out["dominant"] == out["group"]
    return out


def severity_pivot(spectra: CorruptionSpectra) -> Any:
    """Display table: dominant band and its share per corruption (rows) and severity (columns),
    e.g. ``"medium 62%"``."""
    table = grouping_agreement(band_table(spectra, by_severity=True))
    table["cell"] = [
        f"{r.dominant} {100 * getattr(r, r.dominant):.0f}%" for r in table.itertuples()
    ]
    table["corruption"] = [_fmt_name(n) for n in table["corruption"]]
    pivot = table.pivot(index=["number", "corruption", "group"], columns="severity", values="cell")
    pivot.columns = [f"severity {s}" for s in pivot.columns]
    return pivot.reset_index().rename(columns={"number": "#", "group": "paper's group"})


def severity_exceptions(spectra: CorruptionSpectra, label: str) -> str:
    """One Markdown sentence: the (corruption, severity) pairs whose dominant band is not the
    paper's group, severities grouped per corruption."""
    table = grouping_agreement(band_table(spectra, by_severity=True))
    bad = table[~table["agree"]]
    head = f"On {label}, {len(bad)} of {len(table)} (corruption, severity) pairs disagree"
    if bad.empty:
        return head + "."
    parts = []
    for name, rows in bad.groupby("corruption", sort=False):
        bands = ", ".join(sorted(set(rows["dominant"]), key=BAND_NAMES.index))
        parts.append(
            f"{_fmt_name(name)} at severit{'ies' if len(rows) > 1 else 'y'} "
            f"{severity_span(list(rows['severity']))} ({bands})"
        )
    return f"{head}: {'; '.join(parts)}."


def edge_sensitivity(
    spectra: CorruptionSpectra,
    low_edges: Sequence[float] = LOW_EDGE_GRID,
    high_edges: Sequence[float] = HIGH_EDGE_GRID,
) -> Any:
    """Number of corruptions whose dominant band matches the paper, for each pair of edges."""
    import pandas as pd

    counts = {
        f"high ≥ {hi:.3g}": {
            f"low < {lo:.3g}": int(
                grouping_agreement(band_table(spectra, edges=(lo, hi)))["agree"].sum()
            )
            for lo in low_edges
        }
        for hi in high_edges
    }
    frame = pd.DataFrame(counts)
    frame.attrs["n_corruptions"] = len(spectra.corruptions)
    return frame


def format_agreement(agreement: Any) -> Any:
    """A display copy of :func:`grouping_agreement`: shares in percent, "yes"/"no"."""
    out = agreement[["number", "corruption", "group", *BAND_NAMES, "dominant", "agree"]].copy()
    for band in BAND_NAMES:
        out[band] = [f"{100 * v:.1f} %" for v in out[band]]
    out["corruption"] = [_fmt_name(n) for n in out["corruption"]]
    out["agree"] = ["yes" if a else "no" for a in out["agree"]]
    return out.rename(
        columns={"number": "#", "group": "paper's group", "dominant": "dominant band",
                 "agree": "agrees"}
    ).set_index("#")  # fmt: skip


def agreement_sentence(agreement: Any, label: str) -> str:
    """One Markdown sentence: how many corruptions agree with the paper, and the exceptions."""
    n, k = len(agreement), int(agreement["agree"].sum())
    head = (
        f"On {label}, {k} of {n} corruptions put the largest share of their energy in the "
        "paper's band"
    )
    bad = agreement[~agreement["agree"]]
    if bad.empty:
        return head + "; there are no exceptions."
    parts = [
        f"{_fmt_name(r.corruption)} (paper: {r.group}; measured: {r.dominant}, "
        f"{_pct(getattr(r, r.dominant))}, {_pct(r.paper_share)} in {r.group})"
        for r in bad.itertuples()
    ]
    return f"{head}; the exceptions are {', '.join(parts)}."


def group_counts(agreements: Mapping[str, Any]) -> Any:
    """Agreeing corruptions per paper group (rows) and dataset (columns), as ``"k / n"``."""
    import pandas as pd

    data = {}
    for label, agreement in agreements.items():
        grouped = agreement.groupby("group", sort=False)["agree"]
        data[label] = {g: f"{int(s.sum())} / {len(s)}" for g, s in grouped}
    order = [g for g in C.GROUPS if any(g in d for d in data.values())]
    return pd.DataFrame(data).reindex(order)


def verdict(agreements: Mapping[str, Any]) -> tuple[str, str]:
    """(verdict, Markdown explanation) of the grouping claim from per-dataset agreements.

    Rule: *reproduced* when every corruption agrees on every dataset; *partly reproduced* when at
    least half of all (dataset, corruption) pairs agree; *not reproduced* otherwise.
    """
    if not agreements:
        raise UsageError("no dataset was measured")
    total = sum(len(a) for a in agreements.values())
    agree = sum(int(a["agree"].sum()) for a in agreements.values())
    if agree == total:
        word = VERDICTS[0]
    elif 2 * agree >= total:
        word = VERDICTS[1]
    else:
        word = VERDICTS[2]
    always = set.intersection(*(set(a.loc[~a["agree"], "corruption"]) for a in agreements.values()))
    text = (
        f"**{word.capitalize()}.** Over {len(agreements)} dataset(s), {agree} of {total} "
        f"(dataset, corruption) pairs have their dominant band in the paper's group "
        f"(rule: all pairs agree: reproduced; at least half: partly; fewer: not)."
    )
    if always and len(agreements) > 1:
        listed = ", ".join(_fmt_name(n) for n in C.corruption_names() if n in always)
        text += f" Disagreeing on every dataset: {listed}."
    return word, text


def sensitivity_sentence(sensitivities: Mapping[str, Any]) -> str:
    """How the agreement count moves over the band-edge grid of :func:`edge_sensitivity`."""
    parts = []
    for label, grid in sensitivities.items():
        values = grid.to_numpy()
        lo, hi = int(values.min()), int(values.max())
        span = f"{lo}" if lo == hi else f"{lo} to {hi}"
        parts.append(f"{span} of {grid.attrs.get('n_corruptions', '?')} on {label}")
    cells = max((g.size for g in sensitivities.values()), default=0)
    return (
        f"Over the {cells} pairs of band edges tried, the corruptions whose dominant band "
        f"matches the paper's group number {'; '.join(parts)}."
    )


# --- the verdict with weight (#16) -----------------------------------------------------------

GROUPING_PAPER = "above 0: the paper's band holds the largest share of the corruption's energy"


def dominance_margin(images: Any) -> Any:
    """Per row of :func:`study.image_table`: the share of the energy in the paper's band minus
    the largest share of the two other bands (above 0: the paper's band dominates)."""
    shares = images[list(BAND_NAMES)].to_numpy(dtype=float)
    own = np.array([BAND_NAMES.index(g) for g in images["group"]], dtype=int)
    rows = np.arange(len(images))
    paper = shares[rows, own]
    others = shares.copy()
    others[rows, own] = -np.inf
    return paper - others.max(axis=1)


def grouping_checks(spectra: Sequence[CorruptionSpectra], n_boot: int = 2000, seed: int = 0) -> Any:
    """The grouping claim per corruption, in the book's one model (:mod:`nicspec_utils.stats`
    through :func:`findings.check`): the effect is each image's :func:`dominance_margin` (its
    severities pooled within the image), with a seeded cluster-bootstrap interval over images
    (of every dataset, stratified by dataset when there are several). One findings row per
    corruption, in the paper's order."""
    import pandas as pd

    from ... import findings

    images = image_table(spectra)
    if images.empty:
        return pd.DataFrame()
    images = images.assign(value=dominance_margin(images))
    strata = "dataset" if images["dataset"].nunique() > 1 else None
    rows = []
    for name in C.corruption_names():
        eff = images[images["corruption"] == name]
        if eff.empty:
            continue
        c = C.get_corruption(name)
        rows.append(
            findings.check(
                f"{c.number}. {_fmt_name(name)}",
                f"share in the paper's band ({c.group}) minus the largest other, per image",
                1,
                eff,
                matching="n/a",
                strata=strata,
                paper=GROUPING_PAPER,
                n_boot=n_boot,
                seed=seed,
            )  # fmt: skip
        )
    return pd.DataFrame(rows)


def grouping_verdict(checks: Any) -> str:
    """One word for the grouping claim: :func:`stats.combine` of the corruptions' verdicts."""
    from ... import stats

    if checks is None or len(checks) == 0:
        return "not testable here"
    return stats.combine(v for v in checks["verdict"] if v in stats.VERDICTS)


def former_verdicts(agreements: Mapping[str, Any]) -> dict[str, str]:
    """Per corruption (as :func:`grouping_checks` names it), what the former rule saw: its
    dominant band in the mean spectrum against the paper's, on how many datasets."""
    out: dict[str, str] = {}
    for name in C.corruption_names():
        agree = [bool(a.loc[a["corruption"] == name, "agree"].iloc[0])
                 for a in agreements.values() if (a["corruption"] == name).any()]  # fmt: skip
        if agree:
            c = C.get_corruption(name)
            out[f"{c.number}. {_fmt_name(name)}"] = f"agrees on {sum(agree)} of {len(agree)}"
    return out


def change_sentence(former: tuple[str, str], checks: Any) -> str:
    """Markdown: the former verdict (a count of (dataset, corruption) pairs whose mean spectrum
    puts its largest share in the paper's band) against the interval verdict, with numbers."""
    word, _ = former
    new = grouping_verdict(checks)
    counts = checks["verdict"].value_counts() if len(checks) else {}
    parts = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in ("reproduced", "contradicted",
                                                              "inconclusive"))  # fmt: skip
    n_images = int(checks["n_images"].max()) if len(checks) else 0
    text = (
        f"**Verdict: {new}** (was *{word}*). The former rule counted the (dataset, corruption) "
        f"pairs whose mean spectrum has its largest share in the paper's band; the verdict now "
        f"comes from each image's margin and its bootstrap interval over {n_images} images, one "
        f"claim per corruption: {parts} of {len(checks)}, combined (all reproduced: "
        f"reproduced; all contradicted: contradicted; otherwise inconclusive)."
    )
    if new != word:
        text += f" The verdict changed from *{word}* to *{new}*."
    return text
