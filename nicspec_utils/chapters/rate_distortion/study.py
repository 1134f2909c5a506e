"""Chapter 2's computation: rate-distortion sweeps, BD tables, the corrupted comparison at
matched bpp (and its per-image units) and the bpp inflation under corruptions."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...corruptions import corruption_info
from ...engines.scheduler import sweep
from ...errors import DataError
from ...labels import ANCHOR, CURVE_PRUNED, NIC_LABEL, nic_kind
from ...selection import first_ids, split_list
from .settings import (
    JPEG2000_CODECS,
    POINT_COLUMNS,
    PUBLISHED_IMAGES,
    PUBLISHED_LABELS,
    PUBLISHED_OVERLAY,
    Setting,
    fixed_point_label,
    nic_setting,
)

# --- running points -----------------------------------------------------------------------------


def run_setting(
    setting: Setting,
    dataset: str,
    image_ids: Sequence[str],
    *,
    corruption: str | None = None,
    severity: int | None = None,
    bpp: float | None = None,
    seed: int = 0,
    estimate: bool = False,
    out: str | Path | None = None,
    maps: bool = True,
) -> dict[str, Any]:
    """Evaluate one setting (cached by :func:`evaluate.evaluate`); return its metrics dict.

    ``estimate`` applies to NIC settings only (likelihood bpp instead of real coding); ``bpp``
    replaces the setting's quality by a rate target (JPEG2000: compression ratio 24 / bpp);
    ``maps=False``: no spectra (a point only a rate-distortion curve uses).
    """
    from ...engines import evaluate as ev

    path = ev.evaluate(
        setting.codec,
        dataset,
        image_ids=list(image_ids),
        corruption=corruption,
        severity=severity,
        quality=None if bpp is not None else setting.quality,
        bpp=bpp,
        codec_options=setting.options() or None,
        seed=seed,
        out=out,
        estimate=bool(estimate) and setting.family == "nic",
        progress=False,
        maps=maps,
    )
    return json.loads(Path(path).read_text())


def image_ids(dataset: str, n: int | None) -> list[str]:
    """The first ``n`` image ids of a dataset (``None``: all; 0: none, i.e. skip it)."""
    return first_ids(dataset, n)


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def msssim_db(value: float) -> float:
    """MS-SSIM on a dB scale, ``-10 log10(1 - MS-SSIM)`` (NaN for NaN, inf for 1)."""
    if value is None or not math.isfinite(value):
        return float("nan")
    return math.inf if value >= 1 else -10.0 * math.log10(1.0 - value)


@sweep
def rd_sweep(
    settings: Iterable[Setting],
    dataset: str,
    ids: Sequence[str],
    *,
    seed: int = 0,
    estimate: bool = False,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Clean rate–distortion points: one row per setting (columns :data:`POINT_COLUMNS`)."""
    rows = []
    for s in settings:
        if progress is not None:
            progress(f"{dataset}: {s.curve} {s.label}")
        # a classic codec's ladder point serves only its curve: no maps (NIC and VTM points
        # keep theirs, which chapter 3 reads; VTM's coding, not its maps, is what costs)
        maps = s.family == "nic" or s.codec == "vtm"
        m = run_setting(s, dataset, ids, seed=seed, estimate=estimate, out=out, maps=maps)
        ms = _num(m.get("ms_ssim"))
        rows.append(
            {
                "dataset": dataset,
                "curve": s.curve,
                "family": s.family,
                "codec": s.codec,
                "setting": s.label,
                "quality": s.quality,
                "lmbda": s.lmbda,
                "bpp": float(m["bpp"]),
                "psnr": _num(m.get("psnr")),
                "ms_ssim": ms,
                "ms_ssim_db": msssim_db(ms),
                "n_images": int(m["n_images"]),
                "key": m.get("key", ""),
            }
        )
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def published_points(
    names: Sequence[str] = PUBLISHED_OVERLAY, dataset: str = "kodak"
) -> pd.DataFrame:
    """CompressAI's published Kodak curves as RD points (family ``published``)."""
    from ...nic.reference import published_curve

    rows = []
    for name in names:
        c = published_curve(name)
        label = f"{PUBLISHED_LABELS.get(name, name)} (published)"
        for b, p, ms in zip(c.bpp, c.psnr, c.ms_ssim, strict=True):
            rows.append(
                {
                    "dataset": dataset,
                    "curve": label,
                    "family": "published",
                    "codec": name,
                    "setting": "published",
                    "quality": None,
                    "lmbda": None,
                    "bpp": float(b),
                    "psnr": float(p),
                    "ms_ssim": float(ms),
                    "ms_ssim_db": msssim_db(float(ms)),
                    "n_images": PUBLISHED_IMAGES,
                    "key": "",
                }
            )
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


