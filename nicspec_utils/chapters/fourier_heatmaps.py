"""Chapter 3b: Fourier heat maps of NIC against rate-matched JPEG2000, with their noise floor.

The engine (:mod:`..engines.heatmap`) computes, per basis and image, the PSNRs of a codec's
output under one perturbation; this module turns those into what the chapter shows and claims.

- **Draws.** Every map is measured under several independent draws of the random signs
  (:func:`engines.heatmap.heatmap_draws`); NIC and JPEG2000 see the *same* perturbed inputs in
  each draw (same seed, basis and image), so their difference is paired per (image, draw).
- **Per-image measures.** For each image, draw and map entry: the *excess share*
  :func:`excess_share` against the image's own clean MSE (``share``), or the PSNR drop against
  the image's clean PSNR in dB (``drop``); G is w.r.t. the perturbed input, R w.r.t. the clean.
- **Standard errors.** Per cell and per band, :func:`stats.cell_estimate` over images x draws:
  ``se`` over images (the draws' noise included), ``se_draws`` of the draws alone. A difference
  map greys out the cells within :data:`SE_K` standard errors of zero.
- **Band intervals and claims.** A band's value per (image, draw) is the mean over its map
  entries; its interval is the seeded cluster bootstrap of :func:`stats.paired_effect` (images
  are the clusters), and each claim's verdict comes from its interval only
  (:func:`findings.check`, at least :data:`stats.MIN_IMAGES` images). A *level* claim (a band
  against the clean crop's coding) carries the noise of that one coding per image; a *contrast*
  (top minus low band) does not, so the R claim is checked both ways.
- **Rate matching** (:func:`rate_matched_pair`) compares the same kind of bits on both sides:
  the entropy-coded payload, without container or header bytes. The NIC's is its real coded
  size on the clean crops (the range coder's strings, not the likelihood estimate); JPEG2000's
  rate control counts its codestream headers inside the budget, so it is set to the NIC's
  payload plus its header, then corrected until its payload matches (:class:`RateMatch`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import findings, stats
from ..engines.heatmap import DrawSet, centre_crop, heatmap, heatmap_draws, map_axis
from ..errors import DataError, UsageError
from ..spectral import BAND_EDGES, band_masks

PAPER_CROP = 512
PAPER_EPS = 4.0
J2K = "jpeg2000"
NIC = "NIC"
JPEG2000 = "JPEG2000"
SE_K = 2.0  # a cell within this many standard errors of zero is greyed out
N_BOOT = 2000
RATE_TOL = 0.01  # JPEG2000's mean payload bpp within 1 % of the NIC's
RATE_STEPS = 3
MEASURES = {"G": "perturbed", "R": "clean"}
METRICS = ("share", "drop")


# --- scales ---------------------------------------------------------------------------------------
def scaled_eps(crop: int, eps: float = PAPER_EPS, ref_crop: int = PAPER_CROP) -> float:
    """The L2 norm on a crop x crop plane that gives the per-pixel amplitude of ``eps`` on
    ``ref_crop`` (a unit-norm basis has amplitude ~ 1 / crop, so the norm scales with the crop)."""
    if crop < 1 or ref_crop < 1:
        raise UsageError(f"crop sizes must be positive, got {crop} and {ref_crop}")
    return float(eps) * int(crop) / int(ref_crop)


def full_drop(baseline_psnr: float, eps: float, crop: int) -> float:
    """PSNR drop (dB) from adding an error of L2 norm ``eps`` per channel on a crop x crop plane
    (MSE eps^2 / crop^2, uncorrelated) to an error of PSNR ``baseline_psnr``: what G loses if a
    codec removes the perturbation entirely, and R if it passes it on unchanged."""
    base_mse = 10.0 ** (-float(baseline_psnr) / 10.0)
    return 10.0 * math.log10(1.0 + (float(eps) / int(crop)) ** 2 / base_mse)


def excess_share(psnr: Any, baseline_psnr: Any, eps: float, crop: int) -> Any:
    """(MSE - clean MSE) / perturbation MSE, from PSNRs (MSE = 10^(-PSNR/10); arrays broadcast):
    how much of the perturbation's energy an error gained. For an output that passes a fraction
    ``a`` of the perturbation on top of its clean error, about (1 - a)^2 against the perturbed
    input (G: the share removed) and a^2 against the clean input (R: the share passed); 0 in
    both for a codec whose error does not change. Independent of the clean PSNR."""
    q = (float(eps) / int(crop)) ** 2
    if q <= 0:
        raise UsageError("the excess share needs a perturbation (eps > 0)")
    return (10.0 ** (-np.asarray(psnr, dtype=np.float64) / 10.0)
            - 10.0 ** (-np.asarray(baseline_psnr, dtype=np.float64) / 10.0)) / q  # fmt: skip


def map_frequency(grid: int, crop: int) -> np.ndarray:
    """Radial frequency (cycles/px) of each map entry (u, v): sqrt(u^2 + v^2) / crop."""
    a = map_axis(grid).astype(np.float64)
    return np.hypot(a[:, None], a[None, :]) / float(crop)


def bands(grid: int, crop: int, edges: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    """Masks of the map entries in each radial band that has at least one (low to high)."""
    lo_hi = (float(edges[0]), float(edges[1])) if edges is not None else BAND_EDGES
    masks = band_masks(map_frequency(grid, crop), lo_hi)
    return {b: m for b, m in masks.items() if m.any()}


# --- clean baselines and codec maps ---------------------------------------------------------------
@dataclass(frozen=True)
class Baseline:
    """A codec's per-image PSNR (dB), bpp and payload bpp on the unperturbed crops."""

    psnrs: np.ndarray
    bpps: np.ndarray
    payloads: np.ndarray

    @property
    def psnr(self) -> float:
        """Mean PSNR over the images."""
        return float(np.mean(self.psnrs))

    @property
    def bpp(self) -> float:
        """Mean bpp (the whole file or the NIC's count)."""
        return float(np.mean(self.bpps))

    @property
    def payload_bpp(self) -> float:
        """Mean entropy-coded payload bpp (no container or header bytes)."""
        return float(np.mean(self.payloads))


