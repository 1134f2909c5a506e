"""The one findings model: the claims several chapters test, and one findings table.

A claim shared by chapters (claims 2, 3 and 5 are tested in chapter 2 on PSNR and in chapter 3
on PSNR and the spectra) is a :class:`Contrast` here: which per-image units it reads, the
columns it needs, the paired per-image effect it computes from NIC and JPEG2000 on the same
image, and the sign the paper predicts. Chapters build a *units* table (one row per image and
side, :func:`pair_units`) from their evaluations' per-image records (:func:`unit_values`), then
:func:`check` turns a contrast into an effect, a cluster-bootstrap interval over images and a
verdict with :mod:`nicspec_utils.stats`, and :func:`findings_table` renders every check the
same way. So the same data gives the same verdict in every chapter.

Per-image energies are compared as ``log2(NIC / JPEG2000)`` (a ratio, so images of different
error scale weigh alike; 1 = twice the energy); a pair with a zero energy (a rounded map can be
error-free) has no ratio and is left out, which the check's note says.

:func:`verdict` is the older rule for claims decided by several boolean checks (chapters whose
claims are not paired per image).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NIC = "NIC"
JPEG2000 = "JPEG2000"
MATCHINGS = ("bpp", "psnr")
ROUNDINGS = ("none", "reference")
UNIT_KEYS = ("dataset", "model", "kind", "corruption", "group", "severity", "image")
BANDS = ("low", "medium", "high")


def verdict(checks: Sequence[bool], words: tuple[str, str, str] | None = None) -> str:
    """All checks pass -> reproduced, some -> partly, none -> not reproduced; none run -> n/a.

    ``words`` replaces (all, some, none), e.g. ``("observed", "partly observed", "not observed")``.
    A check decided by a point estimate belongs in :mod:`nicspec_utils.stats` instead (verdict
    from a paired bootstrap interval; :func:`nicspec_utils.stats.combine` for several).
    """
    yes, some, no = words or ("reproduced", "partly reproduced", "not reproduced")
    if not checks:
        return "not testable here"
    if all(checks):
        return yes
    return some if any(checks) else no


# --- per-image units --------------------------------------------------------------------------


def unit_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """The values of one per-image evaluation record that claims read: bpp, psnr,
    psnr_wrt_clean, each map's band shares ``<map>.<band>`` (``D.high``, ``R_rounded.high``) and,
    where recorded, its energies ``<map>.energy`` (total, DC excluded) and
    ``<map>.energy_<band>``."""
    out: dict[str, Any] = {k: record.get(k) for k in ("bpp", "psnr", "psnr_wrt_clean")}
    for m, bands in (record.get("bands") or {}).items():
        for b, v in bands.items():
            out[f"{m}.{b}"] = v
    for m, e in (record.get("energy") or {}).items():
        out[f"{m}.energy"] = e.get("total")
        for b in BANDS:
            out[f"{m}.energy_{b}"] = e.get(b)
    return out


def pair_units(units: Any, matching: str, columns: Sequence[str]) -> Any:
    """NIC and JPEG2000 side by side per unit (:data:`UNIT_KEYS`): ``<col> NIC`` and
    ``<col> JPEG2000`` for each of ``columns``. ``units`` is long form with a ``side`` column
    (``NIC``, or the matching: ``bpp`` / ``psnr``) and ``matched`` (False: a PSNR-matched image
    out of tolerance, dropped)."""
    import pandas as pd

    if matching not in MATCHINGS:
        from .errors import UsageError

        raise UsageError(f"matching must be one of {', '.join(MATCHINGS)}, got {matching!r}")
    if units.empty:
        return pd.DataFrame()
    keys = [k for k in UNIT_KEYS if k in units]
    cols = [c for c in columns if c in units]
    nic = units[units["side"] == NIC][[*keys, *cols]]
    ok = units["matched"].astype(bool) if "matched" in units else True
    other = units[(units["side"] == matching) & ok][[*keys, *cols]]
    return nic.merge(other, on=keys, suffixes=(" NIC", " JPEG2000"))


def _m(name: str, rounded: bool) -> str:
    return f"{name}_rounded" if rounded else name


def log2_ratio(w: Any, col: str) -> Any:
    """``log2(<col> NIC / <col> JPEG2000)``; NaN where either is not positive."""
    a = w[f"{col} NIC"].astype(float)
    b = w[f"{col} JPEG2000"].astype(float)
    ok = (a > 0) & (b > 0)
    return np.log2(a.where(ok) / b.where(ok))


def high_minus_rest(w: Any, value: Any) -> Any:
    """Per (dataset, image, model, severity): mean ``value`` on the high-frequency corruptions
    minus its mean on the low/medium ones (units lacking either group, or a value, drop out)."""
    import pandas as pd

    keys = ["dataset", "image", "model", "severity"]
    t = w[keys + ["group"]].assign(v=np.asarray(value, dtype=float), high=w["group"] == "high")
    t = t.dropna(subset=["v"])
    m = t.groupby([*keys, "high"], dropna=False)["v"].mean().unstack("high")
    if True not in m or False not in m:
        return pd.DataFrame(columns=[*keys, "value"])
    return (m[True] - m[False]).dropna().rename("value").reset_index()


def pruned_minus_base(w: Any, gap: Any) -> Any:
    """Per (pruned model, image, input): its NIC − JPEG2000 ``gap`` minus the base model's on
    the same input (rows need ``kind``: ``base`` or the pruned curve's kind)."""
    from .labels import CURVE_PRUNED

    t = w.assign(gap=np.asarray(gap, dtype=float)).dropna(subset=["gap"])
    keys = ["dataset", "image", "corruption", "severity"]
    base = t[t["kind"] == "base"][[*keys, "gap"]]
    pruned = t[t["kind"] == CURVE_PRUNED]
    m = pruned.merge(base, on=keys, suffixes=("", " base"))
    return m.assign(value=m["gap"] - m["gap base"])


# --- the shared claims ------------------------------------------------------------------------

Effect = Callable[[Any, str, bool], Any]


@dataclass(frozen=True)
class Contrast:
    """One claim check: the per-image effect of NIC against JPEG2000 and the paper's sign.

    ``units`` picks the units it reads ("corrupted", "high": high-frequency corruptions,
    "clean"); ``columns(rounded)`` the values to pair; ``effect(w, matching, rounded)`` gives,
    from the paired frame ``w``, a frame with dataset, image, ``value`` and optionally
    ``stratum``. ``paper`` states the paper's side in words."""

    claim: str
    measure: str
    direction: int
    paper: str
    units: str
    columns: Callable[[bool], list[str]]
    effect: Effect
    spectral: bool = False
    strata: str | None = None


def _claim2_gap(w: Any, matching: str) -> Any:
    if matching == "bpp":  # NIC's advantage in dB at the same rate
        return w["psnr NIC"] - w["psnr JPEG2000"]
    # at the same PSNR: NIC's advantage in bits, log2 of JPEG2000's bpp over the NIC's
    return np.log2(w["bpp JPEG2000"] / w["bpp NIC"])


def _share(m: str) -> Callable[[bool], list[str]]:
    return lambda r: [f"{_m(m, r)}.high"]


def _energy(m: str, band: str = "") -> Callable[[bool], list[str]]:
    return lambda r: [f"{_m(m, r)}.energy" + (f"_{band}" if band else "")]


def _share_gap(m: str) -> Callable[[Any, bool], Any]:
    return lambda w, r: w[f"{_m(m, r)}.high NIC"] - w[f"{_m(m, r)}.high JPEG2000"]


def _energy_ratio(m: str, band: str = "") -> Callable[[Any, bool], Any]:
    return lambda w, r: log2_ratio(w, f"{_m(m, r)}.energy" + (f"_{band}" if band else ""))


def _per_high(gap: Callable[[Any, bool], Any]) -> Effect:
    def effect(w: Any, matching: str, r: bool) -> Any:
        value = np.asarray(gap(w, r), dtype=float)
        return w.assign(value=value, stratum=w["corruption"]).dropna(subset=["value"])

    return effect


def _contrast(gap: Callable[[Any, bool], Any]) -> Effect:
    return lambda w, matching, r: high_minus_rest(w, gap(w, r))


def _pruned(gap: Callable[[Any, bool], Any]) -> Effect:
    return lambda w, matching, r: pruned_minus_base(w, gap(w, r))


def _clean(w: Any, r: bool) -> Any:
    return w["psnr_wrt_clean NIC"] - w["psnr_wrt_clean JPEG2000"]


PAPER_2 = "NIC's G worse on high- than on low/medium-frequency corruptions"
PAPER_3 = "NIC nearer the clean image than JPEG2000 on high-frequency corruptions"
PAPER_5 = "pruned NIC denoises high-frequency corruptions better than dense NIC"

CLAIM2_PSNR = Contrast(
    "2", "NIC − JPEG2000 (dB at matched bpp; log2 bpp ratio at matched PSNR), high minus "
    "low/medium corruptions", -1, f"below 0: {PAPER_2}", "corrupted", lambda r: ["psnr", "bpp"],
    lambda w, matching, r: high_minus_rest(w, _claim2_gap(w, matching)),
)  # fmt: skip
CLAIM2_SHARE = Contrast(
    "2", "high-band share of G, NIC − JPEG2000, high minus low/medium corruptions", 1,
    f"above 0: {PAPER_2}", "corrupted", _share("G"), _contrast(_share_gap("G")), True,
)  # fmt: skip
CLAIM2_ENERGY = Contrast(
    "2", "G energy, log2 NIC / JPEG2000, high minus low/medium corruptions", 1,
    f"above 0: {PAPER_2}", "corrupted", _energy("G"), _contrast(_energy_ratio("G")), True,
)  # fmt: skip
CLAIM2_HIGH_ENERGY = Contrast(
    "2", "high-band G energy, log2 NIC / JPEG2000, high minus low/medium corruptions", 1,
    f"above 0: {PAPER_2}", "corrupted", _energy("G", "high"), _contrast(_energy_ratio("G", "high")),
    True,
)  # fmt: skip
CLAIM3_PSNR = Contrast(
    "3", "PSNR w.r.t. clean, NIC − JPEG2000, high-frequency corruptions (dB)", 1,
    f"above 0: {PAPER_3}", "high", lambda r: ["psnr_wrt_clean"], _per_high(_clean), False,
    "stratum",
)  # fmt: skip
CLAIM3_SHARE = Contrast(
    "3", "high-band share of R, NIC − JPEG2000, high-frequency corruptions", -1,
    f"below 0: {PAPER_3}", "high", _share("R"), _per_high(_share_gap("R")), True, "stratum",
)  # fmt: skip
CLAIM3_ENERGY = Contrast(
    "3", "R energy, log2 NIC / JPEG2000, high-frequency corruptions", -1, f"below 0: {PAPER_3}",
    "high", _energy("R"), _per_high(_energy_ratio("R")), True, "stratum",
)  # fmt: skip
CLAIM3_HIGH_ENERGY = Contrast(
    "3", "high-band R energy, log2 NIC / JPEG2000, high-frequency corruptions", -1,
    f"below 0: {PAPER_3}", "high", _energy("R", "high"), _per_high(_energy_ratio("R", "high")),
    True, "stratum",
)  # fmt: skip
CLAIM5_PSNR = Contrast(
    "5 (pruned)", "PSNR w.r.t. clean on the corruption, NIC − JPEG2000: pruned minus base (dB)",
    1, f"above 0: {PAPER_5}", "corrupted", lambda r: ["psnr_wrt_clean"], _pruned(_clean),
)  # fmt: skip
CLAIM5_SHARE = Contrast(
    "5 (pruned)", "high-band share of R, NIC − JPEG2000: pruned minus base", -1,
    f"below 0: {PAPER_5}", "corrupted", _share("R"), _pruned(_share_gap("R")), True,
)  # fmt: skip
CLAIM5_HIGH_ENERGY = Contrast(
    "5 (pruned)", "high-band R energy, log2 NIC / JPEG2000: pruned minus base", -1,
    f"below 0: {PAPER_5}", "corrupted", _energy("R", "high"), _pruned(_energy_ratio("R", "high")),
    True,
)  # fmt: skip

SHARED = (
    CLAIM2_PSNR, CLAIM2_SHARE, CLAIM2_ENERGY, CLAIM2_HIGH_ENERGY,
    CLAIM3_PSNR, CLAIM3_SHARE, CLAIM3_ENERGY, CLAIM3_HIGH_ENERGY,
    CLAIM5_PSNR, CLAIM5_SHARE, CLAIM5_HIGH_ENERGY,
)  # fmt: skip


def select_units(units: Any, which: str) -> Any:
    """The units a contrast reads: "corrupted", "high" (high-frequency corruptions), "clean"."""
    if units.empty or "corruption" not in units:
        return units
    if which == "clean":
        return units[units["corruption"].isna()]
    if which == "high":
        return units[units["group"] == "high"]
    return units[units["corruption"].notna()]


# --- checks and the table ---------------------------------------------------------------------


def clusters(df: Any) -> np.ndarray:
    """The bootstrap's cluster of each row: its dataset and image."""
    return (df["dataset"].astype(str) + "/" + df["image"].astype(str)).to_numpy()


def check(
    claim: str,
    measure: str,
    direction: int,
    effect: Any,
    *,
    matching: str = "bpp",
    rounding: str = "n/a",
    strata: str | None = None,
    paper: str = "",
    n_boot: int = 2000,
    seed: int = 0,
    note: str = "",
) -> dict[str, Any]:
    """One row of a findings table: the paired per-image ``effect`` (a frame with dataset,
    image, ``value`` and the column ``strata`` names) estimated with :mod:`stats` (images are
    the clusters), its verdict, images needed and why it may be inconclusive (``note``)."""
    from . import stats

    rec: dict[str, Any] = {"claim": claim, "measure": measure, "matching": matching,
                           "rounding": rounding, "paper": paper}  # fmt: skip
    if effect is None or len(effect) == 0 or "value" not in effect:
        return {**rec, "verdict": "not testable here", "n": 0, "n_images": 0,
                "note": "no paired values"}  # fmt: skip
    label = {"stratum": "corruption", None: "corruption"}.get(strata, strata or "")
    s = effect[strata].astype(str).to_numpy() if strata and effect[strata].nunique() > 1 else None
    values = effect["value"].to_numpy(dtype=float)
    claim_ = stats.Claim(claim, direction, values, strata=s, clusters=clusters(effect),
                         strata_label=label)  # fmt: skip
    c = claim_.check(n_boot=n_boot, seed=seed)
    e = c.estimate
    notes = "; ".join(x for x in (e.note, note) if x)
    return {
        **rec, "effect": e.mean, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n,
        "n_images": e.n_clusters, "verdict": c.verdict, "images_needed": c.images_needed,
        "note": notes, "method": e.method,
    }  # fmt: skip


def check_contrast(
    contrast: Contrast,
    units: Any,
    matching: str,
    rounding: str = "n/a",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`check` of a shared :class:`Contrast` on a units table (:func:`pair_units`)."""
    rounded = rounding == "reference"
    cols = contrast.columns(rounded)
    u = select_units(units, contrast.units)
    w = pair_units(u, matching, cols) if not u.empty else u
    note = ""
    if len(w) and any(f"{c} NIC" not in w for c in cols):
        w = w.iloc[0:0]
        note = "not recorded (evaluations before per-image energies: rerun them)"
    eff = contrast.effect(w, matching, rounded) if len(w) else None
    dropped = len(w) - int(np.isfinite(np.asarray(_gap_of(contrast, w, rounded))).sum())
    if eff is not None and dropped > 0:
        note = f"{dropped} pair(s) with a zero energy left out"
    return check(
        contrast.claim, contrast.measure, contrast.direction, eff, matching=matching,
        rounding=rounding, strata=contrast.strata, paper=contrast.paper, n_boot=n_boot,
        seed=seed, note=note,
    )  # fmt: skip


def _gap_of(contrast: Contrast, w: Any, rounded: bool) -> Any:
    """The per-pair values of an energy contrast (to count the pairs it drops), else zeros."""
    if not len(w) or not contrast.columns(rounded)[0].split(".")[-1].startswith("energy"):
        return np.zeros(len(w))
    return log2_ratio(w, contrast.columns(rounded)[0])


# The verdict and the numbers behind it first: the table is wider than the text column, and
# the columns a sentence cites must be in view beside the claim without scrolling.
TABLE_COLUMNS = {
    "claim": "claim",
    "verdict": "verdict",
    "effect": "effect",
    "interval": "95 % interval",
    "measure": "measure (unit)",
    "matching": "JPEG2000 matched in",
    "rounding": "reference rounding",
    "n": "n",
    "n_images": "images",
    "images_needed": "images needed",
    "paper": "the paper's side",
    "note": "note",
}


def _interval(lo: Any, hi: Any) -> str:
    if not (isinstance(lo, float) and math.isfinite(lo) and math.isfinite(hi)):
        return "–"
    return f"[{lo:+.3g}, {hi:+.3g}]"


def findings_table(checks: Any, was: Mapping[str, str] | None = None) -> Any:
    """The book's one findings table: a row per check (:func:`check` rows, a frame or a list)
    with the reader's column names; ``was`` (claim -> the chapter's former verdict) adds a
    ``was`` column."""
    import pandas as pd

    t = pd.DataFrame(checks).copy()
    for c in ("effect", "ci_low", "ci_high", "images_needed", "note", "paper"):
        if c not in t:
            t[c] = math.nan if c != "note" and c != "paper" else ""
    t["interval"] = [_interval(lo, hi) for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)]
    t["effect"] = [f"{v:+.3g}" if isinstance(v, float) and math.isfinite(v) else "–"
                   for v in t["effect"]]  # fmt: skip
    t["images_needed"] = [str(int(v)) if pd.notna(v) else "–" for v in t["images_needed"]]
    t["rounding"] = t["rounding"].map({"none": "without", "reference": "with"}).fillna("n/a")
    t["note"] = t["note"].fillna("")
    out = t[list(TABLE_COLUMNS)].rename(columns=TABLE_COLUMNS)
    if was is not None:
        out.insert(out.columns.get_loc("verdict") + 1, "was",
                   t["claim"].map(lambda c: was.get(str(c), "–")))  # fmt: skip
    return out.reset_index(drop=True)
