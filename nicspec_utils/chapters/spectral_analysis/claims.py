"""Chapter 3's findings: the tables and checks of claims 1–5, their paired per-image effects and
verdicts through :mod:`nicspec_utils.stats`, and the text that reports them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ... import findings
from ...findings import verdict
from ...spectral import BAND_NAMES
from .settings import ARTEFACT_TV, MATCHINGS, N_BOOT, NIC, ROUNDINGS
from .study import _keys, interpolate_shares, paired, tv_distance, unit_table

# --- verdicts -----------------------------------------------------------------------------------


def claim1_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset,) model: the high-band share of D for NIC and for JPEG2000 at its bpp, their
    difference and whether NIC's is larger (``holds``, claim 1).

    ``table`` has columns ``model``, ``codec`` (``NIC`` / ``JPEG2000``), ``high`` and optionally
    ``dataset`` and ``bpp``.
    """
    keys = _keys(table, "dataset", "model")
    values = ["high", *(["bpp"] if "bpp" in table else [])]
    wide = paired(table, values, keys)
    if not {"high NIC", "high JPEG2000"} <= set(wide):
        return wide.assign(**{"high gap": [], "holds": []}) if wide.empty else wide
    wide = wide.dropna(subset=["high NIC", "high JPEG2000"])
    wide["high gap"] = wide["high NIC"] - wide["high JPEG2000"]
    wide["holds"] = wide["high gap"] > 0
    cols = [*keys, *(["bpp NIC"] if "bpp NIC" in wide else []), "high NIC", "high JPEG2000"]
    return wide[[*cols, "high gap", "holds"]].reset_index(drop=True)


def claim1_checks(table: pd.DataFrame) -> list[bool]:
    """Per (dataset,) NIC model: its D puts a larger share of energy in the high band than
    JPEG2000's at the same bpp (see :func:`claim1_table`)."""
    t = claim1_table(table)
    return [bool(v) for v in t["holds"]] if "holds" in t else []