def clean_baseline(
    codec_name: str,
    dataset: Any,
    crop: int,
    images: Sequence[str] | None = None,
    limit: int | None = None,
    **kwargs: Any,
) -> Baseline:
    """Per-image PSNR, bpp and payload of a codec on the clean centre crops, through the engine
    (eps 0, the DC entry of a 2 x 2 grid: the input is the clean crop), cached like any map."""
    kwargs = {k: v for k, v in kwargs.items() if k not in ("bases", "seed")}
    kwargs.setdefault("progress", False)
    r = heatmap(
        codec_name, dataset, grid=2, crop=crop, images=images, limit=limit, eps=0.0,
        bases=[(1, 1)], **kwargs,
    )  # fmt: skip
    psnrs, bpps, pay = (r.images[k][:, 1, 1] for k in ("psnr_perturbed", "bpp", "bpp_payload"))
    return Baseline(np.asarray(psnrs), np.asarray(bpps), np.asarray(pay))


@dataclass
class CodecMaps:
    """One codec setting's heat maps (several sign draws) with its clean baseline and label."""

    label: str
    draws: DrawSet
    baseline: Baseline

    @property
    def crop(self) -> int:
        """Crop side (px)."""
        return int(self.draws.config["crop"])

    @property
    def eps(self) -> float:
        """L2 norm of the perturbation."""
        return float(self.draws.config["eps"])

    @property
    def image_ids(self) -> list[str]:
        """The images, in the maps' order."""
        return [str(i) for i in self.draws.config["image_ids"]]

    def values(self, measure: str, metric: str = "share") -> np.ndarray:
        """images x draws x M x M per-image values: ``measure`` G (w.r.t. the perturbed input)
        or R (w.r.t. the clean), ``metric`` share (:func:`excess_share` against each image's
        clean MSE) or drop (the image's clean PSNR minus the PSNR, dB)."""
        if measure not in MEASURES:
            raise UsageError(f"measure must be G or R, got {measure!r}")
        psnr = self.draws.image_maps(f"psnr_{MEASURES[measure]}")
        base = self.baseline.psnrs[:, None, None, None]
        if metric == "share":
            return np.asarray(excess_share(psnr, base, self.eps, self.crop))
        if metric == "drop":
            return np.asarray(base - psnr)
        raise UsageError(f"metric must be share or drop, got {metric!r}")

    def mean_map(self, measure: str, metric: str = "share") -> np.ndarray:
        """M x M mean of :meth:`values` over images and draws."""
        return np.asarray(self.values(measure, metric).mean(axis=(0, 1)))

    def band_values(
        self, measure: str, metric: str = "share", edges: Sequence[float] | None = None
    ) -> dict[str, np.ndarray]:
        """Band -> images x draws mean of :meth:`values` over the band's map entries."""
        v = self.values(measure, metric)
        masks = bands(self.draws.grid, self.crop, edges)
        return {b: v[:, :, m].mean(axis=-1) for b, m in masks.items()}


