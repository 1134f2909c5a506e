"""Chapter 5, downstream classification: its tables, claims and figures.

The per-image work (256x256 preparation, corruption, coding, classification), its cache and
the grid sweep are :mod:`nicspec_utils.engines.classify`; this module turns a grid
({(condition, system): Result}, :func:`nicspec_utils.engines.classify.run_grid`) into the
chapter's tables, decides its claim in the book's one model (:mod:`nicspec_utils.stats`) and
draws its figures.

The claim (part of the paper's claim 3): NIC's output is classified better than rate-matched
JPEG2000's on high-frequency corruptions. Per NIC model, the effect is paired per image: NIC's
0/1 outcome (correct, or agreeing with the clean uncompressed prediction) minus JPEG2000's on
the *same* image and corruption; its interval is a seeded cluster bootstrap over images (an
image's corruptions resampled together, :func:`nicspec_utils.stats.paired_binary`) and the
verdict comes from that interval only. The clustered McNemar test (Durkalski et al. 2003, pairs
per image) is its secondary p-value; the exact McNemar test on the pooled (image, corruption)
pairs, which the chapter reported before and which treats an image's corruptions as
independent, is kept for comparison only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import stats
from ..engines.classify import (
    DEFAULT_CLASSIFIER,
    MATCHINGS,
    Result,
    available,
    classify,
    j2k_system,
    make_grid,
    nic_system,
    run_grids,
)
from ..errors import DataError, UsageError
from ..labels import style

__all__ = ["Result", "mcnemar"]

# The exact McNemar test on pooled pairs (every pair independent): shown for comparison only.
mcnemar = stats.mcnemar
Grid = Mapping[tuple[str, str], Result]
METRIC_LABELS = {"top1": "top-1", "agreement": "agreement"}
PAPER = "above 0: NIC's output classified better than JPEG2000's on high-frequency corruptions"
PAPER_SPECIFIC = "above 0: NIC's advantage larger on high-frequency corruptions"


def pct(v: float | None) -> str:
    """``"75.0 %"``, or ``"–"`` for a missing value."""
    return "–" if v is None or v != v else f"{100 * v:.1f} %"


def bootstrap_ci(
    values: Any, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high) of a 1-D or images x k array: :func:`stats.paired_effect` (rows are
    images, resampled whole, so an image's conditions stay together); empty: nan."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan, math.nan
    if arr.ndim == 1:
        arr = arr[:, None]
    est = stats.paired_effect(arr, n_boot=n_boot, seed=seed, level=level)
    return est.mean, est.ci_low, est.ci_high


# --- the study ----------------------------------------------------------------------------------

PSNR_MATCHING = ("none", "high", "all")


def psnr_conditions(conditions: Sequence[str | None], which: str) -> list[str | None]:
    """The conditions (None: clean) that also get JPEG2000 matched per image to the NIC's PSNR:
    ``none``, ``high`` (clean and the high-frequency corruptions: the claim's own groups) or
    ``all``. PSNR matching searches JPEG2000's ratio per image (~16 encodes), so it is the
    grid's dearest system."""
    from ..corruptions import get_corruption

    if which not in PSNR_MATCHING:
        raise UsageError(f"psnr_matching must be one of {', '.join(PSNR_MATCHING)}, got {which!r}")
    if which == "none":
        return []
    if which == "all":
        return list(conditions)
    return [c for c in conditions if c is None or get_corruption(c).group == "high"]


def run_study(
    imagenet: str,
    ids: Sequence[str],
    kodak_ids: Sequence[str],
    nic_models: Sequence[str],
    corruptions: Sequence[str],
    kodak_corruptions: Sequence[str],
    severity: int,
    *,
    classifier: str = DEFAULT_CLASSIFIER,
    estimate: bool = True,
    psnr_matching: str = "high",
    seed: int = 0,
    out: Any = None,
    j2k: str = "jpeg2000",
) -> tuple[dict[tuple[str, str], Result], dict[tuple[str, str], Result]]:
    """The chapter's two grids, the labelled one (``imagenet``: clean and ``corruptions``) and
    the label-free Kodak one, computed together on the engine (:func:`run_grids`: one task per
    condition); an empty id list gives an empty grid. ``j2k``: the JPEG2000 path (Pillow's
    ``jpeg2000`` or the paper's ``jpeg2000-ffmpeg``)."""
    kw = {"classifier": classifier, "estimate": estimate, "seed": seed, "out": out, "j2k": j2k}
    specs = {}
    for name, these, corr in (
        ("imagenet", ids, corruptions),
        ("kodak", kodak_ids, kodak_corruptions),
    ):
        if these:
            conds = [None, *corr]
            psnr = psnr_conditions(conds, psnr_matching)
            dataset = imagenet if name == "imagenet" else "kodak"
            specs[name] = make_grid(dataset, these, nic_models, conds, severity, psnr=psnr, **kw)
    done = dict(zip(specs, run_grids(list(specs.values())), strict=True))
    return done.get("imagenet", {}), done.get("kodak", {})


# --- clean accuracy -----------------------------------------------------------------------------


def clean_table(
    dataset: str, ids: Sequence[str], classifiers: Sequence[str], *, seed: int = 0, out: Any = None
) -> tuple[Any, list[str]]:
    """Top-1 / top-5 of each available classifier on the clean, uncompressed images (Wilson
    interval), and one line per classifier that cannot load here."""
    import pandas as pd

    rows, missing = [], []
    for name in classifiers:
        ok, why = available(name)
        if not ok:
            missing.append(f"{name}: not available here ({why})")
            continue
        r = classify("none", dataset, ids, classifier=name, seed=seed, out=out)
        lo, hi = r.data["top1_ci"]
        rows.append({"classifier": name, "images": r.data["n_labelled"], "top-1": r.top1,
                     "ci_low": lo, "ci_high": hi, "top-5": r.data["top5"]})  # fmt: skip
    return pd.DataFrame(rows), missing


def clean_markdown(result: Result) -> str:
    """One sentence: the study classifier's clean top-1 and how precisely it is known."""
    lo, hi = result.data["top1_ci"]
    return (
        f"{result.data['classifier']} classifies {pct(result.top1)} of the "
        f"{result.data['n_labelled']} images correctly (95 % Wilson interval {pct(lo)} to "
        f"{pct(hi)}): with this many images an accuracy is known to about "
        f"±{50 * (hi - lo):.0f} points."
    )


# --- the grid's tables --------------------------------------------------------------------------


def _group(cond: str) -> str:
    from ..corruptions import get_corruption

    return "clean" if cond == "clean" else get_corruption(cond).group


def grid_table(results: Grid, metric: str = "top1") -> Any:
    """Long table: condition, group, system, bpp, the metric, its Wilson interval, n."""
    import pandas as pd

    rows = []
    for (cond, system), res in results.items():
        d = res.data
        lo, hi = d[f"{metric}_ci"]
        n = d["n_images"] if metric == "agreement" else d["n_labelled"]
        rows.append({"condition": cond, "group": _group(cond), "system": system, "bpp": d["bpp"],
                     metric: d[metric], "ci_low": lo, "ci_high": hi, "n": n})  # fmt: skip
    return pd.DataFrame(rows)


def pivot_percent(table: Any, metric: str = "top1", index: str = "condition") -> Any:
    """Wide table, ``index`` x system, cells ``"75.0 [63.2, 84.1]"`` (percent, 95 % interval)."""
    cells = table.assign(
        cell=[
            "–" if v is None or v != v else f"{100 * v:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
            for v, lo, hi in zip(table[metric], table["ci_low"], table["ci_high"], strict=True)
        ]
    )
    keep = [c for c in ("group", index) if c in cells and c != index]
    wide = cells.pivot_table(index=[index, *keep], columns="system", values="cell",
                             aggfunc="first", sort=False)  # fmt: skip
    systems = list(dict.fromkeys(table["system"]))
    return wide[systems].reset_index()


def _conditions(results: Grid) -> list[str]:
    return list(dict.fromkeys(c for c, _ in results))


def matchings_of(results: Grid, nic_models: Sequence[str]) -> list[str]:
    """The matchings (``bpp``, ``psnr``) the grid holds JPEG2000 runs of, for every model, on
    at least one condition."""
    return [m for m in MATCHINGS if nic_models and _matched(results, nic_models, m)]


def _matched(results: Grid, nic_models: Sequence[str], matching: str) -> list[str]:
    """The conditions with a NIC and a ``matching`` JPEG2000 run of every model."""
    want = [s for x in nic_models for s in (nic_system(x), j2k_system(x, matching))]
    return [c for c in _conditions(results) if all((c, s) in results for s in want)]


def match_table(results: Grid, nic_models: Sequence[str]) -> Any:
    """How close each JPEG2000 came to its targets, per (NIC model, matching): mean bpp and
    PSNR (w.r.t. the codec's input) of NIC and of JPEG2000 over the conditions and images it
    was matched on, the median and extreme per-image bpp ratio JPEG2000 / NIC, and (PSNR
    matching) how many images lie within the matcher's tolerance."""
    import pandas as pd

    rows = []
    for model in nic_models:
        for matching in matchings_of(results, [model]):
            conds = _matched(results, [model], matching)
            nic = [results[c, nic_system(model)] for c in conds]
            nic_bpp = np.concatenate([r.per_image("bpp") for r in nic]).astype(float)
            nic_psnr = np.concatenate([_psnr(r) for r in nic])
            j2k = [results[c, j2k_system(model, matching)] for c in conds]
            bpp = np.concatenate([r.per_image("bpp") for r in j2k]).astype(float)
            psnr = np.concatenate([_psnr(r) for r in j2k])
            ratio = bpp / np.maximum(nic_bpp, 1e-12)
            row = {"model": model, "matched in": matching, "conditions": len(conds),
                   "NIC bpp": float(nic_bpp.mean()),
                   "JPEG2000 bpp": float(bpp.mean()), "median ratio": float(np.median(ratio)),
                   "min ratio": float(ratio.min()), "max ratio": float(ratio.max()),
                   "NIC PSNR": _nanmean(nic_psnr), "JPEG2000 PSNR": _nanmean(psnr)}  # fmt: skip
            if matching == "psnr":
                tol = np.concatenate([np.full(len(r.per_image("bpp")), r.psnr_tol) for r in j2k])
                ok = np.abs(psnr - nic_psnr) <= tol + 1e-6
                row["within tolerance"] = f"{int(ok.sum())} of {len(ok)}"
            rows.append(row)
    return pd.DataFrame(rows)


def _psnr(res: Result) -> np.ndarray:
    """Per-image PSNR w.r.t. the codec's input (nan where not recorded or lossless)."""
    return np.asarray(
        [math.nan if r.get("psnr") is None else float(r["psnr"]) for r in res.data["per_image"]]
    )


def _nanmean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else math.nan


def _flags(res: Result, metric: str) -> np.ndarray:
    key = {"top1": "correct", "agreement": "agree"}[metric]
    vals = res.per_image(key)
    if any(v is None for v in vals):
        raise DataError(f"{res.path}: {metric} needs labels for every image")
    return np.asarray(vals, dtype=np.float64)


def _groups(results: Grid, conditions: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Conditions of the grid (or ``conditions``) per frequency group (``clean`` first), empty
    groups dropped."""
    from ..corruptions import GROUPS

    conds = _conditions(results) if conditions is None else list(conditions)
    groups = {"clean": ["clean"] if "clean" in conds else []}
    for g in GROUPS:
        groups[g] = [c for c in conds if c != "clean" and _group(c) == g]
    return {g: members for g, members in groups.items() if members}


def group_table(results: Grid, metric: str = "top1", n_boot: int = 2000, seed: int = 0) -> Any:
    """Per (frequency group, system): mean of ``metric`` over the group's conditions and images,
    with a 95 % cluster bootstrap over images (each image's conditions resampled together); a
    system only some conditions have (PSNR-matched JPEG2000) over those."""
    import pandas as pd

    systems = list(dict.fromkeys(s for _, s in results))
    rows = []
    for g, members in _groups(results).items():
        for s in systems:
            have = [c for c in members if (c, s) in results]  # PSNR matching: some groups only
            if not have:
                continue
            mat = np.stack([_flags(results[c, s], metric) for c in have], axis=1)
            mean, lo, hi = bootstrap_ci(mat, n_boot=n_boot, seed=seed)
            bpp = float(np.mean([results[c, s].bpp for c in have]))
            rows.append({"group": g, "system": s, "conditions": len(have), "bpp": bpp,
                         metric: mean, "ci_low": lo, "ci_high": hi})  # fmt: skip
    return pd.DataFrame(rows)


# --- paired NIC vs JPEG2000 ---------------------------------------------------------------------


def _pair(
    results: Grid, model: str, members: Sequence[str], metric: str, matching: str = "bpp"
) -> tuple[np.ndarray, np.ndarray]:
    """NIC's and matched JPEG2000's outcomes, images x conditions; nan where a PSNR-matched
    image is out of JPEG2000's reach (its pair is not at the same PSNR)."""
    nic = [results[c, nic_system(model)] for c in members]
    j2k = [results[c, j2k_system(model, matching)] for c in members]
    a = np.stack([_flags(r, metric) for r in nic], axis=1)
    b = np.stack([_flags(r, metric) for r in j2k], axis=1)
    if matching == "psnr":
        off = np.stack(
            [
                np.abs(_psnr(y) - _psnr(x)) > y.psnr_tol + 1e-6
                for x, y in zip(nic, j2k, strict=True)
            ],
            axis=1,
        )
        a, b = np.where(off, np.nan, a), np.where(off, np.nan, b)
    return a, b


def _cells(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The observed pairs of two images x conditions matrices, image-major: outcomes a, b and
    each pair's image (row) and condition (column) index."""
    ok = np.isfinite(a) & np.isfinite(b)
    rows, cols = np.nonzero(ok)
    return a[ok] > 0, b[ok] > 0, rows, cols


def _row_means(m: np.ndarray) -> np.ndarray:
    """Each row's mean over its observed (finite) entries; nan for a row without any."""
    ok = np.isfinite(m)
    total = np.where(ok, m, 0.0).sum(axis=1)
    count = ok.sum(axis=1)
    return np.divide(total, count, out=np.full(len(m), np.nan), where=count > 0)


def paired_table(
    results: Grid,
    nic_models: Sequence[str],
    metric: str = "top1",
    n_boot: int = 2000,
    seed: int = 0,
    matching: str = "bpp",
) -> Any:
    """NIC minus matched JPEG2000 per (model, group): the cluster bootstrap over images of the
    difference in ``metric`` (an image's corruptions resampled together:
    :func:`nicspec_utils.stats.paired_binary`), the clustered McNemar test that pairs per image
    (``clustered_p``) and, for comparison, the exact McNemar test on the pooled (image,
    corruption) pairs (``mcnemar_p``: treats an image's corruptions as independent pairs)."""
    import pandas as pd

    rows = []
    for model in nic_models:
        for g, members in _groups(results, _matched(results, [model], matching)).items():
            a, b = _pair(results, model, members, metric, matching)
            x, y, img, cond = _cells(a, b)
            cmp = stats.paired_binary(x, y, cluster=img, strata=cond, n_boot=n_boot, seed=seed)
            e = cmp.estimate
            rows.append({"model": model, "matched in": matching, "group": g,
                         "NIC": float(x.mean()) if len(x) else math.nan,
                         "JPEG2000": float(y.mean()) if len(y) else math.nan,
                         "difference": e.mean, "ci_low": e.ci_low, "ci_high": e.ci_high,
                         "images": e.n_clusters, "pairs": e.n,
                         "NIC only": cmp.mcnemar["a_only"], "JPEG2000 only": cmp.mcnemar["b_only"],
                         "clustered_p": cmp.clustered["p"],
                         "mcnemar_p": cmp.mcnemar["p"]})  # fmt: skip
    return pd.DataFrame(rows)


def claim_table(
    results: Grid,
    nic_models: Sequence[str],
    metric: str = "top1",
    n_boot: int = 2000,
    seed: int = 0,
    matching: str = "bpp",
) -> Any:
    """The chapter's claim in the book's one model (:func:`nicspec_utils.stats.effects_table`).

    Per NIC model: NIC minus matched JPEG2000 on the high-frequency group (paper: above 0,
    strata: the corruptions), and, for each other group g, the per-image difference (NIC
    advantage on high) minus (NIC advantage on g) (above 0: the advantage is specific to high
    frequencies). Each row is a cluster bootstrap over images with a verdict from its interval
    alone, the clustered McNemar p-value (high group) and the columns ``model``, ``group``,
    ``metric``, ``matching``, ``direction``.
    """
    import pandas as pd

    checks, extra = [], []
    for model in nic_models:
        groups = _groups(results, _matched(results, [model], matching))
        if "high" not in groups:
            continue
        a, b = _pair(results, model, groups["high"], metric, matching)
        x, y, img, cond = _cells(a, b)
        diff = x.astype(float) - y.astype(float)
        name = f"{model}: NIC − JPEG2000 ({metric}), high"
        checks.append(
            stats.Claim(name, 1, diff, strata=cond, clusters=img).check(n_boot=n_boot, seed=seed)
        )
        clustered = stats.clustered_mcnemar(x, y, img)["p"] if len(x) else math.nan
        extra.append({"model": model, "group": "high", "clustered_p": clustered})
        per_high = _row_means(a - b)
        for g, members in groups.items():
            if g == "high":
                continue
            a_g, b_g = _pair(results, model, members, metric, matching)
            spec = per_high - _row_means(a_g - b_g)
            spec = spec[np.isfinite(spec)]
            name = f"{model}: NIC advantage ({metric}), high minus {g}"
            checks.append(stats.Claim(name, 1, spec).check(n_boot=n_boot, seed=seed))
            extra.append({"model": model, "group": f"high minus {g}", "clustered_p": math.nan})
    table = stats.effects_table(checks)
    more = pd.DataFrame(extra, columns=["model", "group", "clustered_p"])
    return pd.concat([table, more], axis=1).assign(metric=metric, matching=matching, direction=1)


# --- findings -----------------------------------------------------------------------------------


def study_checks(
    studies: Mapping[str, tuple[Grid, str]],
    nic_models: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> Any:
    """Every claim check of the chapter in the columns of :func:`nicspec_utils.findings.
    findings_table`: for each study (label -> (grid, metric)) and each matching the grid holds,
    :func:`claim_table`'s rows with the claim named ``3 (<label>)`` (NIC ahead on the high
    group) or ``3 (<label>, specific)`` (the advantage larger there than elsewhere)."""
    import pandas as pd

    parts = []
    for label, (grid, metric) in studies.items():
        if not grid:
            continue
        for matching in matchings_of(grid, nic_models):
            t = claim_table(grid, nic_models, metric, n_boot, seed, matching)
            if t.empty:
                continue
            high = t["group"] == "high"
            parts.append(
                t.assign(
                    claim=np.where(high, f"3 ({label})", f"3 ({label}, specific)"),
                    measure=[
                        f"{m}: {METRIC_LABELS[metric]}, NIC − JPEG2000"
                        + (", high-frequency corruptions" if h else f", {g}")
                        for m, g, h in zip(t["model"], t["group"], high, strict=True)
                    ],
                    paper=np.where(high, PAPER, PAPER_SPECIFIC),
                    rounding="n/a",
                    n_images=t["n_clusters"],
                    study=label,
                )
            )
    if not parts:
        return pd.DataFrame(columns=["claim", "measure", "matching", "rounding", "verdict"])
    return pd.concat(parts, ignore_index=True)


def verdict_grid(checks: Any) -> Any:
    """One row per claim, one column per matching: the models' verdicts combined
    (:func:`nicspec_utils.stats.combine`: every model reproduced -> reproduced, every model
    contradicted -> contradicted, else inconclusive)."""
    import pandas as pd

    if checks.empty:
        return pd.DataFrame(columns=["claim"])
    rows = []
    for claim, g in checks.groupby("claim", sort=False):
        row: dict[str, Any] = {"claim": claim}
        for matching, h in g.groupby("matching", sort=False):
            row[f"matched {matching}"] = stats.combine(h["verdict"])
        rows.append(row)
    return pd.DataFrame(rows).fillna("–")


def old_checks(paired: Any) -> dict[str, list[bool]]:
    """The rule the chapter used before issue #16, on a :func:`paired_table`, per NIC model, on
    the high-frequency group: ``direction`` (NIC's share above JPEG2000's), ``significant`` (the
    bootstrap interval above 0) and ``specific`` (the NIC advantage on high-frequency
    corruptions above its advantage on every other group, point estimates)."""
    out: dict[str, list[bool]] = {"direction": [], "significant": [], "specific": []}
    for _, g in paired.groupby("model", sort=False):
        high = g[g["group"] == "high"]
        if high.empty:
            continue
        h = high.iloc[0]
        out["direction"].append(bool(h["difference"] > 0))
        out["significant"].append(bool(h["ci_low"] > 0))
        others = g[g["group"] != "high"]["difference"]
        if len(others):
            out["specific"].append(bool(h["difference"] > others.max()))
    return out


def old_verdict(checks: Mapping[str, Sequence[bool]]) -> str:
    """The former verdict from :func:`old_checks`: significant for every model -> reproduced;
    right direction everywhere -> same direction, not significant; mixed -> partly; else not."""
    sig, direction = list(checks.get("significant", [])), list(checks.get("direction", []))
    if not direction:
        return "not testable here"
    if all(sig):
        return "reproduced"
    if all(direction):
        return "same direction, not significant"
    if any(direction):
        return "partly (direction for some models)"
    return "not reproduced"


def old_verdicts(
    studies: Mapping[str, tuple[Grid, str]],
    nic_models: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[dict[str, str], Any]:
    """The chapter's former verdicts (claim -> words, at matched bpp, as :func:`study_checks`
    names the claims) and the paired tables they came from (one frame, column ``study``)."""
    import pandas as pd

    was: dict[str, str] = {}
    tables = []
    for label, (grid, metric) in studies.items():
        if not grid or "bpp" not in matchings_of(grid, nic_models):
            continue
        paired = paired_table(grid, nic_models, metric, n_boot, seed)
        tables.append(paired.assign(study=label, metric=metric))
        c = old_checks(paired)
        was[f"3 ({label})"] = old_verdict(c)
        if c["specific"]:
            was[f"3 ({label}, specific)"] = (
                f"{sum(c['specific'])} of {len(c['specific'])} models (point estimates)"
            )
    return was, (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame())


def _points(v: float) -> str:
    return f"{100 * v:+.1f}" if v == v else "–"


def _interval(lo: float, hi: float) -> str:
    return f"[{_points(lo)}, {_points(hi)}]" if lo == lo and hi == hi else "(no interval)"


def changes_markdown(checks: Any, was: Mapping[str, str], paired: Any) -> str:
    """Bullets: per claim at matched bpp, the former verdict with its numbers (per model: the
    difference, its interval and the pooled McNemar p) and the verdict now (per model: effect,
    interval, images, clustered McNemar p), and where matched bpp and matched PSNR disagree."""
    lines = []
    if checks.empty:
        return "- No claim was testable here."
    combined = verdict_grid(checks).set_index("claim")
    for claim in dict.fromkeys(checks["claim"]):
        if claim not in was or "matched bpp" not in combined:
            continue
        rows = checks[(checks["claim"] == claim) & (checks["matching"] == "bpp")]
        now = combined.loc[claim, "matched bpp"]
        if claim.endswith("specific)"):
            new = "; ".join(
                f"{r['measure']}: {_points(r['effect'])} {_interval(r['ci_low'], r['ci_high'])}"
                f" points, {r['verdict']}"
                for _, r in rows.iterrows()
            )
            lines.append(f"Claim {claim}: was **{was[claim]}**, now **{now}** ({new}).")
            continue
        study = rows["study"].iloc[0]
        old = paired[(paired["study"] == study) & (paired["group"] == "high")]
        before = "; ".join(
            f"{r['model']}: {_points(r['difference'])} points "
            f"{_interval(r['ci_low'], r['ci_high'])}, pooled McNemar p = {r['mcnemar_p']:.3g} "
            f"over {r['pairs']} (image, corruption) pairs"
            for _, r in old.iterrows()
        )
        after = "; ".join(
            f"{r['model']}: {_points(r['effect'])} points "
            f"{_interval(r['ci_low'], r['ci_high'])} on {r['n_clusters']} images, "
            f"clustered McNemar p = {r['clustered_p']:.3g}, {r['verdict']}"
            for _, r in rows.iterrows()
        )
        same = " (unchanged)" if was[claim] == now else ""
        lines.append(
            f"Claim {claim}: was **{was[claim]}** ({before}), now **{now}**{same} ({after})."
        )
    for claim, row in combined.iterrows():
        both = "matched psnr" in row and "matched bpp" in row and row["matched psnr"] != "–"
        if both and row["matched psnr"] != row["matched bpp"]:
            lines.append(
                f"Claim {claim}: **{row['matched bpp']}** at matched bpp but "
                f"**{row['matched psnr']}** at matched PSNR: at the same bpp the comparison "
                "also carries the codecs' different coding efficiency."
            )
    return "\n".join(f"- {line}" for line in lines) or "- No verdict changes."


def clean_gap_markdown(paired: Any) -> str:
    """NIC − JPEG2000 top-1 on clean images per model (matched bpp), or "" without them."""
    if paired is None or paired.empty:
        return ""
    clean = paired[(paired["group"] == "clean") & (paired["metric"] == "top1")]
    if clean.empty:
        return ""
    parts = [
        f"{r['model']}: {_points(r['difference'])} points {_interval(r['ci_low'], r['ci_high'])}"
        for _, r in clean.iterrows()
    ]
    return "On clean images NIC − JPEG2000 top-1 is " + ", ".join(parts) + "."


# --- figures ------------------------------------------------------------------------------------


def plot_groups(table: Any, metric: str = "top1", title: str = "") -> Any:
    """Bars of ``metric`` per frequency group and system, with the interval as error bars; a
    NIC model and the JPEG2000 matched to it share a colour (:func:`labels.style`)."""
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(table["group"]))
    systems = list(dict.fromkeys(table["system"]))
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for k, s in enumerate(systems):
        sub = table[table["system"] == s].set_index("group").reindex(groups)
        x = np.arange(len(groups)) + (k - (len(systems) - 1) / 2) * width
        y = sub[metric].to_numpy(dtype=float)
        err = np.vstack([y - sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float) - y])
        ax.bar(x, y, width, yerr=err, capsize=2, label=s, **style(str(s)))
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylim(0, 1)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric).replace("top-1", "top-1 accuracy"))
    # beside the axes: each NIC model above its JPEG2000 (same colour, hatched: labels.style)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title)
    return fig


# --- the ImageNet study's aggregate, which a results bundle may carry ----------------------------

# ImageNet's terms forbid redistributing its images and anything of them, so a bundle withholds
# the per-image classifications (bundle.NOT_CATALOGUED). What it carries instead is this: the
# tables and verdicts the chapter computes from them (accuracies, intervals, paired effects),
# the kind of aggregate every paper publishes, from which no image can be recovered.
SUMMARY_SCHEMA = 1
SUMMARY_DATASET = "{name} (aggregate)"  # what the summary rests on, for a bundle's manifest
SUMMARY_FOLDER = "imagenet_summaries"
NO_LABELS_NOTE = (
    "\n\nWithout labelled images the top-1 sections are empty and the findings rest on the "
    "label-free Kodak study."
)
_FRAMES = ("clean", "top1", "match", "groups", "checks", "old_paired")


def summary_config(
    imagenet: str,
    imagenet_images: int | None,
    nic_models: Sequence[str],
    corruptions: Sequence[str],
    severity: int,
    *,
    classifier: str,
    clean_classifiers: Sequence[str],
    estimate: bool,
    psnr_matching: str,
    j2k: str,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """What the ImageNet study's aggregate depends on: the chapter's parameters (not the image
    ids, which a machine without the images cannot list) and the code's schemas."""
    from ..engines.classify import SCHEMA

    return {
        "summary_schema": SUMMARY_SCHEMA, "classify_schema": SCHEMA, "imagenet": imagenet,
        "imagenet_images": None if imagenet_images is None else int(imagenet_images),
        "nic_models": list(nic_models), "corruptions": list(corruptions),
        "severity": int(severity), "classifier": classifier,
        "clean_classifiers": list(clean_classifiers), "estimate": bool(estimate),
        "psnr_matching": psnr_matching, "j2k": j2k, "n_boot": int(n_boot), "seed": int(seed),
    }  # fmt: skip


@dataclass
class ImagenetSummary:
    """The ImageNet study as the chapter shows it: its tables, its claim checks and former
    verdicts (:func:`study_checks`, :func:`old_verdicts` of the top-1 and agreement studies),
    and where it came from (``served``: a bundle's copy, computed elsewhere)."""

    config: dict[str, Any]
    n_images: int
    clean: Any
    unavailable: list[str]
    clean_sentence: str
    top1: Any
    match: Any
    groups: Any
    paired: list[tuple[str, str, Any]]  # (matching, metric, paired_table)
    checks: Any
    was: dict[str, str]
    old_paired: Any
    result_keys: list[str]
    served: bool = False

    @property
    def matchings(self) -> list[str]:
        """The matchings (``bpp``, ``psnr``) its paired tables hold."""
        return list(dict.fromkeys(m for m, _, _ in self.paired))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (the frames column-split, floats to 15 digits)."""
        data: dict[str, Any] = {name: _frame_json(getattr(self, name)) for name in _FRAMES}
        data["paired"] = [[m, k, _frame_json(t)] for m, k, t in self.paired]
        data.update(config=self.config, n_images=self.n_images, unavailable=self.unavailable,
                    clean_sentence=self.clean_sentence, was=self.was,
                    result_keys=self.result_keys)  # fmt: skip
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], served: bool = False) -> ImagenetSummary:
        """The summary :meth:`to_json` wrote; DataError for anything else."""
        try:
            frames = {name: _frame(data[name]) for name in _FRAMES}
            paired = [(str(m), str(k), _frame(t)) for m, k, t in data["paired"]]
            return cls(config=dict(data["config"]), n_images=int(data["n_images"]),
                       unavailable=list(data["unavailable"]),
                       clean_sentence=str(data["clean_sentence"]), paired=paired,
                       was=dict(data["was"]), result_keys=list(data["result_keys"]),
                       served=served, **frames)  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not an ImageNet study summary ({exc})") from None


def _frame_json(frame: Any) -> dict[str, Any]:
    import json

    return json.loads(frame.to_json(orient="split", index=False, double_precision=15))


def _frame(data: Mapping[str, Any]) -> Any:
    import pandas as pd

    return pd.DataFrame(list(data["data"]), columns=list(data["columns"]))


def summarise_imagenet(
    config: Mapping[str, Any],
    dataset: str,
    ids: Sequence[str],
    grid: Grid,
    nic_models: Sequence[str],
    *,
    out: Any = None,
) -> ImagenetSummary:
    """The ImageNet study's tables and checks from its grid (``config``: :func:`summary_config`)."""
    n_boot, seed = int(config["n_boot"]), int(config["seed"])
    clean, unavailable = clean_table(dataset, ids, config["clean_classifiers"], seed=seed, out=out)
    paired = [
        (matching, metric, paired_table(grid, nic_models, metric, n_boot, seed, matching))
        for matching in matchings_of(grid, nic_models)
        for metric in ("top1", "agreement")
    ]
    studies = {"top-1": (grid, "top1"), "agreement": (grid, "agreement")}
    was, old_paired = old_verdicts(studies, nic_models, n_boot=n_boot, seed=seed)
    return ImagenetSummary(
        config=dict(config), n_images=len(ids), clean=clean, unavailable=unavailable,
        clean_sentence=clean_markdown(grid["clean", "none"]),
        top1=pivot_percent(grid_table(grid, "top1"), "top1"), match=match_table(grid, nic_models),
        groups=group_table(grid, "top1", n_boot=n_boot, seed=seed), paired=paired,
        checks=study_checks(studies, nic_models, n_boot=n_boot, seed=seed), was=was,
        old_paired=old_paired, result_keys=sorted(r.key for r in grid.values()),
    )  # fmt: skip


def summary_path(config: Mapping[str, Any], out: Any = None) -> Any:
    """Where the summary of ``config`` is cached under the results folder."""
    from pathlib import Path

    from ..cache import config_key, results_dir

    folder = Path(out) if out is not None else results_dir()
    return folder / SUMMARY_FOLDER / f"{config_key(config)}.json"


def served_summary(config: Mapping[str, Any], out: Any = None) -> ImagenetSummary | None:
    """The summary of ``config`` from the results folder, else a bundle (noted in the chapter's
    uses log, so a bundle carries it), else None (and nothing noted)."""
    from ..cache import read_json
    from ..store import bundle_copy, served_file

    path = summary_path(config, out)
    if not path.is_file() and bundle_copy(path) is None:
        return None
    found = served_file(path, SUMMARY_DATASET.format(name=config["imagenet"]))
    data = read_json(found)
    if not isinstance(data, dict):
        return None
    summary = ImagenetSummary.from_json(data, served=found != path)
    return summary if summary.config == dict(config) else None


def save_summary(summary: ImagenetSummary, out: Any = None) -> None:
    """Cache ``summary`` (atomically) where :func:`served_summary` finds it."""
    from ..io import atomic_write_json

    atomic_write_json(summary_path(summary.config, out), summary.to_json())


def imagenet_note(summary: ImagenetSummary | None, imagenet: str, ids: Sequence[str]) -> str:
    """The page's line on where its ImageNet sections come from ("" when computed here)."""
    if summary is not None and summary.served and not ids:
        return (
            f"The ImageNet sections show the aggregate of the study on {summary.n_images} "
            f"images of {imagenet} as the results bundle carries it (tables, intervals and "
            "verdicts computed where the images were; ImageNet's terms keep its images and "
            "per-image results out of the repository). To recompute them, point "
            "`NICSPEC_DATA_MIRROR` at a mirror with the subset or set `imagenet` to "
            "`folder:PATH` (a folder of ImageNet validation images with `labels.csv`)."
        )
    if summary is not None and summary.served:
        return (
            f"The ImageNet sections show the results bundle's aggregate of the study on "
            f"{summary.n_images} images (`make book FRESH=1` recomputes it from the images)."
        )
    return ""


def all_checks(
    summary: ImagenetSummary | None,
    kodak_grid: Grid,
    nic_models: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[Any, dict[str, str], Any]:
    """The chapter's claim checks, former verdicts and their paired tables: the ImageNet
    study's from its summary, then the label-free Kodak study's (the order of
    :func:`study_checks` on all three studies)."""
    import pandas as pd

    kodak = {"agreement, Kodak": (kodak_grid, "agreement")}
    k_checks = study_checks(kodak, nic_models, n_boot=n_boot, seed=seed)
    k_was, k_paired = old_verdicts(kodak, nic_models, n_boot=n_boot, seed=seed)
    if summary is None:
        return k_checks, k_was, k_paired

    def joined(a: Any, b: Any) -> Any:
        parts = [t for t in (a, b) if len(t)]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts or [a])[0]

    return (
        joined(summary.checks, k_checks),
        {**summary.was, **k_was},
        joined(summary.old_paired, k_paired),
    )
