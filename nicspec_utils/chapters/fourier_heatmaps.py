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
- **PSNR matching** (:func:`psnr_matched_pair`): at equal bits the two codecs' clean crops
  differ in quality (on whole Kodak images our NIC models are 0.85-2.4 dB below JPEG2000), so a
  bit-matched map mixes coding efficiency with where the error goes. The second matching sets
  JPEG2000, image by image, to the compression ratio whose PSNR w.r.t. its input on the *clean*
  crop lies within :data:`PSNR_TOL` dB of the NIC's (:func:`codecs.ratematch.search_psnr`), and
  codes that image at that ratio under every perturbation: the heat maps then compare where the
  two put a perturbation's error at equal baseline quality (:class:`PsnrMatch`). On small crops
  JPEG2000's PSNR moves in steps; where no ratio comes within the tolerance, the image is a
  time-share of the two ratios either side of the target (:func:`mix_maps`: expected MSE equal
  to the NIC's on the clean crop). An image JPEG2000 cannot reach is left out of that pair, and
  said. Every check, band interval, difference map and noise floor is computed under each
  matching (:data:`MATCHINGS`, named as in chapter 3's findings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import findings, stats
from ..cache import config_key, results_dir
from ..codecs.ratematch import PSNR_TOL, psnr_misses
from ..engines.heatmap import (
    DrawSet,
    HeatmapResult,
    centre_crop,
    heatmap,
    heatmap_draws,
    map_axis,
)
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
BPP = "payload bpp"  # JPEG2000 matched in mean payload bpp on the clean crops
PSNR = "psnr"  # ... or per image in PSNR on the clean crops (chapter 3's name)
UNMATCHED = "n/a"  # a check without JPEG2000 (pruned against dense NIC)
MATCHINGS = (BPP, PSNR)
MATCHING_NAMES = {BPP: "payload bits", PSNR: "clean PSNR"}  # in figure titles


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

    def select(self, index: Sequence[int]) -> Baseline:
        """The baseline of some of the images (by position)."""
        idx = list(index)
        return Baseline(self.psnrs[idx], self.bpps[idx], self.payloads[idx])


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

    def select(self, ids: Sequence[str]) -> CodecMaps:
        """The same maps on some of the images (``ids``, in that order)."""
        have = self.image_ids
        if list(ids) == have:
            return self
        draws = self.draws.select(ids)  # UsageError for an image it lacks
        return CodecMaps(self.label, draws, self.baseline.select([have.index(i) for i in ids]))

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


@dataclass(frozen=True)
class PsnrMatch:
    """How JPEG2000 was matched to a NIC in PSNR, per image on the clean crops: the NIC's PSNR
    (the target), JPEG2000's (a time-share of its two settings ``settings`` / ``settings_b``,
    ``weights`` on the first: see :func:`j2k_psnr_settings`), the PSNR of the single nearest
    setting, both sides' payload bpp and JPEG2000's whole-file bpp (expected, when shared)."""

    image_ids: tuple[str, ...]
    nic_psnrs: np.ndarray
    j2k_psnrs: np.ndarray
    settings: np.ndarray
    settings_b: np.ndarray
    weights: np.ndarray
    nearest_psnrs: np.ndarray
    nic_payloads: np.ndarray
    j2k_payloads: np.ndarray
    j2k_bpps: np.ndarray
    tol: float = PSNR_TOL

    @property
    def gaps(self) -> np.ndarray:
        """JPEG2000's clean PSNR minus the NIC's, per image (dB)."""
        return np.asarray(self.j2k_psnrs - self.nic_psnrs)

    @property
    def nearest_gaps(self) -> np.ndarray:
        """The same for JPEG2000's single nearest setting: how coarse its steps are here."""
        return np.asarray(self.nearest_psnrs - self.nic_psnrs)

    @property
    def shared(self) -> np.ndarray:
        """Per image: coded as a time-share of two settings (no single one within tol)."""
        return np.asarray(self.weights < 1.0)

    @property
    def matched(self) -> np.ndarray:
        """Per image: JPEG2000 within :attr:`tol` dB of the NIC's PSNR."""
        return np.asarray(np.abs(self.gaps) <= self.tol + 1e-9)

    @property
    def matched_ids(self) -> list[str]:
        """The images the PSNR-matched pair keeps."""
        return [i for i, ok in zip(self.image_ids, self.matched, strict=True) if ok]

    @property
    def max_gap(self) -> float:
        """The largest |PSNR gap| (dB) over the matched images (NaN when none is)."""
        g = np.abs(self.gaps[self.matched])
        return float(g.max()) if g.size else math.nan

    @property
    def payload_ratio(self) -> float:
        """JPEG2000's mean payload at the NIC's PSNR over the NIC's (matched images): below 1
        when JPEG2000 needs fewer bits for the same clean quality."""
        ok = self.matched
        return float(np.mean(self.j2k_payloads[ok]) / np.mean(self.nic_payloads[ok]))

    def misses(self) -> list[str]:
        """One line per image JPEG2000 did not match (which, the target, what it reached, why)."""
        records = [
            {"id": i, "psnr": float(p), "bpp": float(b)}
            for i, p, b in zip(self.image_ids, self.j2k_psnrs, self.j2k_bpps, strict=True)
        ]
        targets = list(zip(self.image_ids, map(float, self.nic_psnrs), strict=True))
        return psnr_misses(records, targets, self.tol)


def share_weight(psnr_a: float, psnr_b: float, target: float) -> float:
    """The share ``w`` of setting a in a time-share of settings a and b whose expected MSE,
    w MSE_a + (1 - w) MSE_b, is the target's (PSNRs in dB; 1 when a and b are the same)."""
    m_a, m_b, m_t = (10.0 ** (-float(p) / 10.0) for p in (psnr_a, psnr_b, target))
    if m_a == m_b:
        return 1.0
    return float(min(max((m_t - m_b) / (m_a - m_b), 0.0), 1.0))


def mix_psnr(psnr_a: Any, psnr_b: Any, w: Any) -> np.ndarray:
    """PSNR (dB) of the expected MSE of a time-share: w MSE_a + (1 - w) MSE_b (inf: lossless)."""
    m = np.asarray(w) * 10.0 ** (-np.asarray(psnr_a, dtype=np.float64) / 10.0) + (
        1.0 - np.asarray(w)
    ) * 10.0 ** (-np.asarray(psnr_b, dtype=np.float64) / 10.0)
    with np.errstate(divide="ignore"):
        return np.asarray(-10.0 * np.log10(m))


def j2k_psnr_settings(
    dataset: Any,
    images: Sequence[str],
    crop: int,
    targets: Sequence[float],
    tol: float = PSNR_TOL,
    cache_dir: Any = None,
) -> dict[str, dict[str, float]]:
    """Image id -> how JPEG2000 reaches the image's target PSNR w.r.t. its clean centre crop:
    ``a`` (a compression ratio) and its PSNR ``psnr_a``; when no ratio comes within ``tol`` dB
    (at small crops JPEG2000's PSNR moves in steps: its rate allocation truncates at coding-pass
    boundaries), ``a`` and ``b`` are the two ratios either side of the target and ``w`` the share
    of ``a`` in a time-share of the two whose expected MSE is the target's (:func:`share_weight`);
    else ``b`` = ``a``, ``w`` = 1. The search is :func:`codecs.ratematch.search_psnr` (that of
    chapters 3 and 5), cached under ``cache_dir/psnr_settings``."""
    from ..codecs import get_codec
    from ..codecs.ratematch import search_psnr
    from ..data import Dataset, get_dataset
    from ..metrics import psnr

    ids = [str(i) for i in images]
    if len(ids) != len(targets) or not ids:
        raise UsageError(f"{len(ids)} image(s) but {len(targets)} PSNR target(s)")
    ds = dataset if isinstance(dataset, Dataset) else get_dataset(str(dataset))
    ds = ds.select(ids)
    codec = get_codec(J2K)
    pairs = [(i, round(float(t), 6)) for i, t in zip(ids, targets, strict=True)]
    config = {"what": "JPEG2000 ratios per image at a PSNR on the clean crop", "schema": 2,
              "codec": codec.config(), "targets": [list(x) for x in pairs], "tol": float(tol),
              "dataset": ds.name, "crop": int(crop)}  # fmt: skip
    folder = results_dir() / "fourier_heatmap" if cache_dir is None else Path(cache_dir)
    knob = codec.knob
    assert knob is not None

    def one(image: np.ndarray, target: float) -> dict[str, float]:
        seen: dict[float, float] = {}

        def psnr_at(v: float | int) -> float:
            seen[float(v)] = float(psnr(codec.at(v).compress(image).reconstruction, image))
            return seen[float(v)]

        near, p_near, ok = search_psnr(knob, psnr_at, target, tol=tol)
        below = [(p, v) for v, p in seen.items() if p <= target]
        above = [(p, v) for v, p in seen.items() if p >= target]
        if ok or not below or not above:
            return {"a": float(near), "psnr_a": p_near, "b": float(near), "psnr_b": p_near,
                    "w": 1.0, "nearest": p_near}  # fmt: skip
        (p_a, a), (p_b, b) = max(below), min(above)
        return {"a": a, "psnr_a": p_a, "b": b, "psnr_b": p_b,
                "w": share_weight(p_a, p_b, target), "nearest": p_near}  # fmt: skip

    def search() -> dict[str, Any]:
        found = {i: one(centre_crop(ds.load(i), int(crop)), float(t)) for i, t in pairs}
        return {"config": config, "settings": found}

    from ..store import served_json

    hit = served_json(folder / "psnr_settings" / f"{config_key(config)}.json", search, ds.name)
    return {str(k): {n: float(x) for n, x in v.items()} for k, v in hit["settings"].items()}


def mix_maps(a: CodecMaps, b: CodecMaps | None, weights: Mapping[str, float]) -> CodecMaps:
    """A time-share of two codings per image: every image of ``a`` whose weight is below 1 is
    mixed with the same image of ``b`` (same draws), its PSNRs through the expected MSE
    (:func:`mix_psnr`), its bpp linearly; the clean baseline likewise."""
    ids = a.image_ids
    w = np.array([float(weights[i]) for i in ids])
    mixed = [k for k, i in enumerate(ids) if w[k] < 1.0]
    if not mixed:
        return a
    if b is None or any(ids[k] not in b.image_ids for k in mixed):
        raise UsageError("a time-share needs the second coding of every image it mixes")
    if b.draws.seeds != a.draws.seeds:
        raise UsageError("a time-share needs the same sign draws on both codings")
    where = [b.image_ids.index(ids[k]) for k in mixed]
    wk = w[mixed]

    def blend(key: str, arr_a: np.ndarray, arr_b: np.ndarray) -> np.ndarray:
        out = np.array(arr_a, dtype=np.float64, copy=True)
        shape = (-1,) + (1,) * (out.ndim - 1)
        ww = wk.reshape(shape)
        if key.startswith("psnr"):
            out[mixed] = mix_psnr(out[mixed], arr_b[where], ww)
        else:
            out[mixed] = ww * out[mixed] + (1.0 - ww) * arr_b[where]
        return out

    results = []
    for ra, rb in zip(a.draws.results, b.draws.results, strict=True):
        per = {k: blend(k, ra.images[k], rb.images[k]) for k in ra.images}
        config = {**ra.config, "codec": {"time-share": [ra.config["codec"], rb.config["codec"]],
                                         "weights": w.tolist()}}  # fmt: skip
        results.append(HeatmapResult(per["psnr_perturbed"].mean(0), per["psnr_clean"].mean(0),
                                     per["bpp"].mean(0), config, f"{ra.key}+{rb.key}",
                                     dict(ra.timing), per))  # fmt: skip
    ba, bb = a.baseline, b.baseline
    base = Baseline(
        blend("psnr", ba.psnrs, bb.psnrs), blend("bpp", ba.bpps, bb.bpps),
        blend("bpp", ba.payloads, bb.payloads),
    )  # fmt: skip
    return CodecMaps(a.label, DrawSet(results), base)


def psnr_matched_pair(
    nic: CodecMaps, dataset: Any, tol: float = PSNR_TOL, **kwargs: Any
) -> tuple[CodecMaps, CodecMaps, PsnrMatch]:
    """(NIC, JPEG2000, how they were matched): JPEG2000 set per image to the NIC's PSNR on the
    clean crops (:func:`j2k_psnr_settings`, targets from ``nic``'s baseline; a time-share of two
    ratios where no single one comes within ``tol``, :func:`mix_maps`) and mapped under the same
    sign draws, images, grid, crop and perturbation as ``nic``, each image at its ratio(s) under
    every perturbation; both sides keep only the images it matched (:meth:`PsnrMatch.misses`
    says which it did not). ``kwargs`` go to :func:`engines.heatmap.heatmap`."""
    kwargs.setdefault("progress", False)
    j2k_kw = {k: v for k, v in kwargs.items() if k not in ("estimate", "batch_size")}
    ids, crop = nic.image_ids, nic.crop
    found = j2k_psnr_settings(dataset, ids, crop, list(nic.baseline.psnrs), tol,
                              kwargs.get("cache_dir"))  # fmt: skip
    weights = {i: found[i]["w"] for i in ids}
    seeds = nic.draws.seeds
    common = (nic.draws.grid, crop, nic.eps, JPEG2000, len(seeds), seeds[0])

    def maps(these: list[str], which: str) -> CodecMaps:
        settings = {i: found[i][which] for i in these}
        base = clean_baseline(J2K, dataset, crop, these, settings=settings, **j2k_kw)
        return run_maps(J2K, dataset, these, *common, base, settings=settings, **j2k_kw)

    first = maps(ids, "a")
    shared = [i for i in ids if weights[i] < 1.0]
    j2k = mix_maps(first, maps(shared, "b") if shared else None, weights)
    match = PsnrMatch(
        tuple(ids), np.asarray(nic.baseline.psnrs), j2k.baseline.psnrs,
        np.array([found[i]["a"] for i in ids]), np.array([found[i]["b"] for i in ids]),
        np.array([weights[i] for i in ids]), np.array([found[i]["nearest"] for i in ids]),
        np.asarray(nic.baseline.payloads), j2k.baseline.payloads, j2k.baseline.bpps, tol,
    )  # fmt: skip
    keep = match.matched_ids
    if not keep:
        raise DataError(
            f"JPEG2000 matches the NIC's PSNR on none of the images: {match.misses()[0]}"
        )
    return nic.select(keep), j2k.select(keep), match


def psnr_matched_pairs(
    nics: Mapping[str, CodecMaps], dataset: Any, **kwargs: Any
) -> tuple[dict[str, tuple[CodecMaps, CodecMaps]], dict[str, PsnrMatch], list[str]]:
    """:func:`psnr_matched_pair` for each model of ``nics`` (model -> its NIC maps): the pairs,
    the matches and one line per image left out (or model, when JPEG2000 matched none)."""
    pairs: dict[str, tuple[CodecMaps, CodecMaps]] = {}
    matches: dict[str, PsnrMatch] = {}
    notes: list[str] = []
    for model, nic in nics.items():
        try:
            a, b, m = psnr_matched_pair(nic, dataset, **kwargs)
        except DataError as exc:
            notes.append(f"{model}: left out of the PSNR matching ({exc})")
            continue
        pairs[model], matches[model] = (a, b), m
        notes += [f"{model}, {line} (left out of the PSNR-matched pair)" for line in m.misses()]
    return pairs, matches, notes


def psnr_table(
    matches: Mapping[str, PsnrMatch], rates: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per model: how JPEG2000 was matched to it in PSNR (:class:`PsnrMatch`): images
    matched, both clean PSNRs, the largest gap, both payloads and their ratio, the ratios used,
    how many images are time-shared and how far the single nearest ratio is from the target."""
    names = list(rates) if rates is not None else list(matches)
    rows = []
    for name, (model, m) in zip(names, matches.items(), strict=True):
        ok = m.matched
        rows.append({
            "rate": name, "model": model, "images matched": f"{int(ok.sum())} of {len(ok)}",
            "NIC PSNR clean (dB)": float(np.mean(m.nic_psnrs[ok])) if ok.any() else math.nan,
            "JPEG2000 PSNR clean (dB)": float(np.mean(m.j2k_psnrs[ok])) if ok.any() else math.nan,
            "largest |gap| (dB)": m.max_gap,
            "NIC payload bpp": float(np.mean(m.nic_payloads[ok])) if ok.any() else math.nan,
            "JPEG2000 payload bpp": float(np.mean(m.j2k_payloads[ok])) if ok.any() else math.nan,
            "JPEG2000 / NIC payload": m.payload_ratio if ok.any() else math.nan,
            "JPEG2000 ratios": f"{m.settings.min():.1f}–{m.settings.max():.1f}",
            "time-shared images": int(m.shared.sum()),
            "nearest single ratio, median |gap| (dB)": float(np.median(np.abs(m.nearest_gaps))),
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
    matching: str = BPP,
) -> pd.DataFrame:
    """Per rate, measure and band: NIC minus JPEG2000 (paired per image and draw) as in
    :func:`band_table`, with how many of the band's cells stand out of :data:`SE_K` SEs;
    ``matching`` names how the pairs were matched (:data:`MATCHINGS`)."""
    _check_matching(matching)
    rows = []
    for rate, (nic, j2k) in pairs.items():
        for measure in MEASURES:
            nb, jb = nic.band_values(measure, metric), j2k.band_values(measure, metric)
            cells = difference(nic, j2k, measure, metric)
            distinct = ~cells.indistinct(SE_K)
            for band, mask in bands(nic.draws.grid, nic.crop).items():
                rows.append({"matching": matching, "rate": rate, "measure": measure, "band": band,
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


def psnr_models(which: str, models: Sequence[str]) -> list[str]:
    """The models that also get PSNR-matched JPEG2000 heat maps: ``all``, ``none`` or a
    comma-separated list (each one of ``models``)."""
    name = str(which).strip()
    if name == "all":
        return list(models)
    if name in ("none", ""):
        return []
    chosen = [m.strip() for m in name.split(",") if m.strip()]
    stray = [m for m in chosen if m not in models]
    if stray:
        raise UsageError(f"psnr_matching names model(s) not in this chapter: {', '.join(stray)}")
    return [m for m in models if m in chosen]


def _check_matching(matching: str) -> None:
    if matching not in MATCHINGS:
        raise UsageError(f"matching must be one of {', '.join(MATCHINGS)}, got {matching!r}")


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
    "pruned_vs_j2k": ("3b R (pruned vs dense, against JPEG2000)",
                      "R {metric} in the top band, (pruned − JPEG2000) − (dense − JPEG2000)", -1,
                      f"below 0: {PAPER_5}, each against JPEG2000 matched to it"),
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
           n_boot: int, seed: int, matching: str = BPP) -> dict[str, Any]:  # fmt: skip
    claim, measure, direction, paper = CLAIMS[key]
    frame = pd.DataFrame({
        "dataset": "kodak", "image": np.repeat(np.asarray(ids), effect.shape[1]),
        "value": effect.ravel(),
    })  # fmt: skip
    row = findings.check(
        claim, f"{measure.format(metric=metric)}, {label}", direction, frame,
        matching=matching, paper=paper, n_boot=n_boot, seed=seed,
    )  # fmt: skip
    return {**row, "key": key, "metric": metric, "label": label}


def claim_checks(
    pairs: Mapping[str, tuple[CodecMaps, CodecMaps]],
    variants: Mapping[str, CodecMaps] | None = None,
    base: CodecMaps | None = None,
    metrics: Sequence[str] = METRICS,
    n_boot: int = N_BOOT,
    seed: int = 0,
    matching: str = BPP,
    yardsticks: Mapping[str, tuple[CodecMaps, CodecMaps]] | None = None,
    base_model: str | None = None,
) -> pd.DataFrame:
    """The chapter's claims (:data:`CLAIMS`) per rate of ``pairs`` (label -> (NIC, JPEG2000),
    matched as ``matching`` names) and per pruned model of ``variants`` (against ``base``), on
    each of ``metrics``: the paired effect per (image, draw), its cluster-bootstrap interval
    over images and its verdict (:func:`findings.check`; rows carry ``key``, ``metric`` and
    ``label`` too). The direct pruned check involves no JPEG2000 (matching :data:`UNMATCHED`;
    left out when ``variants`` is not given); with ``yardsticks`` (model -> (NIC, JPEG2000
    matched to it), holding ``base_model`` and pruned models) each pruned model is also checked
    against the dense one, each relative to JPEG2000 matched to it (``pruned_vs_j2k``)."""
    _check_matching(matching)
    rows = []
    for metric in metrics:
        for label, (nic, j2k) in pairs.items():
            effects = {
                "g_nic": _rise(nic, "G", metric),
                "g_vs_j2k": _rise(nic, "G", metric) - _rise(j2k, "G", metric),
                "r_vs_j2k": _top(nic, "R", metric) - _top(j2k, "R", metric),
                "r_rise_vs_j2k": _rise(nic, "R", metric) - _rise(j2k, "R", metric),
            }
            rows += [_check(k, e, nic.image_ids, label, metric, n_boot, seed, matching)
                     for k, e in effects.items()]  # fmt: skip
        for model, maps in (variants or {}).items():
            if "pruned" not in model or base is None:
                continue
            effect = _top(maps, "R", metric) - _top(base, "R", metric)
            rows.append(_check("pruned", effect, maps.image_ids, model, metric, n_boot, seed,
                               UNMATCHED))  # fmt: skip
        sticks = dict(yardsticks or {})
        for model, (p_nic, p_j2k) in sticks.items():
            if "pruned" not in model or base_model not in sticks:
                continue
            d_nic, d_j2k = sticks[str(base_model)]
            ids = [i for i in p_nic.image_ids if i in d_nic.image_ids]
            if not ids:
                continue
            p_nic, p_j2k, d_nic, d_j2k = (m.select(ids) for m in (p_nic, p_j2k, d_nic, d_j2k))
            effect = (_top(p_nic, "R", metric) - _top(p_j2k, "R", metric)) - (
                _top(d_nic, "R", metric) - _top(d_j2k, "R", metric))  # fmt: skip
            rows.append(_check("pruned_vs_j2k", effect, ids, model, metric, n_boot, seed,
                               matching))  # fmt: skip
    return pd.DataFrame(rows)


def combined_verdicts(
    checks: pd.DataFrame, metric: str = "share", matching: str = BPP
) -> dict[str, str]:
    """Claim key -> :func:`stats.combine` of its verdicts over rates (or pruned models) under
    ``matching`` (a check without JPEG2000, :data:`UNMATCHED`, counts under every matching)."""
    _check_matching(matching)
    out = {}
    for key in CLAIMS:
        if checks.empty:
            out[key] = "not testable here"
            continue
        sel = checks[(checks["key"] == key) & (checks["metric"] == metric)
                     & checks["matching"].isin([matching, UNMATCHED])]  # fmt: skip
        out[key] = stats.combine(list(sel["verdict"])) if len(sel) else "not testable here"
    return out


def matching_table(checks: pd.DataFrame, metric: str = "share") -> pd.DataFrame:
    """One row per check (claim key and label) that both matchings ran, on ``metric``: its
    effect, interval and verdict with JPEG2000 matched in payload bpp and in PSNR, and whether
    the verdicts agree."""
    cols = ["claim", "label", *(f"{w} ({m})" for m in MATCHINGS
            for w in ("effect", "interval", "verdict")), "agree"]  # fmt: skip
    if checks.empty:
        return pd.DataFrame(columns=cols)
    sel = checks[(checks["metric"] == metric) & checks["matching"].isin(MATCHINGS)]
    rows = []
    for (key, label), group in sel.groupby(["key", "label"], sort=False):
        by = {str(r["matching"]): r for _, r in group.iterrows()}
        if not all(m in by for m in MATCHINGS):
            continue
        row: dict[str, Any] = {"claim": CLAIMS[str(key)][0], "label": label}
        for m in MATCHINGS:
            r = by[m]
            row[f"effect ({m})"] = r.get("effect", math.nan)
            lo, hi = r.get("ci_low", math.nan), r.get("ci_high", math.nan)
            row[f"interval ({m})"] = (f"[{lo:+.3g}, {hi:+.3g}]"
                                      if pd.notna(lo) and pd.notna(hi) else "–")  # fmt: skip
            row[f"verdict ({m})"] = r["verdict"]
        row["agree"] = row[f"verdict ({BPP})"] == row[f"verdict ({PSNR})"]
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def matching_sentence(table: pd.DataFrame, what: str) -> str:
    """Markdown: how many checks of a :func:`matching_table` (on ``what``, e.g. "excess
    shares") the two matchings agree on, and a bullet per check where they do not."""
    if table.empty:
        return f"*No check ran under both matchings on {what}.*"
    lines = disagreements(table)
    agree = len(table) - len(lines)
    head = f"On {what}, the two matchings give the same verdict on {agree} of {len(table)} checks"
    if not lines:
        return head + "."
    return head + "; they differ on:\n\n" + "\n".join(f"- {line}" for line in lines)


def disagreements(table: pd.DataFrame) -> list[str]:
    """One sentence per row of :func:`matching_table` whose verdicts differ."""
    out = []
    for _, r in table[~table["agree"].astype(bool)].iterrows():
        out.append(
            f"{r['claim']}, {r['label']}: {r[f'verdict ({BPP})']} at equal payload bits "
            f"(effect {r[f'effect ({BPP})']:+.3g}, {r[f'interval ({BPP})']}), "
            f"{r[f'verdict ({PSNR})']} at equal clean PSNR "
            f"(effect {r[f'effect ({PSNR})']:+.3g}, {r[f'interval ({PSNR})']})"
        )
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