def run_maps(
    codec_name: str,
    dataset: Any,
    images: Sequence[str] | None,
    grid: int,
    crop: int,
    eps: float,
    label: str | None = None,
    draws: int = 3,
    seed: int = 0,
    baseline: Baseline | None = None,
    **kwargs: Any,
) -> CodecMaps:
    """Heat maps under ``draws`` sign draws and the clean baseline of one codec setting
    (``kwargs`` go to :func:`engines.heatmap.heatmap`; ``baseline`` given: not recomputed)."""
    kwargs.setdefault("progress", False)
    if baseline is None:
        baseline = clean_baseline(codec_name, dataset, crop, images=images, **kwargs)
    ds = heatmap_draws(
        codec_name, dataset, draws=draws, seed=seed, grid=grid, crop=crop, images=images,
        eps=eps, **kwargs,
    )  # fmt: skip
    return CodecMaps(label or codec_name, ds, baseline)


@dataclass(frozen=True)
class RateMatch:
    """How JPEG2000 was matched to a NIC: both sides' payload bpp (entropy-coded bits, no
    container or header), the NIC's likelihood estimate, JPEG2000's header and its setting."""

    nic_payload_bpp: float
    nic_estimate_bpp: float
    j2k_payload_bpp: float
    j2k_total_bpp: float
    j2k_setting_bpp: float
    j2k_header_bytes: int
    pixels: int

    @property
    def header_share(self) -> float:
        """Share of JPEG2000's whole file taken by its headers."""
        return 8 * self.j2k_header_bytes / (self.j2k_total_bpp * self.pixels)

    @property
    def mismatch(self) -> float:
        """JPEG2000's payload over the NIC's, minus 1."""
        return self.j2k_payload_bpp / self.nic_payload_bpp - 1.0


def j2k_header_bytes(dataset: Any, image: str, crop: int, bpp: float) -> int:
    """Header bytes of a JPEG2000 codestream of one clean crop (the same for every crop of
    this size at these settings: the markers do not depend on the content)."""
    from ..codecs import get_codec
    from ..codecs.classic import j2k_header_bytes as header
    from ..data import Dataset, get_dataset

    ds = dataset if isinstance(dataset, Dataset) else get_dataset(str(dataset))
    res = get_codec(J2K, bpp=bpp).compress(centre_crop(ds.load(image), crop))
    return header(res.bitstream)