def group_gap(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """NIC minus JPEG2000 of ``value`` per (dataset, model, corruption, group, severity: those
    present), with the corruption's group."""
    idx = _keys(table, "dataset", "model", "corruption", "group", "severity")
    wide = table.pivot_table(index=idx, columns="codec", values=value, observed=True, sort=False)
    wide = wide.reset_index()
    wide["gap"] = wide["NIC"] - wide["JPEG2000"]
    return wide[[*idx, "gap"]]


def claim2_table(table: pd.DataFrame, value: str = "psnr") -> pd.DataFrame:
    """Per model: the mean NIC − JPEG2000 gap of ``value`` (PSNR w.r.t. the corrupted input)
    over the corruptions of each group, and whether the high group's gap is below the mean gap
    of the low/medium corruptions (``holds``, claim 2)."""
    gaps = group_gap(table, value)
    out = []
    for model, g in gaps.groupby("model", sort=False):
        rec: dict[str, Any] = {"model": model}
        for grp in BAND_NAMES:
            sel = g.loc[g["group"] == grp, "gap"]
            rec[f"{grp} gap"] = float(sel.mean()) if len(sel) else float("nan")
        high = g.loc[g["group"] == "high", "gap"]
        rest = g.loc[g["group"] != "high", "gap"]
        rec["low/medium gap"] = float(rest.mean()) if len(rest) else float("nan")
        rec["holds"] = bool(high.mean() < rest.mean()) if len(high) and len(rest) else None
        out.append(rec)
    cols = ["model", *(f"{b} gap" for b in BAND_NAMES), "low/medium gap", "holds"]
    return pd.DataFrame(out, columns=cols)


def claim2_checks(table: pd.DataFrame) -> list[bool]:
    """Per model: NIC's PSNR w.r.t. its (corrupted) input, relative to JPEG2000, is lower on the
    high-frequency corruptions than on the low/medium ones (its G grows for high frequencies).

    ``table``: columns model, corruption, group, codec, psnr. Needs a high and a low/medium one.
    """
    t = claim2_table(table)
    return [bool(v) for v in t["holds"] if v is not None]


def claim3_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, corruption): R energy (and high-band R energy) of NIC and of JPEG2000 at its
    bpp, the ratio NIC / JPEG2000, and for high-frequency corruptions whether NIC's R energy is
    the lower (``holds``, claim 3; None for the other groups)."""
    t = table.copy()
    t["high energy"] = t["high"] * t["energy"]
    keys = _keys(t, "dataset", "model", "corruption", "group", "severity")
    values = ["energy", "high energy", *(["psnr_wrt_clean"] if "psnr_wrt_clean" in t else [])]
    wide = paired(t, values, keys)
    wide["ratio"] = wide["energy NIC"] / wide["energy JPEG2000"]
    wide["high ratio"] = wide["high energy NIC"] / wide["high energy JPEG2000"]
    wide["holds"] = [
        bool(r < 1) if g == "high" else None
        for r, g in zip(wide["ratio"], wide["group"], strict=True)
    ]
    return wide


def claim3_checks(table: pd.DataFrame) -> list[bool]:
    """Per (model, high-frequency corruption): NIC's R energy is below JPEG2000's.

    ``table``: columns model, corruption, group, codec, energy (of R).
    """
    gaps = group_gap(table, "energy")
    return [bool(g < 0) for g in gaps.loc[gaps["group"] == "high", "gap"]]


def trend_checks(ratios: pd.DataFrame) -> tuple[list[bool], list[bool]]:
    """Claims 2 and 3 at each severity of the trend study.

    Claim 2, per (model, severity): the NIC / JPEG2000 ratio of G energy on the high-frequency
    corruptions is above its geometric mean over the low/medium ones. Claim 3, per (model,
    high-frequency corruption, severity): NIC's R energy below JPEG2000's (ratio < 1).
    """
    c2: list[bool] = []
    g = ratios[ratios["measure"] == "G"]
    for _, s in g.groupby(["model", "severity"], sort=True):
        high = np.log(s.loc[s["group"] == "high", "ratio"].to_numpy(dtype=float))
        rest = np.log(s.loc[s["group"] != "high", "ratio"].to_numpy(dtype=float))
        if high.size and rest.size:
            c2.append(bool(high.mean() > rest.mean()))
    r = ratios[(ratios["measure"] == "R") & (ratios["group"] == "high")]
    c3 = [bool(v < 1) for v in r["ratio"]]
    return c2, c3


def claim5_checks(table: pd.DataFrame, base: str) -> pd.DataFrame:
    """Claim 5 on :func:`variant_table`, each check at matched bpp.

    Pruned models: the high-band R energy on the noise relative to JPEG2000 at the model's own bpp
    is below the same ratio of the base model. MS-SSIM models: the D band shares differ by more
    than :data:`ARTEFACT_TV` (total variation) from the MSE ladder's at the same bpp (from the base
    model's when no ladder column is there). Columns: model, check, value, threshold, holds.
    """
    from ...labels import CURVE_MSSSIM, CURVE_PRUNED

    b = table[table["model"] == base].iloc[0]
    out = []
    for _, v in table.iterrows():
        if v["kind"] == CURVE_PRUNED:
            out.append({
                "model": v["model"], "check": "high-band R energy / JPEG2000's, vs the base's",
                "value": v["R high / JPEG2000"], "threshold": b["R high / JPEG2000"],
                "holds": bool(v["R high / JPEG2000"] < b["R high / JPEG2000"]),
            })  # fmt: skip
        elif v["kind"] == CURVE_MSSSIM:
            col = "TV vs MSE at bpp" if "TV vs MSE at bpp" in table else "TV vs base"
            out.append({
                "model": v["model"], "check": f"D band shares: {col}", "value": v[col],
                "threshold": ARTEFACT_TV, "holds": bool(v[col] > ARTEFACT_TV),
            })  # fmt: skip
    return pd.DataFrame(out, columns=["model", "check", "value", "threshold", "holds"])


def findings_table(checks: Mapping[str, Sequence[bool]]) -> pd.DataFrame:
    """One row per claim: number of checks, passed, verdict."""
    return pd.DataFrame(
        [{"claim": k, "checks": len(v), "passed": int(sum(v)), "verdict": verdict(list(v))}
         for k, v in checks.items()]
    )  # fmt: skip


# --- findings text --------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * float(x):.0f} %"


def findings_markdown(
    c1: pd.DataFrame,
    c2: pd.DataFrame,
    c3: pd.DataFrame,
    ratios: pd.DataFrame,
    c5: pd.DataFrame,
) -> str:
    """Markdown bullets stating the executed numbers behind each claim's verdict (inputs: the
    ``claim*_table`` results, :func:`trend_ratios` and :func:`claim5_checks`)."""
    from ...labels import dataset_label

    lines = []
    if len(c1):
        parts = [
            f"{dataset_label(r['dataset']).split(' (')[0] + ' ' if 'dataset' in r else ''}"
            f"{r['model']}: {_pct(r['high NIC'])} vs {_pct(r['high JPEG2000'])}"
            for _, r in c1.iterrows()
        ]
        lines.append(
            f"**Claim 1 (D).** NIC's high-band share of D exceeds JPEG2000's at the same bpp in "
            f"{int(c1['holds'].sum())} of {len(c1)} cases (NIC vs JPEG2000): {'; '.join(parts)}."
        )
    if len(c2):
        parts = [
            f"{r['model']}: {r['high gap']:+.2f} dB on high vs {r['low/medium gap']:+.2f} dB on "
            "low/medium corruptions"
            for _, r in c2.iterrows()
        ]
        lines.append(
            "**Claim 2 (G).** NIC − JPEG2000 PSNR w.r.t. the corrupted input, mean per group: "
            + "; ".join(parts)
            + "."
        )
    high = c3[c3["group"] == "high"] if len(c3) else c3
    if len(high):
        parts = [f"{r['model']} {r['corruption']}: {r['ratio']:.2f}" for _, r in high.iterrows()]
        lines.append(
            "**Claim 3 (R).** R energy of NIC / JPEG2000 at the same bpp on high-frequency "
            f"corruptions (below 1: NIC closer to the clean image): {'; '.join(parts)}."
        )
    if len(ratios):
        parts = []
        for (name, m), s in ratios.groupby(["corruption", "measure"], sort=False):
            s = s.sort_values("severity")
            seq = ", ".join(f"{v:.2f}" for v in s["ratio"])
            parts.append(f"{name} {m}: {seq}")
        sevs = ", ".join(str(v) for v in sorted(set(ratios["severity"])))
        lines.append(
            f"**Severity trend.** Energy ratio NIC / JPEG2000 (each at the NIC's bpp) at "
            f"severities {sevs}: {'; '.join(parts)}."
        )
    if len(c5):
        parts = [
            f"{r['model']}: {r['check']} = {r['value']:.3f} (threshold {r['threshold']:.3f}): "
            f"{'holds' if r['holds'] else 'fails'}"
            for _, r in c5.iterrows()
        ]
        lines.append("**Claim 5 (variants, at matched bpp).** " + "; ".join(parts) + ".")
    return "\n".join(f"- {line}" for line in lines)


def _m(name: str, rounded: bool) -> str:
    return f"{name}_rounded" if rounded else name


def _effect_claim1(w: pd.DataFrame, matching: str, rounded: bool) -> pd.DataFrame:
    col = f"{_m('D', rounded)}.high"
    return w.assign(value=w[f"{col} NIC"] - w[f"{col} JPEG2000"])


def _effect_claim5_msssim(units: pd.DataFrame, matching: str, rounded: bool) -> pd.DataFrame:
    """Per (MS-SSIM model, image): TV distance of its D band shares from the MSE ladder's at its
    own bpp on that image (ladder interpolated in log bpp), minus :data:`ARTEFACT_TV`."""
    from ...labels import CURVE_LADDER, CURVE_MSSSIM, nic_kind

    m = _m("D", rounded)
    cols = [f"{m}.{b}" for b in BAND_NAMES]
    nic = units[(units["side"] == NIC) & units["corruption"].isna()]
    if nic.empty or not set(cols) <= set(nic):
        return pd.DataFrame()
    out = []
    kinds = nic["model"].map(lambda s: nic_kind(str(s).split(" ")[0]))
    ladder = nic[kinds == CURVE_LADDER]
    for _, v in nic[nic["kind"] == CURVE_MSSSIM].iterrows():
        lad = ladder[(ladder["dataset"] == v["dataset"]) & (ladder["image"] == v["image"])]
        lad = lad.drop_duplicates("model")
        if len(lad) < 1:
            continue
        lad = lad.rename(columns=dict(zip(cols, BAND_NAMES, strict=True)))
        at, _ = interpolate_shares(lad[["bpp", *BAND_NAMES]], float(v["bpp"]))
        own = {b: v[c] for b, c in zip(BAND_NAMES, cols, strict=True)}
        out.append({"dataset": v["dataset"], "image": v["image"], "model": v["model"],
                    "value": tv_distance(own, at) - ARTEFACT_TV})  # fmt: skip
    return pd.DataFrame(out)


CLAIM1 = findings.Contrast(
    "1", "high-band share of D, NIC − JPEG2000", 1,
    "above 0: NIC's D more at high frequencies than JPEG2000's", "clean",
    lambda r: [f"{_m('D', r)}.high"], _effect_claim1, True, "dataset",
)  # fmt: skip
CLAIM5_MSSSIM = findings.Contrast(
    "5 (MS-SSIM)", f"TV of D band shares from the MSE ladder at the same bpp, minus "
    f"{ARTEFACT_TV:g}", 1, "above 0: MS-SSIM NIC's artefacts differ from MSE NIC's", "clean",
    lambda r: [], _effect_claim5_msssim, True,
)  # fmt: skip


def _low_medium(w: pd.DataFrame, side: str, m: str) -> pd.Series:
    """Low- plus medium-band D energy (``m``: ``D`` or ``D_rounded``) of one side of ``w``."""
    return w[f"{m}.energy_low {side}"].astype(float) + w[f"{m}.energy_medium {side}"].astype(float)


def _effect_claim1_j2k_energy(w: pd.DataFrame, matching: str, rounded: bool) -> pd.DataFrame:
    """Per image: ``log2`` of NIC's low+medium-band D energy over JPEG2000's (NaN, left out,
    where either is not positive)."""
    m = _m("D", rounded)
    a, b = _low_medium(w, NIC, m), _low_medium(w, "JPEG2000", m)
    ok = (a > 0) & (b > 0)
    return w.assign(value=np.log2(a.where(ok) / b.where(ok))).dropna(subset=["value"])


def _effect_claim1_j2k_split(w: pd.DataFrame, matching: str, rounded: bool) -> pd.DataFrame:
    """Per image: JPEG2000's low+medium-band share of D minus its high-band share."""
    m = _m("D", rounded)
    lm = w[f"{m}.low JPEG2000"].astype(float) + w[f"{m}.medium JPEG2000"].astype(float)
    return w.assign(value=lm - w[f"{m}.high JPEG2000"].astype(float)).dropna(subset=["value"])