# --- Bjontegaard table --------------------------------------------------------------------------


def _curve_arrays(df: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    d = df.sort_values("bpp")
    return d["bpp"].to_numpy(float), d[metric].to_numpy(float)


def _bd(
    anchor: pd.DataFrame, other: pd.DataFrame, metric: str, method: str
) -> tuple[float, float, str]:
    """(BD-rate fraction, BD-quality, note) of ``other`` against ``anchor`` on ``metric``."""
    from ...metrics import bd_psnr, bd_rate

    ra, qa = _curve_arrays(anchor, metric)
    rb, qb = _curve_arrays(other, metric)
    if not (np.all(np.isfinite(qa)) and np.all(np.isfinite(qb))):
        return math.nan, math.nan, f"{metric}: not available for every point"
    try:
        rate = bd_rate(ra, qa, rb, qb, method=method)
    except DataError as exc:
        rate = math.nan
        note = str(exc)
        if "overlap" in note:
            note = (
                f"{metric}: no overlap (anchor {qa.min():.2f}-{qa.max():.2f}, "
                f"curve {qb.min():.2f}-{qb.max():.2f})"
            )
        return rate, math.nan, note
    try:
        delta = bd_psnr(ra, qa, rb, qb, method=method)
    except DataError:
        delta = math.nan
    return rate, delta, ""


def point_delta(anchor: pd.DataFrame, bpp: float, value: float, metric: str = "psnr") -> float:
    """``value`` minus the anchor curve's ``metric`` at ``bpp`` (log-bpp interpolation; NaN
    outside the anchor's rate range)."""
    from ...nic.reference import make_curve

    d = anchor.sort_values("bpp")
    curve = make_curve("anchor", list(d["bpp"]), list(d[metric]))
    return value - curve.at(bpp)


def bd_table(points: pd.DataFrame, anchor: str = ANCHOR, method: str = "pchip") -> pd.DataFrame:
    """BD-rate (PSNR and MS-SSIM-dB) and BD-PSNR of every curve against ``anchor``, per dataset.

    Uses every point of each curve; the PSNR interval of the integral is where the two curves
    overlap (``psnr_range``). A curve that does not overlap the anchor gets NaN and a note; a
    single-point "curve" gets its PSNR difference to the anchor at its bpp (``point_delta``).
    """
    rows = []
    for dataset, df in points.groupby("dataset", sort=False):
        a = df[df["curve"] == anchor]
        if len(a) < 2:
            raise DataError(f"{dataset}: the anchor {anchor} needs at least 2 points")
        n_anchor = int(a["n_images"].max())
        for curve, c in df[df["curve"] != anchor].groupby("curve", sort=False):
            row: dict[str, Any] = {
                "dataset": dataset,
                "curve": curve,
                "family": c["family"].iloc[0],
                "points": len(c),
                "anchor_points": len(a),
                "bpp_range": f"{c['bpp'].min():.3f}-{c['bpp'].max():.3f}",
                "psnr_range": "",
                "bd_rate_psnr_pct": math.nan,
                "bd_psnr_db": math.nan,
                "bd_rate_msssim_pct": math.nan,
                "method": method,
                "note": "",
            }
            notes = []
            if c["family"].iloc[0] == "published":
                notes.append(
                    f"published curve ({PUBLISHED_IMAGES} images) vs our anchor ({n_anchor})"
                )
            elif int(c["n_images"].max()) != n_anchor:
                notes.append(f"curve on {int(c['n_images'].max())} image(s), anchor on {n_anchor}")
            if len(c) < 2:
                row["bd_psnr_db"] = point_delta(a, float(c["bpp"].iloc[0]), c["psnr"].iloc[0])
                row["method"] = "point"
                notes.append("one operating point: PSNR difference at its bpp")
            else:
                lo = max(a["psnr"].min(), c["psnr"].min())
                hi = min(a["psnr"].max(), c["psnr"].max())
                row["psnr_range"] = f"{lo:.2f}-{hi:.2f} dB" if hi > lo else "none"
                rate, delta, note = _bd(a, c, "psnr", method)
                row["bd_rate_psnr_pct"], row["bd_psnr_db"] = 100 * rate, delta
                rate_ms, _, note_ms = _bd(a, c, "ms_ssim_db", method)
                row["bd_rate_msssim_pct"] = 100 * rate_ms
                notes += [n for n in (note, note_ms) if n]
            row["note"] = "; ".join(notes)
            rows.append(row)
    return pd.DataFrame(rows)


def with_unavailable(
    table: pd.DataFrame, rows: Sequence[dict[str, Any]] | None = None
) -> pd.DataFrame:
    """``table`` with one row per paper model that has a recipe but no checkpoint here (ELIC:
    :func:`nic.modelcard.not_available`), its numbers missing and ``setting`` "not available",
    so such a model shows in the table instead of being silently absent."""
    if rows is None:
        from ...nic.modelcard import not_available

        rows = not_available()
    if not rows:
        return table
    extra = pd.DataFrame(
        [
            {
                "dataset": "–",
                "curve": r["model"],
                "family": "not available",
                "setting": "not available",
            }
            for r in rows
        ]
    )
    return pd.concat([table, extra[[c for c in extra.columns if c in table.columns]]],
                     ignore_index=True)  # fmt: skip


def unavailable_note(rows: Sequence[dict[str, Any]] | None = None) -> str:
    """Markdown for the page: which paper models are not available here, why, and the command
    that produces them ("" when every one is here)."""
    if rows is None:
        from ...nic.modelcard import not_available

        rows = not_available()
    by_family: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r["lmbda"]):
        by_family.setdefault(r["family"], []).append(r)
    lines = [
        f"- **{family}** at λ = {', '.join(format(r['lmbda'], 'g') for r in group)} "
        f"({', '.join(r['model'] for r in group)}): {group[0]['reason']}. "
        f"To produce them: `{group[0]['gpu_command']}` on a GPU."
        for family, group in by_family.items()
    ]
    if not lines:
        return ""
    return "**Not available here** (their rows say so):\n\n" + "\n".join(lines)