def rate_matched_pair(
    model: str,
    dataset: Any,
    images: Sequence[str],
    grid: int,
    crop: int,
    eps: float,
    draws: int = 3,
    seed: int = 0,
    **kwargs: Any,
) -> tuple[CodecMaps, CodecMaps, RateMatch]:
    """(NIC, JPEG2000, how they were matched): the shipped NIC ``model`` and JPEG2000 at the
    same mean payload bpp on the clean crops (see the module doc; the NIC's maps themselves use
    ``estimate`` as given, its reconstruction being the same either way)."""
    if not images:
        raise DataError("rate matching needs at least one image")
    kwargs.setdefault("progress", False)
    nic_name = f"nic:{model}"
    coded = clean_baseline(nic_name, dataset, crop, images, **{**kwargs, "estimate": False})
    est = clean_baseline(nic_name, dataset, crop, images, **{**kwargs, "estimate": True})
    nic = run_maps(nic_name, dataset, images, grid, crop, eps, NIC, draws, seed, coded, **kwargs)
    target = coded.payload_bpp
    pixels = crop * crop
    header = j2k_header_bytes(dataset, images[0], crop, max(target, 0.05))
    j2k_kw = {k: v for k, v in kwargs.items() if k not in ("estimate", "batch_size")}
    setting = round(target + 8 * header / pixels, 4)
    base = clean_baseline(J2K, dataset, crop, images, bpp=setting, **j2k_kw)
    for _ in range(RATE_STEPS):  # JPEG2000's rate control lands near, not on, its budget
        if abs(base.payload_bpp / target - 1.0) <= RATE_TOL:
            break
        setting = round(setting + target - base.payload_bpp, 4)
        base = clean_baseline(J2K, dataset, crop, images, bpp=setting, **j2k_kw)
    j2k = run_maps(
        J2K, dataset, images, grid, crop, eps, JPEG2000, draws, seed, base, bpp=setting, **j2k_kw
    )
    match = RateMatch(target, est.bpp, base.payload_bpp, base.bpp, setting, header, pixels)
    return nic, j2k, match


