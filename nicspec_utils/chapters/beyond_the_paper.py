"""Chapter 6, beyond the paper: how pruning changes denoising, and a spectrum-aware codec choice.

**Pruning ladder.** The shipped base ``sh-mse-0.0067`` pruned by gradual magnitude pruning to
each sparsity of the ladder and fine-tuned briefly (recipes ``ladder-pruned*-mse-0.0067``,
checkpoints in ``data/models/ladder/``, trained by ``scripts/train_pruning_ladder.sh``;
``ladder-pruned0`` is the same fine-tune without pruning, the control every effect is paired
with). :func:`ladder_study` evaluates each model on clean Kodak and on the noise corruptions,
JPEG2000 at each model's bpp beside it, and the dense family for its RD curve;
:func:`ladder_units` turns the per-image records into one row per (model, image, corruption);
:func:`ladder_table` summarises, :func:`ladder_checks` judges with paired bootstrap intervals
(:mod:`nicspec_utils.stats`): differences against the control, and per-unit slopes against
sparsity.

**Codec choice.** :func:`input_features` reads one input's spectrum (core
:mod:`nicspec_utils.spectral`): a power law fitted to the radial power spectrum over
:data:`FIT_BAND`, and ``excess``, log10 of the measured high-band power over the power law's
extrapolation (white noise lifts it, blur lowers it). :func:`choice_study` evaluates a NIC
model and JPEG2000 at the NIC's bpp *image by image* on clean and corrupted inputs;
:func:`fit_rule` chooses the threshold and side of ``excess`` that maximise mean PSNR w.r.t. the
clean image on the fitting set; :func:`choice_checks` compares the rule on the other set with
each fixed choice and with the oracle (the better codec per image).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engines.evaluate import Point, run_point
from ..engines.scheduler import sweep
from ..errors import DataError, UsageError
from ..labels import ANCHOR, CURVE_PRUNED, colour
from ..spectral import BAND_EDGES, BAND_NAMES, band_energies, error_spectrum, radial_profile
from ..stats import MIN_IMAGES as MIN_IMAGES
from ..stats import ClaimCheck, paired_effect

J2K = "jpeg2000"
NIC = "NIC"
JPEG2000 = "JPEG2000"
BASE = "sh-mse-0.0067"
DENSE_FAMILY = ("sh-mse-0.0025", "sh-mse-0.0067", "sh-mse-0.018", "sh-mse-0.0483")
NOISES = ("gaussian_noise", "shot_noise", "impulse_noise")
LADDER_PREFIX = "ladder-pruned"
LADDER_SUFFIX = "-mse-0.0067"
# the radial band the power law's level is fitted over (cycles/pixel): periods of 16 to 64 px,
# where ImageNet-C's noise is far below an image's power and its blurs have not cut in yet
FIT_BAND = (1 / 64, 1 / 16)
# the natural images' power law P(rho) ~ rho**-NATURAL_ALPHA (chapter 4 measures it; 2 is the
# classic value of van der Schaaf & van Hateren)
NATURAL_ALPHA = 2.0
FEATURE_VERSION = 1
BPP_DIGITS = 4
SPARSITY_TOL = 0.005  # a rung may lie this far above its target sparsity (fp16 zeros)


# --- the ladder's models -----------------------------------------------------------------------


def ladder_dir() -> Path:
    """Where the ladder's checkpoints live (``data/models/ladder``)."""
    from ..nic.models import MODELS_DIR

    return MODELS_DIR / "ladder"


def ladder_name(percent: int) -> str:
    """The recipe (and checkpoint stem) of the ladder model pruned to ``percent`` %."""
    return f"{LADDER_PREFIX}{int(percent)}{LADDER_SUFFIX}"