# --- corrupted data -----------------------------------------------------------------------------


def _group_cat(values: Iterable[str]) -> pd.Categorical:
    from ...corruptions import GROUPS

    return pd.Categorical(list(values), categories=list(GROUPS), ordered=True)


@sweep
def corrupted_study(
    models: str | Sequence[str | Setting],
    dataset: str,
    ids: Sequence[str],
    corruptions: str | Sequence[str],
    severities: int | str | Sequence[int],
    *,
    seed: int = 0,
    estimate: bool = False,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    j2k: str = "jpeg2000",
) -> pd.DataFrame:
    """NIC vs rate-matched JPEG2000 on corrupted images: two rows per (corruption, severity,
    model): the NIC model and JPEG2000 (``j2k``: Pillow's ``jpeg2000`` or the paper's
    ``jpeg2000-ffmpeg``) at that model's mean bpp on the same corrupted images.

    ``models``: shipped fixed-rate model names (a comma list or a sequence), or
    :class:`Setting` objects (:func:`extra_settings`: your own codecs; their operating point is
    :func:`fixed_point_label`).

    Columns: dataset, corruption, number, group, severity, operating_point (the NIC model),
    codec (``NIC`` / ``JPEG2000``), target_bpp, bpp, psnr (w.r.t. the corrupted input),
    psnr_wrt_clean, ms_ssim, ms_ssim_wrt_clean, n_images.
    """
    from ...corruptions import parse_corruptions, parse_severities

    names = parse_corruptions(corruptions)
    sevs = parse_severities(severities)
    j2k_setting = Setting(j2k, ANCHOR, "classic")
    rows = []
    if isinstance(models, str):
        items: list[str | Setting] = list(split_list(models))
    else:
        items = [m if isinstance(m, Setting) else str(m).strip() for m in models]
    for model in items:
        nic = nic_setting(model)
        point = fixed_point_label(nic) if isinstance(model, Setting) else nic.label
        for severity in sevs:
            for corruption in names:
                number, group = corruption_info(corruption)
                if progress is not None:
                    progress(f"{dataset}: {point} / {corruption}-{severity}")
                kw: dict[str, Any] = {
                    "corruption": corruption,
                    "severity": severity,
                    "seed": seed,
                    "out": out,
                }
                m_nic = run_setting(nic, dataset, ids, estimate=estimate, **kw)
                target = round(float(m_nic["bpp"]), 4)
                m_j2k = run_setting(j2k_setting, dataset, ids, bpp=target, **kw)
                for codec, m in ((NIC_LABEL, m_nic), (ANCHOR, m_j2k)):
                    rows.append(
                        {
                            "dataset": dataset,
                            "corruption": corruption,
                            "number": number,
                            "group": group,
                            "severity": severity,
                            "operating_point": point,
                            "codec": codec,
                            "target_bpp": target,
                            "bpp": float(m["bpp"]),
                            "psnr": _num(m.get("psnr")),
                            "psnr_wrt_clean": _num(m.get("psnr_wrt_clean")),
                            "ms_ssim": _num(m.get("ms_ssim")),
                            "ms_ssim_wrt_clean": _num(m.get("ms_ssim_wrt_clean")),
                            "n_images": int(m["n_images"]),
                            "per_image": list(m.get("per_image") or []),
                        }
                    )
    df = pd.DataFrame(rows)
    if not df.empty:
        df["group"] = _group_cat(df["group"])
    return df


