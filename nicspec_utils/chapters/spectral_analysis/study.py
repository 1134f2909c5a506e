"""Chapter 3's computation: NIC points against JPEG2000 matched in bpp or PSNR (the D and G/R
studies, the variants), band-share tables and the per-image units the claims read."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ... import findings
from ...codecs.ratematch import PSNR_TOL, config_psnr_tol, psnr_misses
from ...engines.evaluate import Point, run_point
from ...engines.scheduler import sweep
from ...errors import UsageError
from ...spectral import BAND_NAMES, band_energies, zero_dc
from .settings import J2K, JPEG2000, NIC, PSNR_KEY, UNMATCHED_PSNR, VTM, model_label


def rate_matched_j2k(
    nic: Point, dataset: str, ids: Sequence[str], j2k: str = J2K, **kw: Any
) -> Point:
    """JPEG2000 (``j2k``: its codec name, Pillow's ``jpeg2000`` or the paper's
    ``jpeg2000-ffmpeg``) at the NIC point's mean bpp (rounded to 4 decimals) on the same
    inputs."""
    return run_point(j2k, dataset, ids, bpp=round(nic.bpp, 4), **kw)


def psnr_tol_of(point: Point | None) -> float:
    """The PSNR tolerance a PSNR-matched JPEG2000 entry was matched to (its codec
    configuration's ``psnr_tol``; :data:`ratematch.PSNR_TOL` for an entry without one)."""
    return PSNR_TOL if point is None else config_psnr_tol(point.metrics.get("config"))


def psnr_targets(nic: Point) -> list[tuple[str, float]]:
    """(image id, PSNR w.r.t. the codec's input) of each image of a NIC point, in its order
    (a lossless image: :data:`UNMATCHED_PSNR`)."""
    out = []
    for rec in nic.metrics.get("per_image", []):
        p = rec.get("psnr")
        out.append((str(rec["id"]), UNMATCHED_PSNR if p is None else float(p)))
    return out


def psnr_matched_j2k(nic: Point, dataset: str, j2k: str = J2K, **kw: Any) -> Point:
    """JPEG2000 (``j2k``, as :func:`rate_matched_j2k`) on the NIC point's images, each at the
    compression ratio that gives the NIC's PSNR on that image within the codec's tolerance
    (Pillow's: :data:`ratematch.PSNR_TOL` dB; ffmpeg's even ratios:
    :data:`jpeg2000_ffmpeg.PSNR_TOL`); the targets are in the codec's configuration, so the
    store keys them. A target JPEG2000 cannot reach is coded at the nearest ratio and reported
    by :func:`psnr_report`."""
    targets = psnr_targets(nic)
    return run_point(j2k, dataset, [i for i, _ in targets], target_psnr=targets, **kw)


def psnr_report(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per image whose PSNR-matched JPEG2000 missed the NIC's PSNR by more than the
    tolerance (which image, which NIC row and why); empty when all are matched."""
    lines = []
    for row in rows:
        match = row.get(PSNR_KEY)
        if match is None:
            continue
        where = f"{row['dataset']} {row['model']}" + (
            f" {row['corruption']}-{row['severity']}" if row.get("corruption") else " clean"
        )
        misses = psnr_misses(
            match.metrics.get("per_image", []), psnr_targets(row["point"]), psnr_tol_of(match)
        )
        lines += [f"{where}, {m}" for m in misses]
    return lines


def pair_rows(
    model: str,
    dataset: str,
    ids: Sequence[str],
    *,
    lmbda: float | None = None,
    corruption: str | None = None,
    severity: int | None = None,
    psnr_match: bool = True,
    j2k: str = J2K,
    **kw: Any,
) -> list[dict[str, Any]]:
    """One NIC model (real entropy coding) and JPEG2000 (``j2k``: its codec name) at its bpp on
    the same inputs: two rows (:data:`ROW_KEYS`); with ``psnr_match`` the NIC row also holds,
    under :data:`PSNR_KEY`, JPEG2000 matched to its PSNR image by image
    (:func:`psnr_matched_j2k`)."""
    from ...corruptions import group_of

    ckw = {"corruption": corruption, "severity": severity if corruption else None, **kw}
    nic = run_point(f"nic:{model}", dataset, ids, lmbda=lmbda, estimate=False, **ckw)
    j2k_point = rate_matched_j2k(nic, dataset, ids, j2k, **ckw)
    rows = []
    for codec, p in ((NIC, nic), (JPEG2000, j2k_point)):
        rows.append({
            "dataset": dataset, "model": model_label(model, lmbda), "codec": codec,
            "corruption": corruption, "group": group_of(corruption) if corruption else None,
            "severity": int(severity) if corruption and severity is not None else None,
            "bpp": p.bpp, "psnr": p.metrics.get("psnr"),
            "psnr_wrt_clean": p.metrics.get("psnr_wrt_clean"), "point": p,
        })  # fmt: skip
    if psnr_match:
        rows[0][PSNR_KEY] = psnr_matched_j2k(nic, dataset, j2k, **ckw)
    return rows


@sweep
def d_study(
    models: Sequence[str], datasets: Mapping[str, Sequence[str]], **kw: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    """D rows of every (dataset, model), each with its rate- and PSNR-matched JPEG2000
    (:func:`pair_rows`, keywords too); datasets without images are skipped."""
    rows = []
    for dataset, ids in datasets.items():
        if not ids:
            continue
        for model in models:
            rows += pair_rows(model, dataset, ids, **kw)
    return rows


@sweep
def gr_study(
    models: Sequence[str],
    dataset: str,
    ids: Sequence[str],
    corruptions: Sequence[str],
    severities: Sequence[int],
    **kw: Any,
) -> list[dict[str, Any]]:
    """G/R rows of every (model, corruption, severity), each with JPEG2000 rate-matched to the
    NIC model's bpp (and PSNR-matched image by image) on that very corrupted input."""
    rows = []
    for model in models:
        for name in corruptions:
            for sev in severities:
                rows += pair_rows(model, dataset, ids, corruption=name, severity=int(sev), **kw)
    return rows


def select(rows: Sequence[Mapping[str, Any]], **match: Any) -> list[Mapping[str, Any]]:
    """The rows whose keys equal every ``match`` value (a list or tuple value: any of those)."""

    def ok(row: Mapping[str, Any]) -> bool:
        return all(
            row.get(k) in v if isinstance(v, (list, tuple, set)) else row.get(k) == v
            for k, v in match.items()
        )

    return [r for r in rows if ok(r)]


# --- tables ---------------------------------------------------------------------------------------


def shares(spectrum: np.ndarray) -> dict[str, float]:
    """Low / medium / high shares of a mean magnitude spectrum's energy (DC excluded)."""
    return band_energies(spectrum)


def energy(spectrum: np.ndarray) -> float:
    """Total energy ``sum |F|**2`` of a magnitude spectrum, DC excluded."""
    return float((zero_dc(spectrum) ** 2).sum())


def share_table(
    rows: Sequence[Mapping[str, Any]], measure: str, drop: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per entry of ``rows`` (its keys other than ``point`` and ``drop``, plus the band
    shares of ``point.spectra[measure]`` and the total energy of that spectrum, DC excluded)."""
    skip = {"point", PSNR_KEY, *drop}
    out = []
    for row in rows:
        point: Point = row["point"]
        rec = {k: v for k, v in row.items() if k not in skip}
        rec.update(point.band_shares(measure))
        rec["energy"] = point.energy(measure)
        out.append(rec)
    cols = [*(k for k in (rows[0] if rows else {}) if k not in skip), *BAND_NAMES, "energy"]
    return pd.DataFrame(out, columns=cols)


def tv_distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Total variation distance between two band-share vectors (0: same, 1: disjoint)."""
    return 0.5 * sum(abs(float(a[k]) - float(b[k])) for k in BAND_NAMES)


def _keys(table: pd.DataFrame, *candidates: str) -> list[str]:
    """The candidate columns that ``table`` has and that are not all missing."""
    return [c for c in candidates if c in table and table[c].notna().any()]


def paired(table: pd.DataFrame, values: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
    """NIC and JPEG2000 side by side: one row per ``keys``, columns ``<value> NIC`` and
    ``<value> JPEG2000`` for each of ``values``."""
    wide = table.pivot_table(index=list(keys), columns="codec", values=list(values),
                             observed=True, sort=False)  # fmt: skip
    wide.columns = [f"{v} {c}" for v, c in wide.columns]
    return wide.reset_index()


def interpolate_shares(ladder: pd.DataFrame, bpp: float) -> tuple[dict[str, float], bool]:
    """Band shares of an MSE ladder (rows with ``bpp`` and the shares) at ``bpp``, linear in
    log bpp between the two nearest rungs; the second value says whether ``bpp`` lies inside the
    ladder's range (outside: the nearest rung's shares, clamped)."""
    if ladder.empty:
        raise UsageError("no ladder points to interpolate")
    lad = ladder.sort_values("bpp")
    x = np.log(lad["bpp"].to_numpy(dtype=float))
    t = math.log(float(bpp))
    inside = bool(x[0] <= t <= x[-1])
    out = {b: float(np.interp(t, x, lad[b].to_numpy(dtype=float))) for b in BAND_NAMES}
    total = sum(out.values())
    return ({k: v / total for k, v in out.items()} if total else out), inside


# --- severity trends ----------------------------------------------------------------------------


def trend_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """G and R band shares and energies of corrupted rows, long form (column ``measure``), with
    the high-band energy ``high energy``."""
    parts = []
    for m in ("G", "R"):
        t = share_table(rows, m, drop=("dataset",))
        t.insert(t.columns.get_loc("low"), "measure", m)
        parts.append(t)
    out = pd.concat(parts, ignore_index=True)
    out["high energy"] = out["high"] * out["energy"]
    return out


def trend_ratios(trend: pd.DataFrame) -> pd.DataFrame:
    """Per (model, corruption, group, severity, measure): energy and high-band share of NIC and of
    JPEG2000 at its bpp, and the energy ratio NIC / JPEG2000."""
    keys = ["model", "corruption", "group", "severity", "measure"]
    wide = paired(trend, ["bpp", "energy", "high"], keys)
    wide["ratio"] = wide["energy NIC"] / wide["energy JPEG2000"]
    wide = wide.drop(columns=["bpp JPEG2000"]).rename(columns={"bpp NIC": "bpp"})
    return wide.sort_values(keys).reset_index(drop=True)


# --- variants -----------------------------------------------------------------------------------


@sweep
def variant_study(
    base: str,
    variants: Sequence[tuple[str, float | None]],
    dataset: str,
    ids: Sequence[str],
    noise: str,
    severity: int,
    **kw: Any,
) -> list[dict[str, Any]]:
    """The base model and each ``(model, lmbda)`` variant on clean and on ``noise`` inputs, each
    with JPEG2000 rate-matched to *that* model's bpp; rows also carry the model's ``kind``."""
    from ...labels import nic_kind

    rows = []
    for model, lam in [(base, None), *variants]:
        for corruption in (None, noise):
            got = pair_rows(
                model, dataset, ids, lmbda=lam, corruption=corruption, severity=severity, **kw,
            )  # fmt: skip
            for r in got:
                r["kind"] = "base" if model == base and lam is None else nic_kind(model)
            rows += got
    return rows


def variant_table(
    rows: Sequence[Mapping[str, Any]], base: str, ladder: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per model of :func:`variant_study`: its clean bpp (and relative to the base
    model's), D energy and high-band share next to JPEG2000 at the model's own bpp, the high-band
    R energy on the noise with its ratio to JPEG2000's, and how far its D band shares lie (total
    variation) from the base model's and from the MSE ladder's at the same bpp (``ladder``: NIC
    rows of the ladder's D table, see :func:`interpolate_shares`)."""
    clean = [r for r in rows if r["corruption"] is None]
    noisy = [r for r in rows if r["corruption"] is not None]
    d = share_table(clean, "D")
    r = share_table(noisy, "R")
    r["high energy"] = r["high"] * r["energy"]
    out = []
    base_d = d[(d["model"] == base) & (d["codec"] == NIC)].iloc[0]
    for label in dict.fromkeys(d["model"]):
        dn = d[(d["model"] == label) & (d["codec"] == NIC)].iloc[0]
        dj = d[(d["model"] == label) & (d["codec"] == JPEG2000)].iloc[0]
        rn = r[(r["model"] == label) & (r["codec"] == NIC)].iloc[0]
        rj = r[(r["model"] == label) & (r["codec"] == JPEG2000)].iloc[0]
        rec = {
            "model": label, "kind": dn["kind"], "bpp": dn["bpp"],
            "bpp vs base": dn["bpp"] / base_d["bpp"] - 1, "PSNR": dn["psnr"],
            "PSNR JPEG2000": dj["psnr"], "D energy / JPEG2000": dn["energy"] / dj["energy"],
            "D high": dn["high"], "D high JPEG2000": dj["high"],
            "noise bpp": rn["bpp"], "R high energy": rn["high energy"],
            "R high / JPEG2000": rn["high energy"] / rj["high energy"],
            "PSNR clean": rn["psnr_wrt_clean"], "PSNR clean JPEG2000": rj["psnr_wrt_clean"],
            "TV vs base": tv_distance(dn, base_d),
        }  # fmt: skip
        if ladder is not None and not ladder.empty:
            at, inside = interpolate_shares(ladder, float(dn["bpp"]))
            rec["TV vs MSE at bpp"] = tv_distance(dn, at)
            rec["within ladder"] = inside
        out.append(rec)
    return pd.DataFrame(out)


def _records(point: Point) -> dict[str, Mapping[str, Any]]:
    return {str(r["id"]): r for r in point.metrics.get("per_image", [])}


def unit_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per-image values of every pair of a study, long form: one row per (dataset, model, kind,
    corruption, group, severity, image, side), ``side`` one of :data:`SIDES`, with the values of
    :func:`findings.unit_values` (bpp, psnr, psnr_wrt_clean, band shares ``<map>.<band>``,
    energies ``<map>.energy`` and ``<map>.energy_<band>``) and ``matched`` (for the ``psnr``
    side: within the tolerance of the NIC's PSNR on that image)."""
    out: list[dict[str, Any]] = []
    nic_rows = [r for r in rows if r["codec"] == NIC]
    for nic in nic_rows:
        key = {k: nic.get(k) for k in ("dataset", "model", "corruption", "severity")}
        j2k = [r for r in select(rows, codec=JPEG2000, **key)]
        points = {NIC: nic["point"], "bpp": j2k[0]["point"] if j2k else None,
                  "psnr": nic.get(PSNR_KEY)}  # fmt: skip
        nic_recs = _records(nic["point"])
        for side, p in points.items():
            if p is None:
                continue
            tol = psnr_tol_of(p)
            for image, rec in _records(p).items():
                unit = {**key, "kind": nic.get("kind"), "group": nic.get("group"), "image": image}
                unit["side"] = side
                unit.update(findings.unit_values(rec))
                ref = nic_recs.get(image, {}).get("psnr")
                got = rec.get("psnr")
                unit["matched"] = side != "psnr" or (
                    got is not None and ref is not None and abs(got - ref) <= tol + 1e-6
                )
                out.append(unit)
    return pd.DataFrame(out)


def paired_units(units: pd.DataFrame, matching: str, columns: Sequence[str]) -> pd.DataFrame:
    """NIC and JPEG2000 (``matching``: "bpp" or "psnr") side by side per unit (see
    :func:`findings.pair_units`); PSNR-matched pairs out of tolerance dropped."""
    return findings.pair_units(units, matching, columns)


# --- VTM (where a VTM build is on the machine) ----------------------------------------------------


def vtm_rows(
    qp: int,
    dataset: str,
    ids: Sequence[str],
    *,
    corruption: str | None = None,
    severity: int | None = None,
    j2k: str = J2K,
    **kw: Any,
) -> list[dict[str, Any]]:
    """VTM (VVC intra) at QP ``qp`` and JPEG2000 (``j2k``) at VTM's bpp on the same inputs: two
    rows (:data:`ROW_KEYS`, codec :data:`VTM` / :data:`JPEG2000`, model ``VTM QP <qp>``)."""
    from ...corruptions import group_of

    ckw = {"corruption": corruption, "severity": severity if corruption else None, **kw}
    vtm = run_point("vtm", dataset, ids, quality=int(qp), **ckw)
    j2k_point = rate_matched_j2k(vtm, dataset, ids, j2k, **ckw)
    rows = []
    for codec, p in ((VTM, vtm), (JPEG2000, j2k_point)):
        rows.append({
            "dataset": dataset, "model": f"VTM QP {int(qp)}", "codec": codec,
            "corruption": corruption, "group": group_of(corruption) if corruption else None,
            "severity": int(severity) if corruption and severity is not None else None,
            "bpp": p.bpp, "psnr": p.metrics.get("psnr"),
            "psnr_wrt_clean": p.metrics.get("psnr_wrt_clean"), "point": p,
        })  # fmt: skip
    return rows


@sweep
def vtm_study(
    qps: Sequence[int],
    dataset: str,
    ids: Sequence[str],
    corruptions: Sequence[str],
    severity: int,
    **kw: Any,
) -> list[dict[str, Any]]:
    """D, G and R of VTM at each QP (clean, then each corruption at ``severity``), each with
    JPEG2000 at VTM's bpp on the same input (:func:`vtm_rows`; keywords too)."""
    rows = []
    for qp in qps:
        rows += vtm_rows(int(qp), dataset, ids, **kw)
        for name in corruptions:
            rows += vtm_rows(int(qp), dataset, ids, corruption=name, severity=severity, **kw)
    return rows


def vtm_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (QP, input, measure) of :func:`vtm_study`: D on clean inputs, G and R on
    corrupted ones; VTM's and JPEG2000's (at VTM's bpp) bpp, PSNR w.r.t. the codec's input,
    high-band share and the energy ratio VTM / JPEG2000 of the map."""
    parts = []
    for measure, sel in (("D", [r for r in rows if r["corruption"] is None]),
                         ("G", [r for r in rows if r["corruption"] is not None]),
                         ("R", [r for r in rows if r["corruption"] is not None])):  # fmt: skip
        if not sel:
            continue
        t = share_table(sel, measure, drop=("dataset", "severity", "psnr_wrt_clean"))
        t["corruption"] = t["corruption"].fillna("clean")
        wide = paired(t, ["bpp", "psnr", "high", "energy"], ["model", "corruption"])
        wide.insert(1, "measure", measure)
        wide["energy ratio"] = wide[f"energy {VTM}"] / wide["energy JPEG2000"]
        parts.append(wide.drop(columns=[f"energy {VTM}", "energy JPEG2000"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