def parse_levels(spec: str | Sequence[int]) -> list[int]:
    """``"0,50,90"`` -> [0, 50, 90]: sparsity levels in percent, 0 (the control) first."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        levels = sorted({int(str(x).strip()) for x in items if str(x).strip()})
    except ValueError:
        raise UsageError(f"sparsity levels must be integers in percent, got {spec!r}") from None
    if not levels or levels[0] != 0:
        raise UsageError(f"the ladder needs its control, level 0, got {spec!r}")
    if any(not 0 <= v < 100 for v in levels):
        raise UsageError(f"sparsity levels lie in [0, 100), got {spec!r}")
    return levels


@dataclass(frozen=True)
class LadderModel:
    """One rung: its target sparsity (fraction), checkpoint, measured sparsity and codec name."""

    target: float
    name: str
    path: Path
    sparsity: float
    codec_name: str = ""  # a shipped model's ``nic:`` name; else the checkpoint's path

    @property
    def codec(self) -> str:
        """The codec name of the model (``nic:NAME`` or ``checkpoint:PATH``, the path relative
        to the project root when the checkpoint is in it: the same store key on every checkout)."""
        if self.codec_name:
            return self.codec_name
        from ..cache import project_root

        path, root = self.path.resolve(), project_root().resolve()
        return f"checkpoint:{path.relative_to(root) if path.is_relative_to(root) else path}"


def shipped_rung(name: str) -> LadderModel:
    """A shipped family model as a rung (``nic:`` codec, sparsity measured on its file), e.g.
    the long-trained ``sh-pruned95-mse-0.0067`` and its dense base."""
    from ..nic.models import load_checkpoint, resolve_shipped, sparsity

    path = resolve_shipped(name)
    measured = sparsity(load_checkpoint(path)[0])
    return LadderModel(round(measured, 2), name, path, measured, codec_name=f"nic:{name}")


def ladder_models(levels: Sequence[int], folder: Path | None = None) -> list[LadderModel]:
    """The ladder's checkpoints with their sparsity measured on the file (exact zeros of the
    conv/deconv kernels); a missing one is a one-line DataError saying how to train it."""
    from ..nic.models import load_checkpoint, sparsity

    folder = folder or ladder_dir()
    out = []
    for level in levels:
        name = ladder_name(level)
        path = folder / f"{name}.safetensors"
        if not path.is_file():
            raise DataError(
                f"pruning ladder model {path} is missing; train it with "
                f"scripts/train_pruning_ladder.sh runs/ladder cpu {name}"
            )
        out.append(LadderModel(level / 100, name, path, sparsity(load_checkpoint(path)[0])))
    return out


def ladder_reached(models: Sequence[LadderModel], tol: float = SPARSITY_TOL) -> pd.DataFrame:
    """Target and measured sparsity of each rung and whether it reached its target (the
    pruner masks at least the target fraction; fp16 storage may zero a few more weights)."""
    rows = [
        {
            "model": m.name,
            "target": m.target,
            "measured": m.sparsity,
            "reached": bool(m.sparsity >= m.target - 1e-6 and m.sparsity <= m.target + tol),
        }
        for m in models
    ]
    return pd.DataFrame(rows, columns=["model", "target", "measured", "reached"])


LADDER_GAP_DB = 1.5  # the family's bar for its pruned model: within 1.5 dB of the dense curve


@sweep
def ladder_bars(
    models: Sequence[LadderModel], dataset: str, ids: Sequence[str], estimate: bool = False,
    **kw: Any,
) -> pd.DataFrame:  # fmt: skip
    """The model card's bars of each rung on clean ``ids``: sparsity reached
    (:func:`ladder_reached`) and its PSNR within :data:`LADDER_GAP_DB` of the dense family's
    curve at its bpp (:func:`gap_to_curve`; outside the curve's range a bound, judged no)."""
    from ..nic.reference import make_curve

    dense = []
    for name in DENSE_FAMILY:
        p = run_point(f"nic:{name}", dataset, ids, estimate=estimate, maps=False, **kw)
        dense.append((p.bpp, float(p.metrics["psnr"])))
    dense.sort()
    curve = make_curve("dense", [b for b, _ in dense], [q for _, q in dense], [math.nan] * 4)
    reached = ladder_reached(models).set_index("model")
    rows = []
    for m in models:
        p = run_point(m.codec, dataset, ids, estimate=estimate, maps=False, **kw)
        gap, bound = gap_to_curve(curve, p.bpp, float(p.metrics["psnr"]))
        rows.append({
            "model": m.name, "target": m.target, "sparsity": m.sparsity,
            "sparsity reached": bool(reached.loc[m.name, "reached"]), "bpp": p.bpp,
            "PSNR": float(p.metrics["psnr"]), "gap to dense (dB)": gap,
            "gap is a bound": bound,
            f"within {LADDER_GAP_DB} dB": bool(not bound and gap >= -LADDER_GAP_DB),
            "images": int(p.metrics["n_images"]),
        })  # fmt: skip
    return pd.DataFrame(rows)


def bars_markdown(bars: pd.DataFrame) -> str:
    """The bars as a Markdown table (the model card's)."""
    head = "| model | target | sparsity | reached | bpp | PSNR (dB) | gap to dense (dB) | within " \
        f"{LADDER_GAP_DB} dB |"  # fmt: skip
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for _, r in bars.iterrows():
        yes = {True: "yes", False: "no"}
        lines.append(
            f"| {r['model']} | {r['target']:.2f} | {r['sparsity']:.6f} | "
            f"{yes[bool(r['sparsity reached'])]} | {r['bpp']:.3f} | {r['PSNR']:.2f} | "
            f"{_gap_text(r).removesuffix(' dB')} | {yes[bool(r[f'within {LADDER_GAP_DB} dB'])]} |"
        )
    return "\n".join(lines)


def family_jpeg2000_gaps() -> tuple[float, float]:
    """The smallest and largest loss (dB, positive) of the dense family to JPEG2000 at the
    same bpp on Kodak, from the shipped manifest (``nicspec models report``)."""
    from ..nic.models import read_manifest

    models = read_manifest().get("models", {})
    gaps = [
        -float(models[n]["kodak_real_coding"]["default"]["gap_to_jpeg2000_db"])
        for n in DENSE_FAMILY
        if n in models
    ]
    if not gaps:
        raise DataError("the manifest has no Kodak numbers for the dense family")
    return min(gaps), max(gaps)


def ladder_recipe(level: int = 0) -> dict[str, Any]:
    """Steps, crop, batch and learning rate of a ladder recipe (recipes.yaml)."""
    from ..nic.train import get_recipe

    r = get_recipe(ladder_name(level))
    return {k: r[k] for k in ("steps", "crop", "batch_size", "lr")}


# --- study 1: pruning and denoising ---------------------------------------------------------


@sweep
def ladder_study(
    models: Sequence[LadderModel],
    dataset: str,
    ids: Sequence[str],
    noises: Sequence[str],
    severity: int,
    *,
    dense: Sequence[str] = DENSE_FAMILY,
    estimate: bool = False,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Rows (dicts with ``point``) of every ladder model on clean and noisy inputs, each with
    JPEG2000 at the model's mean bpp on the same inputs, and of the dense family on clean ones
    (its RD curve). Keywords go to :func:`run_point` (``seed``, ``out``)."""
    rows: list[dict[str, Any]] = []
    for m in models:
        for corruption in (None, *noises):
            ckw = {"corruption": corruption, "severity": severity if corruption else None, **kw}
            nic = run_point(m.codec, dataset, ids, estimate=estimate, **ckw)
            j2k = run_point(J2K, dataset, ids, bpp=round(nic.bpp, BPP_DIGITS), maps=False, **ckw)
            for codec, p in ((NIC, nic), (JPEG2000, j2k)):
                rows.append({"model": m.name, "sparsity": m.sparsity, "target": m.target,
                             "codec": codec, "corruption": corruption, "point": p})  # fmt: skip
    for name in dense:
        p = run_point(f"nic:{name}", dataset, ids, estimate=estimate, maps=False, **kw)
        rows.append({"model": name, "sparsity": None, "target": None, "codec": "dense",
                     "corruption": None, "point": p})  # fmt: skip
    return rows


def _records(point: Point) -> list[dict[str, Any]]:
    return list(point.metrics.get("per_image") or [])


def ladder_units(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (ladder model, image, corruption) of the NIC rows of :func:`ladder_study`:
    bpp, PSNR w.r.t. the input and the clean image, the clean bpp of the same image, JPEG2000's
    PSNR w.r.t. clean at the model's bpp, and for noisy inputs the R and C energies per band
    and the band gains ``R_b / C_b`` (energy left in band b over the corruption's own)."""
    j2k = {
        (r["model"], r["corruption"]): {x["id"]: x for x in _records(r["point"])}
        for r in rows
        if r["codec"] == JPEG2000
    }
    clean_bpp = {
        (r["model"], x["id"]): float(x["bpp"])
        for r in rows
        if r["codec"] == NIC and r["corruption"] is None
        for x in _records(r["point"])
    }
    out = []
    for r in rows:
        if r["codec"] != NIC:
            continue
        for x in _records(r["point"]):
            ref = j2k.get((r["model"], r["corruption"]), {}).get(x["id"], {})
            key = "psnr_wrt_clean" if r["corruption"] else "psnr"
            rec: dict[str, Any] = {
                "model": r["model"], "sparsity": r["sparsity"], "target": r["target"],
                "image": x["id"], "corruption": r["corruption"] or "clean",
                "bpp": float(x["bpp"]), "psnr": _num(x.get("psnr")),
                "psnr_wrt_clean": _num(x.get(key)),
                "clean_bpp": clean_bpp.get((r["model"], x["id"]), math.nan),
                "j2k_psnr_wrt_clean": _num(ref.get(key)),
            }  # fmt: skip
            energy = x.get("energy") or {}
            if r["corruption"] and "R" in energy and "C" in energy:
                for band in ("total", *BAND_NAMES):
                    rec[f"R_{band}"] = float(energy["R"][band])
                    rec[f"C_{band}"] = float(energy["C"][band])
                    c = float(energy["C"][band])
                    rec[f"gain_{band}"] = float(energy["R"][band]) / c if c > 0 else math.nan
            out.append(rec)
    frame = pd.DataFrame(out)
    if not frame.empty:
        frame["noise_rate"] = frame["bpp"] - frame["clean_bpp"]
        frame["vs_j2k"] = frame["psnr_wrt_clean"] - frame["j2k_psnr_wrt_clean"]
    return frame


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def dense_curve(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The dense family's clean RD curve (:class:`nic.reference.RDCurve`) from the dense rows."""
    from ..nic.reference import make_curve

    dense = [r for r in rows if r["codec"] == "dense"]
    if len(dense) < 2:
        raise DataError("the dense RD curve needs at least two dense models")
    pts = sorted((r["point"].bpp, float(r["point"].metrics["psnr"])) for r in dense)
    return make_curve("dense", [b for b, _ in pts], [p for _, p in pts], [math.nan] * len(pts))


def gap_to_curve(curve: Any, bpp: float, psnr: float) -> tuple[float, bool]:
    """PSNR minus the dense curve's at ``bpp`` (log-bpp interpolation) and whether it is only a
    bound: above the curve's bpp range the curve would be at least its last point's PSNR, so
    ``psnr`` minus that point's is an upper bound of the gap (below the range: a lower bound)."""
    gap = float(psnr - curve.at(bpp))
    if math.isfinite(gap):
        return gap, False
    if bpp > curve.bpp[-1]:
        return float(psnr - curve.psnr[-1]), True
    return float(psnr - curve.psnr[0]), True


def ladder_table(units: pd.DataFrame, curve: Any) -> pd.DataFrame:
    """One row per ladder model: measured sparsity; clean bpp, PSNR and its gap to the dense
    curve at that bpp (dB, negative: below the curve); on the noises (mean over images and
    noises): bpp, the rate the noise adds, PSNR w.r.t. clean, JPEG2000's at the model's bpp,
    the high-band R energy and the three band gains."""
    out = []
    for model, g in units.groupby("model", sort=False):
        clean, noisy = g[g["corruption"] == "clean"], g[g["corruption"] != "clean"]
        bpp, psnr = float(clean["bpp"].mean()), float(clean["psnr"].mean())
        gap, bound = gap_to_curve(curve, bpp, psnr)
        rec: dict[str, Any] = {
            "model": model, "sparsity": float(g["sparsity"].iloc[0]),
            "clean bpp": bpp, "clean PSNR": psnr, "gap to dense (dB)": gap,
            "gap is a bound": bound,
            "noisy bpp": float(noisy["bpp"].mean()),
            "noise rate": float(noisy["noise_rate"].mean()),
            "PSNR clean (noisy in)": float(noisy["psnr_wrt_clean"].mean()),
            "JPEG2000 same bpp": float(noisy["j2k_psnr_wrt_clean"].mean()),
        }  # fmt: skip
        if "R_high" in noisy:
            rec["R high energy"] = float(noisy["R_high"].mean())
            for band in BAND_NAMES:
                rec[f"gain {band}"] = float(noisy[f"gain_{band}"].mean())
        out.append(rec)
    return pd.DataFrame(out).sort_values("sparsity", kind="stable").reset_index(drop=True)


# per-unit measures of the ladder checks: column, how it is transformed, the sign that would
# mean "pruning denoises more" (for PSNR: higher; for gains and rates: lower). The high-band R
# energy is not a check of its own: paired on the same image and noise, its log ratio equals the
# high-band gain's (the corruption's energy C is the same on both sides)
LADDER_MEASURES: dict[str, tuple[str, str, int]] = {
    "PSNR w.r.t. clean on noise (dB)": ("psnr_wrt_clean", "identity", +1),
    "PSNR w.r.t. clean minus JPEG2000's at the same bpp (dB)": ("vs_j2k", "identity", +1),
    "high-band gain R/C (log2)": ("gain_high", "log2", -1),
    "rate the noise adds (bpp)": ("noise_rate", "identity", -1),
}


def _measure(frame: pd.DataFrame, column: str, how: str) -> pd.Series:
    values = frame[column].astype(float)
    return np.log2(values) if how == "log2" else values


def per_unit_slopes(units: pd.DataFrame, column: str, how: str = "identity") -> pd.DataFrame:
    """Least-squares slope of a measure against sparsity (per unit of sparsity, 0..1) for each
    (image, corruption) of the noisy units, over every ladder model: columns image,
    corruption, slope."""
    noisy = units[units["corruption"] != "clean"].copy()
    noisy["y"] = _measure(noisy, column, how)
    out = []
    for (image, corruption), g in noisy.groupby(["image", "corruption"], sort=True):
        g = g[np.isfinite(g["y"])]
        if len(g) < 2 or g["sparsity"].nunique() < 2:
            continue
        x = g["sparsity"].to_numpy(float)
        slope = float(np.polyfit(x, g["y"].to_numpy(float), 1)[0])
        out.append({"image": image, "corruption": corruption, "slope": slope})
    return pd.DataFrame(out, columns=["image", "corruption", "slope"])


def ladder_checks(
    units: pd.DataFrame, control: str, n_boot: int = 2000, seed: int = 0, slopes: bool = True
) -> list[ClaimCheck]:
    """The ladder's questions as paired effects with cluster-bootstrap intervals (clusters:
    images; strata: noises): for each measure, its slope against sparsity ("grows with
    sparsity" in the measure's denoising direction; ``slopes=False`` leaves it out), and each
    pruned model minus the control on the same image and noise."""
    checks = []
    noisy = units[units["corruption"] != "clean"]
    for label, (column, how, direction) in LADDER_MEASURES.items():
        if column not in noisy:
            continue
        if slopes:
            per_unit = per_unit_slopes(units, column, how)
            e = paired_effect(per_unit["slope"].to_numpy(float), cluster=per_unit["image"],
                              strata=per_unit["corruption"], n_boot=n_boot, seed=seed)  # fmt: skip
            checks.append(ClaimCheck(f"slope vs sparsity: {label}", direction, e))
        base = noisy[noisy["model"] == control].set_index(["image", "corruption"])
        for _, g in noisy[noisy["model"] != control].groupby("model", sort=False):
            g = g.set_index(["image", "corruption"])
            common = g.index.intersection(base.index)
            a = _measure(g.loc[common], column, how).to_numpy(float)
            b = _measure(base.loc[common], column, how).to_numpy(float)
            e = paired_effect(a, b, cluster=[i for i, _ in common],
                              strata=[c for _, c in common], n_boot=n_boot, seed=seed)  # fmt: skip
            sp = float(g["sparsity"].iloc[0])
            versus = "control" if control.startswith(LADDER_PREFIX) else control
            checks.append(ClaimCheck(f"{100 * sp:.0f}% − {versus}: {label}", direction, e))
    return checks


# --- study 2: a spectrum-aware codec choice --------------------------------------------------


def input_features(
    image: np.ndarray, normalisation: Any, alpha: float = NATURAL_ALPHA
) -> dict[str, float]:
    """Spectral features of one input (HxWx3 uint8), read from the image alone.

    The spectrum is :func:`spectral.error_spectrum` of the image against a flat image of the
    dataset's mean colour (the normalised image's luma, DC removed). The natural power law
    ``P(rho) = c * rho**-alpha`` gets its level ``c`` from the radial power profile over
    :data:`FIT_BAND` (least squares in log power, ``alpha`` fixed). ``excess``: log10 of the
    mean high-band power (``rho >= BAND_EDGES[1]``, up to 0.5) over the power law's mean there
    (white noise lifts it, blur lowers it); ``alpha_fit``: the slope fitted freely over the same
    band; ``high_share``: the high band's share of the energy.
    """
    flat = np.empty(image.shape, dtype=np.float64)
    flat[...] = np.asarray(normalisation.mean, dtype=np.float64)
    spectrum = error_spectrum(np.asarray(image), flat, normalisation, dtype=np.float32)
    radius, profile = radial_profile(np.asarray(spectrum, dtype=np.float64) ** 2)
    ok = np.isfinite(profile) & (profile > 0)
    fit = ok & (radius >= FIT_BAND[0]) & (radius < FIT_BAND[1])
    high = ok & (radius >= BAND_EDGES[1])
    if fit.sum() < 3 or high.sum() < 1:
        raise DataError(f"image of {image.shape[1]}x{image.shape[0]} is too small for its spectrum")
    log_r, log_p = np.log10(radius[fit]), np.log10(profile[fit])
    level = float(np.mean(log_p + alpha * log_r))
    predicted = 10 ** (level - alpha * np.log10(radius[high]))
    excess = math.log10(float(profile[high].mean()) / float(predicted.mean()))
    slope = float(np.polyfit(log_r, log_p, 1)[0])
    share = band_energies(spectrum)["high"]
    return {"excess": excess, "alpha_fit": -slope, "high_share": float(share)}


def _features_task(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Features of one set's images (a task): clean or corrupted as the engine corrupts."""
    from ..corruptions import corrupt
    from ..data import get_dataset

    ds = get_dataset(item["dataset"])
    out = []
    for image_id in item["ids"]:
        img = ds.load(image_id)
        if item["corruption"]:
            img = corrupt(img, item["corruption"], int(item["severity"]), seed=int(item["seed"]))
        out.append({"image": image_id, **input_features(img, ds.normalisation)})
    return out


def feature_table(
    dataset: str,
    ids: Sequence[str],
    conditions: Sequence[tuple[str | None, int | None]],
    seed: int = 0,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Input features (:func:`input_features`) of every (condition, image): cached per set in
    the results folder (keyed by the images' sha256, the condition, the seed and
    :data:`FEATURE_VERSION`), the missing sets computed as tasks on the book's cluster."""
    from ..cache import config_key, read_json, results_dir
    from ..data import get_dataset
    from ..engines.scheduler import get_client, map_tasks
    from ..io import atomic_write_json
    from ..store import input_digests, served_file

    root = Path(out) if out else results_dir()
    digests = input_digests(get_dataset(dataset), list(ids))
    items: list[dict[str, Any]] = []
    pending: list[tuple[int, Path]] = []
    found: dict[int, Any] = {}
    for position, (corruption, severity) in enumerate(conditions):
        item = {"dataset": dataset, "ids": list(ids), "corruption": corruption,
                "severity": severity if corruption else None, "seed": int(seed)}  # fmt: skip
        key = config_key({"features": FEATURE_VERSION, "fit_band": FIT_BAND,
                          "alpha": NATURAL_ALPHA, **item, "sha256": digests})  # fmt: skip
        path = root / "features" / f"{key}.json"
        cached = read_json(served_file(path, dataset))
        if cached is not None:
            found[position] = cached
        else:
            items.append(item)
            pending.append((position, path))
    for index, result in map_tasks(_features_task, items, "input spectra", client=get_client()):
        position, path = pending[index]
        atomic_write_json(path, result)
        found[position] = result
    rows = []
    for position, (corruption, severity) in enumerate(conditions):
        for rec in found[position]:
            rows.append({"dataset": dataset, "condition": condition_label(corruption, severity),
                         **rec})  # fmt: skip
    return pd.DataFrame(rows)


def condition_label(corruption: str | None, severity: int | None) -> str:
    """``"clean"`` or ``"gaussian_noise-3"``."""
    return "clean" if not corruption else f"{corruption}-{severity}"


@sweep
def choice_study(
    model: str,
    dataset: str,
    ids: Sequence[str],
    conditions: Sequence[tuple[str | None, int | None]],
    *,
    estimate: bool = False,
    **kw: Any,
) -> pd.DataFrame:
    """NIC ``model`` and JPEG2000 at the NIC's bpp on each image (one JPEG2000 entry per image)
    for every condition: one row per (condition, image) with both bpp and both PSNRs w.r.t. the
    clean image (the input itself when clean)."""
    from ..corruptions import group_of

    rows = []
    for corruption, severity in conditions:
        ckw = {"corruption": corruption, "severity": severity if corruption else None, **kw}
        nic = run_point(f"nic:{model}", dataset, ids, estimate=estimate, maps=False, **ckw)
        for x in _records(nic):
            bpp = float(x["bpp"])
            j2k = run_point(J2K, dataset, [x["id"]], bpp=round(bpp, BPP_DIGITS), maps=False, **ckw)
            y = _records(j2k)[0]
            key = "psnr_wrt_clean" if corruption else "psnr"
            rows.append({
                "dataset": dataset, "condition": condition_label(corruption, severity),
                "group": group_of(corruption) if corruption else "clean", "image": x["id"],
                "nic_bpp": bpp, "j2k_bpp": float(y["bpp"]),
                "nic": _num(x.get(key)), "j2k": _num(y.get(key)),
            })  # fmt: skip
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Rule:
    """Choose NIC where ``side * (excess - threshold) > 0``, else JPEG2000 (an infinite
    threshold is a fixed choice)."""

    threshold: float
    side: int

    def picks_nic(self, excess: Any) -> np.ndarray:
        """Boolean array: NIC for each feature value."""
        f = np.asarray(excess, dtype=float)
        return self.side * (f - self.threshold) > 0

    def describe(self) -> str:
        """The rule in words."""
        if math.isinf(self.threshold):
            always = (self.threshold < 0) == (self.side > 0)
            return "always NIC" if always else "always JPEG2000"
        op = ">" if self.side > 0 else "<"
        return f"NIC when excess {op} {self.threshold:.3f}, else JPEG2000"


def chosen(rule: Rule, table: pd.DataFrame) -> np.ndarray:
    """PSNR of the rule's choice on each row of a choice table (with ``excess``)."""
    nic = rule.picks_nic(table["excess"])
    return np.where(nic, table["nic"].to_numpy(float), table["j2k"].to_numpy(float))


def oracle(table: pd.DataFrame) -> np.ndarray:
    """PSNR of the better codec on each row (the choice a rule could at best make)."""
    return np.maximum(table["nic"].to_numpy(float), table["j2k"].to_numpy(float))


def fit_rule(table: pd.DataFrame) -> Rule:
    """The threshold and side of ``excess`` with the highest mean PSNR of the choice on
    ``table`` (candidates: midpoints between sorted feature values and +-inf, i.e. the fixed
    choices too; ties go to the fixed choice, then to the smaller threshold)."""
    if table.empty:
        raise DataError("cannot fit the codec-choice rule on an empty table")
    f = np.unique(table["excess"].to_numpy(float))
    thresholds = [-math.inf, *((f[:-1] + f[1:]) / 2), math.inf]
    best: tuple[float, int, Rule] | None = None
    for side in (+1, -1):
        for t in thresholds:
            rule = Rule(float(t), side)
            score = float(np.mean(chosen(rule, table)))
            rank = 0 if math.isinf(t) else 1  # prefer a fixed choice on a tie
            if (
                best is None
                or score > best[0] + 1e-12
                or (abs(score - best[0]) <= 1e-12 and rank < best[1])
            ):
                best = (score, rank, rule)
    assert best is not None
    return best[2]


def join_features(choice: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The choice table with each row's input features."""
    merged = choice.merge(features, on=["dataset", "condition", "image"], how="left")
    if merged["excess"].isna().any():
        raise DataError("some codec-choice rows have no input features")
    return merged


def folds(tables: Mapping[str, pd.DataFrame]) -> list[tuple[str, pd.DataFrame, str, pd.DataFrame]]:
    """(fit name, fit table, test name, test table): each dataset fits the rule for the other;
    with one dataset its images are split in two halves (first and second), each fitting the
    rule for the other."""
    names = [n for n, t in tables.items() if not t.empty]
    if len(names) >= 2:
        a, b = names[:2]
        return [(a, tables[a], b, tables[b]), (b, tables[b], a, tables[a])]
    if not names:
        raise DataError("no codec-choice table to fit the rule on")
    t = tables[names[0]]
    images = list(dict.fromkeys(t["image"]))
    half = len(images) // 2
    if half < 1:
        raise DataError("the codec-choice rule needs at least two images to fit and test")
    first, second = set(images[:half]), set(images[half:])
    ta, tb = t[t["image"].isin(first)], t[t["image"].isin(second)]
    na, nb = f"{names[0]} (first half)", f"{names[0]} (second half)"
    return [(na, ta, nb, tb), (nb, tb, na, ta)]


STRATEGIES = ("rule", "always NIC", "always JPEG2000", "oracle")


def strategy_values(rule: Rule, table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-row PSNR w.r.t. clean of each strategy on a test table."""
    return {
        "rule": chosen(rule, table),
        "always NIC": table["nic"].to_numpy(float),
        "always JPEG2000": table["j2k"].to_numpy(float),
        "oracle": oracle(table),
    }


def choice_summary(
    fitted: Sequence[tuple[str, Rule, str, pd.DataFrame]],
) -> pd.DataFrame:
    """One row per (fold, strategy): mean PSNR w.r.t. clean and mean bpp on the test set, and
    the share of rows on which the strategy picks NIC."""
    out = []
    for fit_name, rule, test_name, table in fitted:
        values = strategy_values(rule, table)
        picks = {
            "rule": rule.picks_nic(table["excess"]),
            "always NIC": np.ones(len(table), bool),
            "always JPEG2000": np.zeros(len(table), bool),
            "oracle": table["nic"].to_numpy(float) > table["j2k"].to_numpy(float),
        }
        for name in STRATEGIES:
            bpp = np.where(picks[name], table["nic_bpp"], table["j2k_bpp"])
            out.append({"fit on": fit_name, "test on": test_name, "strategy": name,
                        "PSNR w.r.t. clean": float(np.mean(values[name])),
                        "bpp": float(np.mean(bpp)), "NIC share": float(np.mean(picks[name])),
                        "rule": rule.describe() if name == "rule" else ""})  # fmt: skip
    return pd.DataFrame(out)


def choice_checks(
    fitted: Sequence[tuple[str, Rule, str, pd.DataFrame]], n_boot: int = 2000, seed: int = 0
) -> list[ClaimCheck]:
    """On each test set: rule minus each fixed choice (the rule should be higher: +1) and the
    oracle minus the rule (what a perfect chooser would add; it cannot be negative), paired by
    (image, condition), clusters images, strata conditions."""
    checks = []
    for fit_name, rule, test_name, table in fitted:
        values = strategy_values(rule, table)
        where = f"fit {fit_name} → test {test_name}"
        kw = {"cluster": table["image"].to_list(), "strata": table["condition"].to_list(),
              "n_boot": n_boot, "seed": seed, "strata_label": "condition"}  # fmt: skip
        for fixed in ("always NIC", "always JPEG2000"):
            e = paired_effect(values["rule"], values[fixed], **kw)
            checks.append(ClaimCheck(f"{where}: rule − {fixed} (dB)", +1, e))
        e = paired_effect(values["oracle"], values["rule"], **kw)
        checks.append(ClaimCheck(f"{where}: oracle − rule (dB)", +1, e))
    return checks


def group_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean NIC − JPEG2000 PSNR w.r.t. clean at the same per-image bpp, and mean excess, by
    dataset and frequency group of the corruption (clean: its own group)."""
    t = table.assign(gap=table["nic"] - table["j2k"])
    g = t.groupby(["dataset", "group"], sort=False)
    return g.agg(units=("gap", "size"), nic_minus_j2k=("gap", "mean"),
                 excess=("excess", "mean")).reset_index()  # fmt: skip


PLAIN_VERDICTS = {
    "reproduced": "as predicted",
    "contradicted": "the other way",
    "inconclusive": "inconclusive",
}


def checks_table(checks: Sequence[ClaimCheck]) -> pd.DataFrame:
    """:func:`stats.effects_table` of this chapter's checks, with the sign each question predicts
    (``expected``: > 0 or < 0) and the verdict in plain words (these are not the paper's claims:
    *as predicted* means the interval lies on the expected side of zero)."""
    from ..stats import effects_table

    table = effects_table(checks).drop(columns=["method"])
    table.insert(1, "expected", ["> 0" if c.direction > 0 else "< 0" for c in checks])
    table["verdict"] = table["verdict"].map(PLAIN_VERDICTS)
    return table


# --- figures ----------------------------------------------------------------------------------


def plot_ladder(table: pd.DataFrame, curve: Any, dense_rows: Sequence[Mapping[str, Any]]) -> Any:
    """Three panels: clean RD (dense curve and ladder), denoising against sparsity (PSNR w.r.t.
    clean of NIC and of JPEG2000 at the same bpp; the noise's rate), band gains."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    bpp = [r["point"].bpp for r in dense_rows]
    psnr = [float(r["point"].metrics["psnr"]) for r in dense_rows]
    ax[0].plot(bpp, psnr, "k-o", label="dense family")
    ax[0].scatter(table["clean bpp"], table["clean PSNR"], c=table["sparsity"], cmap="viridis",
                  zorder=3, label="ladder (colour: sparsity)")  # fmt: skip
    for _, r in table.iterrows():
        ax[0].annotate(f"{100 * r['sparsity']:.0f}%", (r["clean bpp"], r["clean PSNR"]),
                       fontsize=8, xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax[0].set(xlabel="bpp (clean Kodak)", ylabel="PSNR (dB)", title="clean rate–distortion")
    ax[0].legend(fontsize=8)
    s = 100 * table["sparsity"]
    ax[1].plot(s, table["PSNR clean (noisy in)"], "o-", label="NIC", color=colour(CURVE_PRUNED))
    ax[1].plot(s, table["JPEG2000 same bpp"], "s--", label="JPEG2000 at its bpp",
               color=colour(ANCHOR))  # fmt: skip
    ax[1].set(xlabel="sparsity (%)", ylabel="PSNR w.r.t. clean (dB)", title="noisy inputs")
    twin = ax[1].twinx()
    twin.plot(s, table["noise rate"], "^:", color="grey", label="rate the noise adds")
    twin.set_ylabel("bpp added by the noise", color="grey")
    ax[1].legend(fontsize=8, loc="lower left")
    for band in BAND_NAMES:
        if f"gain {band}" in table:
            ax[2].plot(s, table[f"gain {band}"], "o-", label=band)
    ax[2].set(xlabel="sparsity (%)", ylabel="R / C energy", title="band gains on noise",
              yscale="log")  # fmt: skip
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_choice(
    fitted: Sequence[tuple[str, Rule, str, pd.DataFrame]], tables: Mapping[str, pd.DataFrame]
) -> Any:
    """NIC − JPEG2000 (dB) against the input's excess, per dataset, with each fold's threshold."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    markers = dict(zip(["clean", "low", "medium", "high"], "os^D", strict=True))
    for name, t in tables.items():
        if t.empty:
            continue
        for group, g in t.groupby("group"):
            ax.scatter(g["excess"], g["nic"] - g["j2k"], marker=markers.get(str(group), "x"),
                       alpha=0.7, label=f"{name}: {group}")  # fmt: skip
    for (fit_name, rule, _, _), style in zip(fitted, ("--", ":", "-."), strict=False):
        if not math.isinf(rule.threshold):
            ax.axvline(rule.threshold, ls=style, lw=1.2, color="k",
                       label=f"threshold fitted on {fit_name}")  # fmt: skip
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="input's high-band excess over its power law (log10)",
           ylabel="NIC − JPEG2000, PSNR w.r.t. clean (dB)",
           title="which codec wins, per image")  # fmt: skip
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


# --- the page's sentences ---------------------------------------------------------------------


def _interval(check: ClaimCheck, unit: str = "") -> str:
    e = check.estimate
    images = f"{e.n_clusters} image{'' if e.n_clusters == 1 else 's'}"
    if not (math.isfinite(e.ci_low) and math.isfinite(e.ci_high)):
        return f"{e.mean:+.3f}{unit} (no interval from {images})"
    return f"{e.mean:+.3f}{unit} [{e.ci_low:+.3f}, {e.ci_high:+.3f}] ({images})"


def _undecided(check: ClaimCheck) -> str:
    """Why an inconclusive check is: too few images, or an interval that includes 0."""
    if check.estimate.n_clusters < MIN_IMAGES:
        return f"too few images for a verdict (it takes {MIN_IMAGES})"
    if check.estimate.degenerate:
        return "no spread to judge (every difference is 0)"
    return "the interval includes 0"


def recovered(table: pd.DataFrame) -> list[str]:
    """The rungs of :func:`ladder_table` whose clean PSNR is within :data:`LADDER_GAP_DB` of the
    dense curve at their bpp (the family's bar for a pruned model), in ladder order."""
    ok = table["gap to dense (dB)"] >= -LADDER_GAP_DB
    if "gap is a bound" in table:
        ok &= ~table["gap is a bound"].astype(bool)  # outside the curve: not judged recovered
    return [str(m) for m, keep in zip(table["model"], ok, strict=True) if keep]


def _gap_text(row: Any) -> str:
    bound = bool(row.get("gap is a bound", False))
    return f"{'≤ ' if bound else ''}{row['gap to dense (dB)']:+.2f} dB"


def ladder_findings(checks: Sequence[ClaimCheck], table: pd.DataFrame) -> str:
    """Markdown: the ladder's answers, each with its interval and verdict."""
    by = {c.claim: c for c in checks}

    def said(label: str, grows: str, falls: str) -> str:
        c = by.get(f"slope vs sparsity: {label}")
        if c is None:
            return f"- {label}: not measured."
        word = {"reproduced": grows, "contradicted": falls}.get(c.verdict, _undecided(c))
        return f"- **{label}**, slope per unit of sparsity {_interval(c)}: {word}."

    lines = [
        said("PSNR w.r.t. clean on noise (dB)", "denoising grows with sparsity",
             "denoising falls with sparsity"),
        said("PSNR w.r.t. clean minus JPEG2000's at the same bpp (dB)",
             "it grows with sparsity at matched rate too", "it falls at matched rate"),
        said("high-band gain R/C (log2)", "the network passes less of the noise's high band",
             "the network passes more of the noise's high band"),
        said("rate the noise adds (bpp)", "the rate spent on the noise falls with sparsity",
             "the rate spent on the noise grows with sparsity"),
    ]  # fmt: skip
    gaps = ", ".join(f"{100 * r['sparsity']:.0f} %: {_gap_text(r)}" for _, r in table.iterrows())
    lines.append(f"- Clean PSNR against the dense curve at each rung's bpp: {gaps}.")
    return "\n".join(lines)


def choice_findings(checks: Sequence[ClaimCheck], summary: pd.DataFrame) -> str:
    """Markdown: each fold's rule and how it fared against fixed choices and the oracle."""
    lines = []
    for (fit_name, test_name), s in summary.groupby(["fit on", "test on"], sort=False):
        rule = s[s["strategy"] == "rule"].iloc[0]
        where = f"fit {fit_name} → test {test_name}"
        parts = []
        for c in checks:
            if c.claim.startswith(where + ":"):
                what = c.claim.split(": ", 1)[1].removesuffix(" (dB)")
                parts.append(f"{what} {_interval(c, ' dB')} — {PLAIN_VERDICTS[c.verdict]}")
        lines.append(
            f"- **{where}**: {rule['rule']} (NIC on {100 * rule['NIC share']:.0f} % of the test "
            f"inputs); " + "; ".join(parts) + "."
        )
    return "\n".join(lines)


def _answer(check: ClaimCheck | None, yes: str, no: str, unit: str = "") -> str:
    """One measured answer: the interval and what it says (``yes``: on the expected side)."""
    if check is None:
        return "not measured"
    word = {"reproduced": yes, "contradicted": no}.get(check.verdict, _undecided(check))
    return f"{_interval(check, unit)}: {word}"


def conclusions(
    table: pd.DataFrame,
    kept: Sequence[str],
    kept_checks: Sequence[ClaimCheck],
    pair_checks: Sequence[ClaimCheck],
    choice_checks: Sequence[ClaimCheck],
    steps: int,
) -> str:
    """The chapter's answers as Markdown bullets, every number from the checks and tables."""
    lines = []
    broken = table[~table["model"].isin(kept)]
    if not broken.empty:
        what = ", ".join(
            f"{100 * r['sparsity']:.0f} % ({_gap_text(r)})" for _, r in broken.iterrows()
        )
        lines.append(
            f"- **Rungs that did not recover.** After {steps} steps the rungs at {what} lie more "
            f"than {LADDER_GAP_DB} dB below the dense curve on clean images (≤: an upper bound, "
            "the rung's bpp lies beyond the curve): what they do to noise is mostly what a "
            "damaged network does, not what sparsity does."
        )
    by = {c.claim: c for c in kept_checks}
    if len(kept) >= 2:
        top = 100 * float(table[table["model"].isin(kept)]["sparsity"].max())
        slope = "slope vs sparsity: "
        lines.append(
            f"- **On the rungs that recovered (0 to {top:.0f} %)**, per unit of sparsity: PSNR "
            "w.r.t. clean on noise "
            + _answer(by.get(slope + "PSNR w.r.t. clean on noise (dB)"),
                      "denoising grows with sparsity", "denoising falls with sparsity", " dB")
            + "; the same relative to JPEG2000 at the rung's bpp "
            + _answer(by.get(slope + "PSNR w.r.t. clean minus JPEG2000's at the same bpp (dB)"),
                      "it grows at matched rate", "it falls at matched rate", " dB")
            + "; the high-band gain (log2) "
            + _answer(by.get(slope + "high-band gain R/C (log2)"),
                      "less of the noise's high band passes", "more of it passes")
            + "; the rate the noise adds "
            + _answer(by.get(slope + "rate the noise adds (bpp)"),
                      "the high-frequency rate falls", "it grows", " bpp")
            + "."
        )  # fmt: skip
    else:
        lines.append("- **No trend over the ladder**: fewer than two rungs recovered.")
    pair = {c.claim.split(": ", 1)[1]: c for c in pair_checks}
    if pair:
        name = pair_checks[0].claim.split(": ", 1)[0]
        lines.append(
            f"- **The long-trained pruned model ({name})**: PSNR w.r.t. clean on noise "
            + _answer(pair.get("PSNR w.r.t. clean on noise (dB)"), "it denoises better",
                      "it denoises worse", " dB")
            + "; high-band gain R/C (log2) "
            + _answer(pair.get("high-band gain R/C (log2)"), "less high-frequency error left",
                      "more high-frequency error left")
            + "; the rate the noise adds "
            + _answer(pair.get("rate the noise adds (bpp)"), "lower", "higher", " bpp")
            + "."
        )  # fmt: skip
    for check in choice_checks:
        where, what = check.claim.split(": ", 1)
        if "oracle" in what:
            continue
        fixed = what.removeprefix("rule − ").removesuffix(" (dB)")
        lines.append(
            f"- **Codec choice, {where}**: the rule against {fixed} "
            + _answer(check, "the rule is better", f"{fixed} is better", " dB")
            + "."
        )
    return "\n".join(lines)