CORRUPTED_POINT_COLUMNS = [
    "dataset", "corruption", "number", "group", "severity", "curve", "family", "codec",
    "setting", "quality", "lmbda", "bpp", "psnr", "psnr_wrt_clean", "ms_ssim",
    "ms_ssim_wrt_clean", "n_images", "key",
]  # fmt: skip


@sweep
def corrupted_rd_sweep(
    settings: Iterable[Setting],
    dataset: str,
    ids: Sequence[str],
    corruptions: str | Sequence[str],
    severities: int | str | Sequence[int],
    *,
    seed: int = 0,
    estimate: bool = False,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Rate–distortion points on corrupted images: one row per (setting, corruption, severity)
    (columns :data:`CORRUPTED_POINT_COLUMNS`), PSNR and MS-SSIM w.r.t. the corrupted input the
    codec was given (``psnr``) and w.r.t. the clean image (``psnr_wrt_clean``). Each point is the
    store entry :func:`run_setting` keys (the entries :func:`corrupted_study` and
    :func:`bpp_inflation` use, where their settings meet); no maps are computed for it (a
    stored entry with maps serves too)."""
    from ...corruptions import parse_corruptions, parse_severities

    names = parse_corruptions(corruptions)
    sevs = parse_severities(severities)
    settings = list(settings)
    rows = []
    for severity in sevs:
        for corruption in names:
            number, group = corruption_info(corruption)
            for s in settings:
                if progress is not None:
                    progress(f"{dataset}: {s.curve} {s.label} / {corruption}-{severity}")
                m = run_setting(
                    s, dataset, ids, corruption=corruption, severity=severity, seed=seed,
                    estimate=estimate, out=out, maps=False,
                )  # fmt: skip
                rows.append({
                    "dataset": dataset, "corruption": corruption, "number": number,
                    "group": group, "severity": severity, "curve": s.curve,
                    "family": s.family, "codec": s.codec, "setting": s.label,
                    "quality": s.quality, "lmbda": s.lmbda, "bpp": float(m["bpp"]),
                    "psnr": _num(m.get("psnr")), "psnr_wrt_clean": _num(m.get("psnr_wrt_clean")),
                    "ms_ssim": _num(m.get("ms_ssim")),
                    "ms_ssim_wrt_clean": _num(m.get("ms_ssim_wrt_clean")),
                    "n_images": int(m["n_images"]), "key": m.get("key", ""),
                })  # fmt: skip
    df = pd.DataFrame(rows, columns=CORRUPTED_POINT_COLUMNS)
    if not df.empty:
        df["group"] = _group_cat(df["group"])
    return df


def corrupted_bd_table(
    points: pd.DataFrame, anchor: str = ANCHOR, method: str = "pchip"
) -> pd.DataFrame:
    """BD-PSNR (dB) of every curve of :func:`corrupted_rd_sweep` against ``anchor`` on the same
    corrupted images, w.r.t. the corrupted input (``bd_psnr_input_db``) and w.r.t. the clean
    image (``bd_psnr_clean_db``), one row per (dataset, corruption, severity, curve); NaN where
    the curves do not overlap or a curve has fewer than 2 points."""
    rows = []
    keys = ["dataset", "corruption", "number", "group", "severity"]
    for key, df in points.groupby(keys, sort=False, observed=True):
        a = df[df["curve"] == anchor]
        for curve, c in df[df["curve"] != anchor].groupby("curve", sort=False):
            row = dict(zip(keys, key, strict=True), curve=curve, family=c["family"].iloc[0],
                       points=len(c))  # fmt: skip
            for col, name in (("psnr", "bd_psnr_input_db"), ("psnr_wrt_clean", "bd_psnr_clean_db")):
                if len(a) < 2 or len(c) < 2:
                    row[name] = math.nan
                    continue
                from ...metrics import bd_psnr

                ra, qa = _curve_arrays(a, col)
                rb, qb = _curve_arrays(c, col)
                try:
                    row[name] = float(bd_psnr(ra, qa, rb, qb, method=method))
                except DataError:
                    row[name] = math.nan
            rows.append(row)
    out = pd.DataFrame(rows)
    if not out.empty:
        out["group"] = _group_cat(out["group"].astype(str))
    return out


def jpeg2000_paths_table(points: pd.DataFrame, dataset: str = "kodak") -> pd.DataFrame:
    """The two JPEG2000 paths on the same images, one row per compression ratio both ran: bpp
    and PSNR of each (Pillow's ``jpeg2000``, the paper's ``jpeg2000-ffmpeg``), CompressAI's
    published JPEG2000 at each path's bpp (all 24 Kodak images: the other columns are on this
    chapter's images) and the differences Pillow − ffmpeg and each path − published."""
    from ...nic.reference import published_curve

    d = points[(points["dataset"] == dataset) & points["codec"].isin(JPEG2000_CODECS)]
    if d["codec"].nunique() < 2:
        return pd.DataFrame()
    pub = published_curve("jpeg2000")
    wide = d.pivot_table(index="quality", columns="codec", values=["bpp", "psnr"], sort=True)
    out = pd.DataFrame(index=wide.index)
    for codec, tag in (("jpeg2000", "Pillow"), ("jpeg2000-ffmpeg", "ffmpeg")):
        out[f"bpp {tag}"] = wide[("bpp", codec)]
        out[f"PSNR {tag} (dB)"] = wide[("psnr", codec)]
        out[f"published at {tag}'s bpp (dB)"] = [pub.at(float(b)) for b in out[f"bpp {tag}"]]
    out["Pillow − ffmpeg (dB)"] = out["PSNR Pillow (dB)"] - out["PSNR ffmpeg (dB)"]
    for tag in ("Pillow", "ffmpeg"):
        out[f"{tag} − published (dB)"] = (
            out[f"PSNR {tag} (dB)"] - out[f"published at {tag}'s bpp (dB)"]
        )
    out = out.dropna(subset=["PSNR Pillow (dB)", "PSNR ffmpeg (dB)"])
    out.index.name = "compression ratio"
    return out.sort_index(ascending=False).reset_index()


def _pruned_bases(points: Iterable[str]) -> dict[str, str]:
    """Each pruned operating point's dense model at the same lambda (``sh-mse-<lambda>``)."""
    return {op: "sh-mse-" + op.rsplit("-", 1)[-1] for op in points if "pruned" in op}


def corrupted_units(study: pd.DataFrame) -> pd.DataFrame:
    """Per-image values of :func:`corrupted_study` in the units form of :mod:`findings` (one row
    per (dataset, model, corruption, severity, image, side); side ``NIC`` or ``bpp``, JPEG2000
    at the NIC's bpp), from each point's per-image records. ``kind``: ``base`` for the dense
    model a pruned one is compared with, the NIC family's kind otherwise."""
    from ... import findings

    if study.empty or "per_image" not in study:
        return pd.DataFrame()
    bases = set(_pruned_bases(study["operating_point"].unique()).values())
    out = []
    for _, r in study.iterrows():
        op = str(r["operating_point"])
        kind = "base" if op in bases else (CURVE_PRUNED if "pruned" in op else nic_kind(op))
        for rec in r["per_image"]:
            out.append({
                "dataset": r["dataset"], "model": op, "kind": kind,
                "corruption": r["corruption"], "group": str(r["group"]),
                "severity": int(r["severity"]), "image": str(rec["id"]),
                "side": findings.NIC if r["codec"] == NIC_LABEL else "bpp", "matched": True,
                **findings.unit_values(rec),
            })  # fmt: skip
    return pd.DataFrame(out)


def corrupted_deltas(study: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, corruption, severity, operating point): NIC and JPEG2000 side by
    side and NIC - JPEG2000 differences of PSNR w.r.t. the corrupted input and the clean image."""
    keys = ["dataset", "corruption", "number", "group", "severity", "operating_point"]
    nic = study[study["codec"] == NIC_LABEL].set_index(keys)
    j2k = study[study["codec"] == ANCHOR].set_index(keys)
    out = pd.DataFrame(
        {  # the differences first: the numbers the claims cite, in view on a narrow page
            "delta_psnr": nic["psnr"] - j2k["psnr"],
            "delta_psnr_clean": nic["psnr_wrt_clean"] - j2k["psnr_wrt_clean"],
            "nic_bpp": nic["bpp"],
            "j2k_bpp": j2k["bpp"],
            "nic_psnr": nic["psnr"],
            "j2k_psnr": j2k["psnr"],
            "nic_psnr_clean": nic["psnr_wrt_clean"],
            "j2k_psnr_clean": j2k["psnr_wrt_clean"],
        }
    ).reset_index()
    out["group"] = _group_cat(out["group"].astype(str))
    return out.sort_values(["dataset", "severity", "number", "operating_point"]).reset_index(
        drop=True
    )


def group_summary(deltas: pd.DataFrame, by_model: bool = True) -> pd.DataFrame:
    """Means over the corruptions of each frequency group (and operating point if ``by_model``)
    of the columns of :func:`corrupted_deltas` (the differences first), with the number of
    corruptions averaged."""
    keys = ["dataset", "severity", "group"] + (["operating_point"] if by_model else [])
    cols = [
        "delta_psnr",
        "delta_psnr_clean",
        "nic_bpp",
        "j2k_bpp",
        "nic_psnr",
        "j2k_psnr",
        "nic_psnr_clean",
        "j2k_psnr_clean",
    ]
    g = deltas.groupby(keys, observed=True)
    out = g[cols].mean()
    out["corruptions"] = g["corruption"].nunique()
    return out.reset_index()


@sweep
def bpp_inflation(
    settings: Iterable[Setting],
    dataset: str,
    ids: Sequence[str],
    corruptions: str | Sequence[str],
    severities: int | str | Sequence[int],
    *,
    seed: int = 0,
    estimate: bool = False,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """bpp on corrupted / bpp on clean images at one fixed setting, per setting and corruption.

    Columns: dataset, codec (the setting's label), family, corruption, number, group, severity,
    bpp_clean, bpp_corrupted, inflation.
    """
    from ...corruptions import parse_corruptions, parse_severities

    names = parse_corruptions(corruptions)
    sevs = parse_severities(severities)
    rows = []
    for s in settings:
        clean = run_setting(s, dataset, ids, seed=seed, estimate=estimate, out=out)
        for severity in sevs:
            for corruption in names:
                if progress is not None:
                    progress(f"{dataset}: {s.label} / {corruption}-{severity}")
                m = run_setting(
                    s,
                    dataset,
                    ids,
                    corruption=corruption,
                    severity=severity,
                    seed=seed,
                    estimate=estimate,
                    out=out,
                )
                number, group = corruption_info(corruption)
                rows.append(
                    {
                        "dataset": dataset,
                        "codec": s.label,
                        "family": s.family,
                        "corruption": corruption,
                        "number": number,
                        "group": group,
                        "severity": severity,
                        "bpp_clean": float(clean["bpp"]),
                        "bpp_corrupted": float(m["bpp"]),
                        "inflation": float(m["bpp"]) / float(clean["bpp"]),
                    }
                )
    df = pd.DataFrame(rows)
    if not df.empty:
        df["group"] = _group_cat(df["group"])
    return df


def inflation_table(inflation: pd.DataFrame) -> pd.DataFrame:
    """Wide table: one row per (dataset, severity, codec), one column per corruption (paper
    order) plus the mean inflation of each frequency group."""
    idx = ["dataset", "severity", "codec"]
    order = inflation.sort_values("number")["corruption"].unique()
    wide = inflation.pivot_table(index=idx, columns="corruption", values="inflation", sort=False)
    wide = wide[list(order)]
    groups = inflation.pivot_table(
        index=idx, columns="group", values="inflation", aggfunc="mean", observed=True, sort=False
    )
    groups.columns = [f"mean {g}" for g in groups.columns]
    return wide.join(groups)


def curve_bd_rate(
    points: pd.DataFrame, curve: str, anchor: str = ANCHOR, method: str = "pchip"
) -> float:
    """BD-rate (fraction) of ``curve`` against ``anchor`` on PSNR; NaN when not computable."""
    a, c = points[points["curve"] == anchor], points[points["curve"] == curve]
    if len(a) < 2 or len(c) < 2:
        return math.nan
    return _bd(a, c, "psnr", method)[0]