PAPER_1B = "JPEG2000 does the opposite of NIC: more of its D at low/medium frequencies"
CLAIM1_J2K = findings.Contrast(
    "1 (JPEG2000)", "low+medium-band D energy, log2 NIC / JPEG2000", -1,
    f"below 0: {PAPER_1B} than NIC's", "clean",
    lambda r: [f"{_m('D', r)}.energy_{b}" for b in ("low", "medium")],
    _effect_claim1_j2k_energy, True, "dataset",
)  # fmt: skip
CLAIM1_J2K_SPLIT = findings.Contrast(
    "1 (JPEG2000)", "JPEG2000's D: low+medium-band share minus high-band share", 1,
    f"above 0: {PAPER_1B} than at high ones", "clean",
    lambda r: [f"{_m('D', r)}.{b}" for b in BAND_NAMES],
    _effect_claim1_j2k_split, True, "dataset",
)  # fmt: skip
# contrasts whose effect reads several columns: checked here (findings.check_contrast counts
# the pairs an energy ratio drops from one column only)
_OWN_PAIRED = (CLAIM1_J2K, CLAIM1_J2K_SPLIT)


def _check_own_paired(
    spec: findings.Contrast, units: pd.DataFrame, matching: str, rounding: str, n_boot: int,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    """:func:`findings.check` of a contrast of :data:`_OWN_PAIRED` (the same pairing, matching
    and strata as :func:`findings.check_contrast`; its note counts the pairs left out)."""
    rounded = rounding == "reference"
    cols = spec.columns(rounded)
    u = findings.select_units(units, spec.units)
    w = findings.pair_units(u, matching, cols) if len(u) else pd.DataFrame()
    note, eff = "", None
    if len(w) and any(f"{c} NIC" not in w for c in cols):
        note = "not recorded (evaluations before per-image energies: rerun them)"
    elif len(w):
        eff = spec.effect(w, matching, rounded)
        if len(eff) < len(w):
            note = f"{len(w) - len(eff)} pair(s) without low/medium-band energy left out"
    return findings.check(
        spec.claim, spec.measure, spec.direction, eff, matching=matching, rounding=rounding,
        strata=spec.strata, paper=spec.paper, n_boot=n_boot, seed=seed, note=note,
    )  # fmt: skip


def _trend(c: findings.Contrast, what: str) -> findings.Contrast:
    return replace(c, claim=f"{c.claim} (trend)", measure=f"as claim {c.claim} ({what}), every "
                   "severity of the trend study")  # fmt: skip


# (study, contrast): the shared contrasts of claims 2, 3, 5 (findings) and this chapter's own
CLAIMS: tuple[tuple[str, findings.Contrast], ...] = (
    ("d", CLAIM1),
    ("d", CLAIM1_J2K),
    ("d", CLAIM1_J2K_SPLIT),
    ("gr", findings.CLAIM2_PSNR),
    ("gr", findings.CLAIM2_SHARE),
    ("gr", findings.CLAIM2_ENERGY),
    ("gr", findings.CLAIM2_HIGH_ENERGY),
    ("trend", _trend(findings.CLAIM2_PSNR, "PSNR / bpp")),
    ("trend", _trend(findings.CLAIM2_ENERGY, "G energy")),
    ("gr", findings.CLAIM3_PSNR),
    ("gr", findings.CLAIM3_SHARE),
    ("gr", findings.CLAIM3_ENERGY),
    ("gr", findings.CLAIM3_HIGH_ENERGY),
    ("trend", _trend(findings.CLAIM3_PSNR, "PSNR w.r.t. clean")),
    ("trend", _trend(findings.CLAIM3_HIGH_ENERGY, "high-band R energy")),
    ("variants", findings.CLAIM5_PSNR),
    ("variants", findings.CLAIM5_SHARE),
    ("variants", findings.CLAIM5_HIGH_ENERGY),
    ("variants+d", CLAIM5_MSSSIM),
)


def claim_checks(
    studies: Mapping[str, Sequence[Mapping[str, Any]]],
    specs: Sequence[tuple[str, findings.Contrast]] = CLAIMS,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Every claim check of :data:`CLAIMS` under both matchings and, for spectral measures, both
    roundings (:func:`findings.check_contrast`): mean paired effect, seeded cluster-bootstrap
    95 % interval over images (strata: dataset for claim 1, corruption for claim 3), n (paired
    values) and images, verdict (interval only, at least :data:`stats.MIN_IMAGES` images),
    images needed, the paper's side, a note (why inconclusive) and the method.

    ``studies`` maps "d", "gr", "trend", "variants" to the rows of those studies (missing or
    empty: the claim is not testable here). The MS-SSIM check compares a NIC with the MSE
    ladder of "d" (no JPEG2000), so it has one matching ("–").
    """
    units = {k: unit_table(v) for k, v in studies.items() if v}
    out = []
    for study, spec in specs:
        parts = [units[k] for k in study.split("+") if k in units]
        u = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        own = spec is CLAIM5_MSSSIM
        for matching in ("–",) if own else findings.MATCHINGS:
            for rounding in ROUNDINGS if spec.spectral else ("n/a",):
                if own:
                    eff = spec.effect(u, "bpp", rounding == "reference") if len(u) else None
                    row = findings.check(
                        spec.claim, spec.measure, spec.direction, eff, matching=matching,
                        rounding=rounding, paper=spec.paper, n_boot=n_boot, seed=seed,
                    )  # fmt: skip
                elif any(spec is c for c in _OWN_PAIRED):
                    row = _check_own_paired(spec, u, matching, rounding, n_boot, seed)
                else:
                    row = findings.check_contrast(spec, u, matching, rounding, n_boot, seed)
                out.append(row)
    cols = ["claim", "measure", "matching", "rounding", "effect", "ci_low", "ci_high", "n",
            "n_images", "verdict", "images_needed", "paper", "note", "method"]  # fmt: skip
    table = pd.DataFrame(out).reindex(columns=cols)
    table["images_needed"] = table["images_needed"].astype("Int64")
    return table


def verdict_grid(checks: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, measure), one verdict column per (matching, rounding) present."""
    if checks.empty:
        return checks
    t = checks.assign(col=checks["matching"].map(lambda m: f"matched {m}" if m != "–" else "")
                      + checks["rounding"].map({"none": ", unrounded", "reference":
                                                ", rounded", "n/a": ""}))  # fmt: skip
    t["col"] = t["col"].str.strip(", ").replace("", "NIC vs NIC")
    wide = t.pivot_table(index=["claim", "measure"], columns="col", values="verdict",
                         aggfunc="first", sort=False)  # fmt: skip
    order = [c for c in ("matched bpp, unrounded", "matched bpp, rounded", "matched bpp",
                         "matched psnr, unrounded", "matched psnr, rounded", "matched psnr",
                         "NIC vs NIC") if c in wide]  # fmt: skip
    return wide[order].reset_index().fillna("–")


def old_verdicts(checks: Mapping[str, Sequence[bool]]) -> dict[str, str]:
    """The point-estimate verdicts the chapter gave before issue #16 (``findings.verdict`` of
    each claim's checks), with how many checks passed."""
    return {k: f"{verdict(list(v))} ({int(sum(v))} of {len(v)})" for k, v in checks.items()}


def _fmt_effect(r: Mapping[str, Any]) -> str:
    if not (isinstance(r.get("effect"), float) and math.isfinite(r["effect"])):
        return "no paired values"
    lo, hi = r["ci_low"], r["ci_high"]
    ci = f"[{lo:+.3g}, {hi:+.3g}]" if math.isfinite(lo) else "(no interval)"
    return f"{r['effect']:+.3g} {ci}, {r['n']} values on {r['n_images']} image(s)"


def claim1_j2k_markdown(checks: pd.DataFrame) -> str:
    """What the checks of claim 1's second half (:data:`CLAIM1_J2K`, :data:`CLAIM1_J2K_SPLIT`)
    found, one sentence per measure: its verdict under each matching and rounding, with the
    effect and interval it rests on."""
    rnd = {"none": "unrounded", "reference": "rounded", "n/a": ""}
    lines = []
    for spec in (CLAIM1_J2K, CLAIM1_J2K_SPLIT):
        sel = checks[(checks["claim"] == spec.claim) & (checks["measure"] == spec.measure)]
        if sel.empty:
            continue
        parts = [
            f"matched {r['matching']}, {rnd.get(str(r['rounding']), r['rounding'])}: "
            f"**{r['verdict']}** ({_fmt_effect(r)})"
            for _, r in sel.iterrows()
        ]
        lines.append(f"{spec.measure} ({spec.paper}): " + "; ".join(parts) + ".")
    if not lines:
        return "- Claim 1's second half was not tested (no D study)."
    return "\n".join(f"- {line}" for line in lines)


def changes_markdown(checks: pd.DataFrame, old: Mapping[str, str]) -> str:
    """Bullets: where a claim's verdict at matched bpp without rounding (the chapter's former
    setting) differs from its former point-estimate verdict (``old``: claim -> words, see
    :func:`old_verdicts`, keyed like :data:`CLAIMS`' claims), where matched PSNR and matched
    bpp disagree, and where the rounding changes the verdict."""
    lines = []
    primary = {c: checks.loc[checks["claim"] == c, "measure"].iloc[0] for c in checks["claim"]}
    former = checks[(checks["matching"].isin(["bpp", "–"])) & (checks["rounding"] != "reference")]
    for _, r in former.iterrows():
        was = old.get(str(r["claim"]))
        if was is None or r["measure"] != primary[r["claim"]]:
            continue
        same = was.split(" (")[0] == r["verdict"]
        lines.append(
            f"Claim {r['claim']}: was **{was}** (point estimates), now **{r['verdict']}** "
            f"({r['measure']}, {_fmt_effect(r)})" + ("; unchanged." if same else ".")
        )
    keys = ["claim", "measure", "rounding"]
    both = checks[checks["matching"].isin(MATCHINGS)]
    for _, g in both.groupby(keys, sort=False):
        if g["matching"].nunique() < 2:
            continue
        b = g[g["matching"] == "bpp"].iloc[0]
        p = g[g["matching"] == "psnr"].iloc[0]
        if b["verdict"] != p["verdict"]:
            rnd = {"n/a": "", "none": ", unrounded", "reference": ", rounded"}[b["rounding"]]
            lines.append(
                f"Claim {b['claim']} ({b['measure']}{rnd}): **{b['verdict']}** at matched bpp "
                f"({_fmt_effect(b)}) but **{p['verdict']}** at matched PSNR ({_fmt_effect(p)}): "
                "the bpp comparison also carries the two codecs' different coding efficiency; "
                "at the same PSNR only where the error goes (or what the same fidelity costs) "
                "is compared."
            )
    spectral = checks[checks["rounding"].isin(ROUNDINGS)]
    for _, g in spectral.groupby(["claim", "measure", "matching"], sort=False):
        if g["rounding"].nunique() < 2:
            continue
        a = g[g["rounding"] == "none"].iloc[0]
        c = g[g["rounding"] == "reference"].iloc[0]
        if a["verdict"] != c["verdict"]:
            lines.append(
                f"Claim {a['claim']} ({a['measure']}, matched {a['matching']}): "
                f"**{a['verdict']}** unrounded ({_fmt_effect(a)}), **{c['verdict']}** with the "
                f"reference code's rounding ({_fmt_effect(c)})."
            )
    return "\n".join(f"- {line}" for line in lines) or "- No verdict changes."