def rate_table(
    matches: Mapping[str, RateMatch],
    pairs: Mapping[str, tuple[CodecMaps, CodecMaps]],
    rates: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per model: how JPEG2000 was matched to it (:class:`RateMatch`) and both codecs'
    clean PSNR; ``rates`` names the rows (default: the models)."""
    names = list(rates) if rates is not None else list(matches)
    rows = []
    for name, (model, r) in zip(names, matches.items(), strict=True):
        nic, j2k = pairs[model]
        rows.append({
            "rate": name, "model": model,
            "NIC payload bpp (coded)": r.nic_payload_bpp,
            "NIC likelihood estimate bpp": r.nic_estimate_bpp,
            "JPEG2000 payload bpp": r.j2k_payload_bpp,
            "JPEG2000 whole file bpp": r.j2k_total_bpp,
            "JPEG2000 header (bytes)": r.j2k_header_bytes,
            "header share of the file": r.header_share,
            "NIC PSNR clean (dB)": nic.baseline.psnr,
            "JPEG2000 PSNR clean (dB)": j2k.baseline.psnr,
        })  # fmt: skip
    return pd.DataFrame(rows)


# --- cells, bands and the noise floor -------------------------------------------------------------
def difference(
    a: CodecMaps, b: CodecMaps, measure: str, metric: str = "share"
) -> stats.CellEstimate:
    """Per-cell ``a`` minus ``b`` (paired per image and draw) with its standard errors."""
    if a.image_ids != b.image_ids or a.draws.seeds != b.draws.seeds:
        raise UsageError("a difference map needs the same images and draws on both sides")
    return stats.cell_estimate(a.values(measure, metric) - b.values(measure, metric))


def band_table(
    entries: Sequence[tuple[Mapping[str, Any], CodecMaps]],
    metric: str = "share",
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (entry, measure, band): the band's mean ``metric`` over images and draws,
    its standard errors (over images; of the draws alone), its seeded 95 % interval (cluster
    bootstrap over images) and the entries and images behind it. ``entries`` are (labels,
    maps) pairs; the labels (e.g. rate, model, codec) open the row."""
    rows = []
    for labels, maps in entries:
        for measure in MEASURES:
            for band, v in maps.band_values(measure, metric).items():
                rows.append({**labels, "measure": measure, "band": band,
                             **_summary(v, maps.image_ids, n_boot, seed)})  # fmt: skip
    return pd.DataFrame(rows)


def _summary(v: np.ndarray, ids: Sequence[str], n_boot: int, seed: int) -> dict[str, Any]:
    """Mean, SEs and interval of an images x draws array."""
    cell = stats.cell_estimate(v)
    e = stats.paired_effect(v.ravel(), cluster=np.repeat(np.asarray(ids), v.shape[1]),
                            n_boot=n_boot, seed=seed)  # fmt: skip
    return {"mean": e.mean, "se": float(cell.se), "se draws": float(cell.se_draws),
            "ci_low": e.ci_low, "ci_high": e.ci_high, "images": v.shape[0],
            "draws": v.shape[1]}  # fmt: skip


def difference_table(
    pairs: Mapping[str, tuple[CodecMaps, CodecMaps]],
    metric: str = "share",
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Per rate, measure and band: NIC minus JPEG2000 (paired per image and draw) as in
    :func:`band_table`, with how many of the band's cells stand out of :data:`SE_K` SEs."""
    rows = []
    for rate, (nic, j2k) in pairs.items():
        for measure in MEASURES:
            nb, jb = nic.band_values(measure, metric), j2k.band_values(measure, metric)
            cells = difference(nic, j2k, measure, metric)
            distinct = ~cells.indistinct(SE_K)
            for band, mask in bands(nic.draws.grid, nic.crop).items():
                rows.append({"rate": rate, "measure": measure, "band": band,
                             **_summary(nb[band] - jb[band], nic.image_ids, n_boot, seed),
                             "cells": int(mask.sum()),
                             "cells beyond 2 SE": int((distinct & mask).sum())})  # fmt: skip
    return pd.DataFrame(rows)


def noise_floor(nic: CodecMaps, j2k: CodecMaps, metric: str = "share") -> dict[str, float]:
    """The measurement's noise, per measure G / R of NIC minus JPEG2000: the cell-by-cell
    correlation between draws (``corr_<m>``, also of each codec alone), the median per-cell
    standard error over images (``cell_se_<m>``) and of the draws alone (``cell_se_draws_<m>``),
    the share of cells beyond :data:`SE_K` SEs (``distinct_<m>``), the largest band SE
    (``band_se_<m>``) and each codec's :func:`rate_jitter` (``rate_jitter_nic`` / ``_j2k``)."""
    out: dict[str, float] = {}
    for m in MEASURES:
        d = nic.values(m, metric) - j2k.values(m, metric)
        cell = stats.cell_estimate(d)
        out[f"corr_{m}"] = stats.draw_correlation(d)
        out[f"corr_nic_{m}"] = stats.draw_correlation(nic.values(m, metric))
        out[f"corr_j2k_{m}"] = stats.draw_correlation(j2k.values(m, metric))
        out[f"cell_se_{m}"] = _median(cell.se)
        out[f"cell_se_draws_{m}"] = _median(cell.se_draws)
        out[f"distinct_{m}"] = float(np.mean(~cell.indistinct(SE_K)))
        nb, jb = nic.band_values(m, metric), j2k.band_values(m, metric)
        out[f"band_se_{m}"] = max(float(stats.cell_estimate(nb[b] - jb[b]).se) for b in nb)
    out["rate_jitter_nic"] = rate_jitter(nic)
    out["rate_jitter_j2k"] = rate_jitter(j2k)
    return out


def rate_jitter(maps: CodecMaps) -> float:
    """How much a codec's payload moves under the perturbations: the median over images of the
    standard deviation, over map entries and draws, of payload / clean payload - 1."""
    pay = maps.draws.image_maps("bpp_payload")
    rel = pay / maps.baseline.payloads[:, None, None, None] - 1.0
    return _median(rel.reshape(rel.shape[0], -1).std(axis=1))


def _median(a: np.ndarray) -> float:
    """Median of the finite entries (NaN when none)."""
    finite = a[np.isfinite(a)]
    return float(np.median(finite)) if finite.size else math.nan


# --- claims ---------------------------------------------------------------------------------------
PAPER_G = "NIC's PSNR w.r.t. the perturbed input falls more at high frequencies"
PAPER_R = "NIC passes on less of a high-frequency perturbation than JPEG2000"
PAPER_5 = "pruned NIC removes high-frequency perturbations better than dense NIC"
CLAIMS = {
    "g_nic": ("3b G (NIC)", "NIC's G {metric}, top minus low band", 1, f"above 0: {PAPER_G}"),
    "g_vs_j2k": ("3b G (NIC vs JPEG2000)", "G {metric}, top minus low band, NIC − JPEG2000", 1,
                 f"above 0: {PAPER_G} than JPEG2000's"),
    "r_vs_j2k": ("3b R (NIC vs JPEG2000)", "R {metric} in the top band, NIC − JPEG2000", -1,
                 f"below 0: {PAPER_R}"),
    "r_rise_vs_j2k": ("3b R (NIC vs JPEG2000, contrast)",
                      "R {metric}, top minus low band, NIC − JPEG2000", -1,
                      f"below 0: {PAPER_R}, relative to a low-band one"),
    "pruned": ("3b R (pruned vs dense)", "R {metric} in the top band, pruned − dense NIC", -1,
               f"below 0: {PAPER_5}"),
}  # fmt: skip


def _rise(maps: CodecMaps, measure: str, metric: str) -> np.ndarray:
    b = maps.band_values(measure, metric)
    names = list(b)
    if len(names) < 2:
        raise DataError("the window holds a single band: no top-minus-low contrast")
    return b[names[-1]] - b[names[0]]


def _top(maps: CodecMaps, measure: str, metric: str) -> np.ndarray:
    b = maps.band_values(measure, metric)
    return b[list(b)[-1]]


def _check(key: str, effect: np.ndarray, ids: Sequence[str], label: str, metric: str,
           n_boot: int, seed: int) -> dict[str, Any]:  # fmt: skip
    claim, measure, direction, paper = CLAIMS[key]
    frame = pd.DataFrame({
        "dataset": "kodak", "image": np.repeat(np.asarray(ids), effect.shape[1]),
        "value": effect.ravel(),
    })  # fmt: skip
    row = findings.check(
        claim, f"{measure.format(metric=metric)}, {label}", direction, frame,
        matching="payload bpp", paper=paper, n_boot=n_boot, seed=seed,
    )  # fmt: skip
    return {**row, "key": key, "metric": metric, "label": label}


def claim_checks(
    pairs: Mapping[str, tuple[CodecMaps, CodecMaps]],
    variants: Mapping[str, CodecMaps] | None = None,
    base: CodecMaps | None = None,
    metrics: Sequence[str] = METRICS,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """The chapter's claims (:data:`CLAIMS`) per rate of ``pairs`` (label -> (NIC, JPEG2000))
    and per pruned model of ``variants`` (against ``base``), on each of ``metrics``: the paired
    effect per (image, draw), its cluster-bootstrap interval over images and its verdict
    (:func:`findings.check`; rows carry ``key``, ``metric`` and ``label`` too)."""
    rows = []
    for metric in metrics:
        for label, (nic, j2k) in pairs.items():
            ids = nic.image_ids
            rows.append(_check("g_nic", _rise(nic, "G", metric), ids, label, metric, n_boot, seed))
            rows.append(_check("g_vs_j2k", _rise(nic, "G", metric) - _rise(j2k, "G", metric),
                               ids, label, metric, n_boot, seed))  # fmt: skip
            rows.append(_check("r_vs_j2k", _top(nic, "R", metric) - _top(j2k, "R", metric),
                               ids, label, metric, n_boot, seed))  # fmt: skip
            rows.append(_check("r_rise_vs_j2k", _rise(nic, "R", metric) - _rise(j2k, "R", metric),
                               ids, label, metric, n_boot, seed))  # fmt: skip
        for model, maps in (variants or {}).items():
            if "pruned" not in model or base is None:
                continue
            effect = _top(maps, "R", metric) - _top(base, "R", metric)
            rows.append(_check("pruned", effect, maps.image_ids, model, metric, n_boot, seed))
    return pd.DataFrame(rows)


def combined_verdicts(checks: pd.DataFrame, metric: str = "share") -> dict[str, str]:
    """Claim key -> :func:`stats.combine` of its verdicts over rates (or pruned models)."""
    out = {}
    for key in CLAIMS:
        if checks.empty:
            out[key] = "not testable here"
            continue
        sel = checks[(checks["key"] == key) & (checks["metric"] == metric)]
        out[key] = stats.combine(list(sel["verdict"])) if len(sel) else "not testable here"
    return out


# --- radial profiles ------------------------------------------------------------------------------
def radial_profile(
    maps: CodecMaps, measure: str, metric: str = "drop"
) -> tuple[np.ndarray, stats.CellEstimate, np.ndarray]:
    """Mean of :meth:`CodecMaps.values` over rings of radius round(sqrt(u^2 + v^2)) cycles/crop:
    (frequency in cycles/px, per-ring estimate with standard errors, entries per ring). Rings
    past the window's half-width are partial (only the corners)."""
    crop = maps.crop
    ring = np.rint(map_frequency(maps.draws.grid, crop) * crop).astype(int)
    v = maps.values(measure, metric)
    radii = np.unique(ring)
    per_ring = np.stack([v[:, :, ring == k].mean(axis=-1) for k in radii], axis=-1)
    counts = np.array([int((ring == k).sum()) for k in radii])
    return radii / float(crop), stats.cell_estimate(per_ring), counts


# --- figures --------------------------------------------------------------------------------------
def plot_maps(
    rows: Mapping[str, Mapping[str, np.ndarray]],
    crop: int,
    unit: str = "dB",
    title: str = "",
    cmap: str = "viridis",
    grey: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    centred: bool = False,
) -> Any:
    """A figure of (G-1) x (G-1) maps: one row per entry of ``rows`` (row label -> column label
    -> map; the row label heads the row's first panel), axes in cycles/px for a ``crop``-px crop,
    one colour scale (and colour bar) per row, symmetric about 0 when ``centred``. Non-finite
    entries and those ``grey`` marks True (same structure, boolean maps) are drawn grey."""
    import matplotlib.pyplot as plt

    if not rows or not any(rows.values()):
        raise UsageError("nothing to plot")
    ncols = max(len(r) for r in rows.values())
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(3.1 * ncols + 0.9, 2.9 * len(rows)), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    colours = plt.get_cmap(cmap).with_extremes(bad="lightgrey")
    for axrow, (row_label, cols) in zip(axes, rows.items(), strict=True):
        data = {}
        for name, m in cols.items():
            arr = np.array(m, dtype=np.float64)
            mask = (grey or {}).get(row_label, {}).get(name)
            if mask is not None:
                arr[np.asarray(mask, dtype=bool)] = np.nan
            data[name] = np.ma.masked_invalid(arr)
        finite = [np.asarray(m, dtype=np.float64) for m in cols.values()]
        both = np.concatenate([f[np.isfinite(f)] for f in finite]) if finite else np.array([])
        both = both if both.size else np.array([0.0, 1.0])
        vmin, vmax = float(both.min()), float(both.max())
        if centred:
            vmax = max(abs(vmin), abs(vmax)) or 1.0
            vmin = -vmax
        im = None
        for k, (ax, (col_label, shown)) in enumerate(zip(axrow, data.items(), strict=False)):
            h = (shown.shape[0] // 2) / float(crop)
            step = 0.5 / float(crop)
            ext = (-h - step, h + step, h + step, -h - step)
            im = ax.imshow(shown, extent=ext, cmap=colours, vmin=vmin, vmax=vmax)
            ax.set_title(col_label, fontsize=9)
            ax.set_xlabel("horizontal (cycles/px)", fontsize=8)
            ylabel = "vertical (cycles/px)"
            ax.set_ylabel(f"{row_label}\n{ylabel}" if k == 0 else ylabel, fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in axrow[len(data) :]:
            ax.axis("off")
        if im is not None:
            fig.colorbar(im, ax=list(axrow), shrink=0.9, label=unit)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_differences(
    pairs: Mapping[str, tuple[CodecMaps, CodecMaps]], metric: str = "share", title: str = ""
) -> Any:
    """NIC minus JPEG2000 per rate (rows) for G and R (columns), diverging colours about 0,
    cells within :data:`SE_K` standard errors of zero greyed out."""
    rows: dict[str, dict[str, np.ndarray]] = {}
    grey: dict[str, dict[str, np.ndarray]] = {}
    crops = {nic.crop for nic, _ in pairs.values()}
    for label, (nic, j2k) in pairs.items():
        rows[label], grey[label] = {}, {}
        for m in MEASURES:
            d = difference(nic, j2k, m, metric)
            col = f"{m}: NIC − JPEG2000 ({int((~d.indistinct(SE_K)).sum())} cells beyond 2 SE)"
            rows[label][col], grey[label][col] = d.mean, d.indistinct(SE_K)
    unit = "excess share" if metric == "share" else "dB"
    return plot_maps(rows, crops.pop() if crops else 1, unit, title, "RdBu_r", grey, True)


def plot_radial_profiles(
    curves: Mapping[str, CodecMaps],
    metric: str = "drop",
    title: str = "",
    colours: Mapping[str, str] | None = None,
) -> Any:
    """Radial profiles of G and R (``metric``) against frequency (cycles/px), one line per entry
    of ``curves`` with a band of ± :data:`SE_K` standard errors; labels ``"group: kind"`` share a
    colour per group (``colours[group]``, else :func:`labels.colour` of the group: a model's
    colour on every page) and a line style per kind. Band edges inside the window are marked."""
    import matplotlib.pyplot as plt

    from ..labels import colour as colour_of

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, layout="constrained")
    styles = ["-", "--", ":", "-."]
    kinds: dict[str, int] = {}
    xmax = 0.0
    for label, maps in curves.items():
        group, _, kind = label.partition(": ")
        colour = (colours or {}).get(group) or colour_of(group)
        style = styles[kinds.setdefault(kind, len(kinds)) % len(styles)]
        for ax, m in zip(axes, MEASURES, strict=True):
            f, est, _ = radial_profile(maps, m, metric)
            xmax = max(xmax, float(f.max()))
            ax.plot(f, est.mean, marker="o", ms=3, color=colour, ls=style, label=label)
            if np.all(np.isfinite(est.se)):
                ax.fill_between(f, est.mean - SE_K * est.se, est.mean + SE_K * est.se,
                                color=colour, alpha=0.12, lw=0)  # fmt: skip
    names = ("G: w.r.t. the perturbed input", "R: w.r.t. the clean input")
    for ax, name in zip(axes, names, strict=True):
        for edge in BAND_EDGES:
            if edge <= xmax:
                ax.axvline(edge, color="grey", lw=0.8, ls="--")
        ax.axhline(0.0, color="black", lw=0.5)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("radial frequency (cycles/px)")
    axes[0].set_ylabel("clean PSNR − PSNR (dB)" if metric == "drop" else "excess share")
    axes[1].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
