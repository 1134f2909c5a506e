"""The shipped NIC family: Kodak benchmark with real entropy coding, quality bars, manifest,
model card and training-curve figures (``nicspec models report``)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageError

VR_EVAL_LAMBDAS = (0.0025, 0.0067, 0.018, 0.0483)  # the fixed-rate ladder
BARS = {
    "published_gap_db": 1.5,  # fixed-rate: within 1.5 dB of CompressAI's hyperprior
    "published_gap_aim_db": 0.75,
    "vr_gap_db": 0.5,  # variable rate: within 0.5 dB of our fixed-rate curve
    "pruned_sparsity": 0.95,
    "pruned_gap_db": 1.5,  # pruned: within 1.5 dB of our dense curve
}
README_MARK = "<!-- TABLE:models -->"
# The paper's NIC families that this project has recipes for but no trained model of.
PAPER_FAMILIES = {"elic": "ELIC (He et al. 2022; CompressAI's Elic2022Official)"}
NOT_AVAILABLE_REASON = (
    "not trained: a useful ELIC needs GPU-scale training, which this project's CPUs cannot give "
    "(data/models/MODEL_CARD.md, 'ELIC')"
)
GPU_COMMAND = "NICSPEC_FAMILY=elic scripts/train_family_gpu.sh OUT_DIR"


def _kodak_metrics(codec: str, limit: int | None, progress: bool, **kw: Any) -> dict[str, Any]:
    from ..cache import read_json
    from ..engines.evaluate import evaluate

    path = evaluate(codec, "kodak", limit=limit, progress=progress, **kw)
    metrics: dict[str, Any] = read_json(path) or {}
    return metrics


def not_available(recipes_file: Path | None = None) -> list[dict[str, Any]]:
    """The paper's models this project has a recipe for but no checkpoint of (ELIC), one row
    per recipe: name, family, size, lambda, ``status`` "not available", the reason, and the
    commands that would produce it. Chapters show these rows instead of leaving them out."""
    from .models import MODELS_DIR
    from .train import RECIPES_FILE, load_recipes

    rows = []
    for name, recipe in load_recipes(recipes_file or RECIPES_FILE).items():
        family = PAPER_FAMILIES.get(recipe["architecture"])
        if family is None or (MODELS_DIR / f"{name}.safetensors").exists():
            continue
        rows.append(
            {
                "model": name,
                "family": family,
                "architecture": recipe["architecture"],
                "N": int(recipe["N"]),
                "M": int(recipe["M"]),
                "metric": recipe["metric"],
                "lmbda": recipe.get("lmbda"),
                "status": "not available",
                "reason": NOT_AVAILABLE_REASON,
                "command": f"nicspec train --recipe {name} --device cuda",
                "gpu_command": GPU_COMMAND,
            }
        )
    return rows


def not_available_table(rows: list[dict[str, Any]] | None = None) -> str:
    """Markdown table of :func:`not_available` (empty string when every model is present)."""
    rows = not_available() if rows is None else rows
    if not rows:
        return ""
    lines = [
        "| model | family | N, M | λ | status | how to produce it |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['family']} | {r['N']}, {r['M']} | {r['lmbda']:g} "
            f"| {r['status']} | `{r['command']}` (all of them: `{r['gpu_command']}`) |"
        )
    return "\n".join(lines)


def candidate_names(paths: list[Path]) -> dict[str, Path]:
    """Shipped model name -> candidate checkpoint (its metadata's ``name``); one-line errors."""
    from .models import read_checkpoint_meta, shipped_models

    shipped, out = shipped_models(), {}  # type: dict[str, Any], dict[str, Path]
    for path in paths:
        name = read_checkpoint_meta(path).get("name")
        if name not in shipped:
            raise UsageError(
                f"candidate {path} is {name or 'unnamed'}, which is not a shipped model; "
                f"choose one of {', '.join(shipped)}"
            )
        if name in out:
            raise UsageError(f"two candidates for {name}: {out[name]} and {path}")
        out[name] = Path(path)
    return out


def benchmark(
    limit: int | None = None,
    progress: bool = True,
    candidates: Mapping[str, Path] | None = None,
) -> dict[str, dict[str, Any]]:
    """Kodak bpp / PSNR / MS-SSIM of every shipped model (VR at the fixed-rate lambdas);
    ``candidates`` (name -> checkpoint) stand in for their shipped namesakes."""
    from .models import MODELS_DIR, load_checkpoint, read_checkpoint_meta, shipped_models, sparsity

    candidates = candidates or {}
    rows: dict[str, dict[str, Any]] = {}
    for name, entry in shipped_models().items():
        path = candidates.get(name, MODELS_DIR / entry["file"])
        codec = f"checkpoint:{path}" if name in candidates else f"nic:{name}"
        meta = read_checkpoint_meta(path)
        if "sparsity" in meta:  # measure the shipped file itself (fp16 kernels), not the log
            meta = {
                **meta,
                "sparsity_at_training": meta["sparsity"],
                "sparsity": sparsity(load_checkpoint(path)[0]),
            }
        settings: list[float | None] = [None]
        if meta["architecture"] == "scale-hyperprior-vr":
            settings = list(VR_EVAL_LAMBDAS)
        for lmbda in settings:
            opts = {} if lmbda is None else {"lmbda": lmbda}
            m = _kodak_metrics(codec, limit, progress, codec_options=opts)
            key = name if lmbda is None else f"{name}@{lmbda}"
            rows[key] = {
                "model": name,
                "lmbda_eval": lmbda,
                "meta": meta,
                "bpp": m["bpp"],
                "psnr": m["psnr"],
                "ms_ssim": m["ms_ssim"],
                "n_images": m["n_images"],
            }
    for row in rows.values():  # our JPEG2000 at each model's rate
        j2k = _kodak_metrics("jpeg2000", limit, progress, bpp=round(row["bpp"], 4))
        row["jpeg2000_psnr"] = j2k["psnr"]
        row["jpeg2000_ms_ssim"] = j2k["ms_ssim"]
    return rows


def quality_bars(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Gaps to the published hyperprior, to JPEG2000 and between family members."""
    from .reference import make_curve, published_curve

    hyper = published_curve("bmshj2018-hyperprior")
    fixed = {
        k: r
        for k, r in rows.items()
        if r["meta"]["architecture"] == "scale-hyperprior"
        and r["meta"]["metric"] == "mse"
        and "prune" not in (r["meta"].get("recipe") or {})
    }
    fixed_curve = make_curve(
        "ours (fixed-rate MSE)",
        [r["bpp"] for r in fixed.values()],
        [r["psnr"] for r in fixed.values()],
        [r["ms_ssim"] for r in fixed.values()],
    )
    # every MSE model (fixed-rate and variable-rate, pruned excluded): the MS-SSIM models' yardstick
    mse = {
        k: r
        for k, r in rows.items()
        if r["meta"]["metric"] == "mse" and "prune" not in (r["meta"].get("recipe") or {})
    }
    mse_curve = make_curve(
        "ours (MSE: fixed-rate and variable-rate)",
        [r["bpp"] for r in mse.values()],
        [r["psnr"] for r in mse.values()],
        [r["ms_ssim"] for r in mse.values()],
    )
    for key, r in rows.items():
        r["gap_to_published_hyperprior_db"] = r["psnr"] - hyper.at(r["bpp"])
        r["gap_to_jpeg2000_db"] = r["psnr"] - r["jpeg2000_psnr"]
        r["gap_to_fixed_rate_db"] = None if key in fixed else r["psnr"] - fixed_curve.at(r["bpp"])
        r["ms_ssim_minus_mse_curve"] = None if key in mse else ms_ssim_margin(r, mse_curve)
    checks = []
    for key, r in fixed.items():
        gap = r["gap_to_published_hyperprior_db"]
        checks.append(
            _check(
                f"{key}: within {BARS['published_gap_db']} dB of published hyperprior",
                gap,
                gap >= -BARS["published_gap_db"],
            )
        )
    for key, r in rows.items():
        arch, meta = r["meta"]["architecture"], r["meta"]
        if arch == "scale-hyperprior-vr" and r["lmbda_eval"] in VR_EVAL_LAMBDAS:
            gap = r["gap_to_fixed_rate_db"]
            checks.append(
                _check(
                    f"{key}: within {BARS['vr_gap_db']} dB of the fixed-rate curve",
                    gap,
                    gap is not None and not math.isnan(gap) and abs(gap) <= BARS["vr_gap_db"],
                )
            )
        if "sparsity" in meta:
            checks.append(
                _check(
                    f"{key}: sparsity >= {BARS['pruned_sparsity']}",
                    meta["sparsity"],
                    meta["sparsity"] >= BARS["pruned_sparsity"] - 1e-6,
                )
            )
            gap = r["gap_to_fixed_rate_db"]
            checks.append(
                _check(
                    f"{key}: within {BARS['pruned_gap_db']} dB of the dense curve",
                    gap,
                    gap is not None and not math.isnan(gap) and gap >= -BARS["pruned_gap_db"],
                )
            )
        if meta["metric"] == "ms-ssim":
            diff = r["ms_ssim_minus_mse_curve"]
            checks.append(
                _check(
                    f"{key}: higher MS-SSIM than the MSE models (fixed, variable rate) at its bpp",
                    diff,
                    diff is not None and not math.isnan(diff) and diff > 0,
                )
            )
    return {
        "checks": checks,
        "fixed_rate_curve": {"bpp": list(fixed_curve.bpp), "psnr": list(fixed_curve.psnr)},
        "mse_curve": {"bpp": list(mse_curve.bpp), "ms_ssim": list(mse_curve.ms_ssim)},
    }


def ms_ssim_margin(row: dict[str, Any], curve: Any) -> float:
    """MS-SSIM of ``row`` minus the MSE curve's at the row's bpp (log-bpp interpolation).

    Below the curve's bpp range the row is compared with the curve's lowest-rate point: a model
    that spends fewer bits and still scores higher beats the (rate-increasing) curve at its own
    bpp by at least that margin, so a positive margin is conclusive there; a negative one is not
    (NaN). Above the range, symmetrically, only a negative margin against the highest point is.
    """
    bpp, value = float(row["bpp"]), float(row["ms_ssim"])
    inside = curve.at(bpp, "ms_ssim")
    if not math.isnan(inside):
        return value - inside
    if bpp < curve.bpp[0]:
        margin = value - float(curve.ms_ssim[0])
        return margin if margin > 0 else float("nan")
    margin = value - float(curve.ms_ssim[-1])
    return margin if margin < 0 else float("nan")


def _check(what: str, value: float | None, ok: bool) -> dict[str, Any]:
    return {"check": what, "value": value, "pass": bool(ok)}


def _fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def models_table(rows: dict[str, dict[str, Any]]) -> str:
    """Markdown table of the family on Kodak (real entropy coding)."""
    lines = [
        "| model | steps | Kodak bpp | PSNR (dB) | MS-SSIM | vs published hyperprior (dB) "
        "| vs our JPEG2000 (dB) | vs our fixed-rate curve (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, r in sorted(
        rows.items(),
        key=lambda kv: (kv[1]["meta"]["architecture"], kv[1]["meta"]["metric"], kv[1]["bpp"]),
    ):
        gaps = [
            _fmt(r[g], signed=True)
            for g in (
                "gap_to_published_hyperprior_db",
                "gap_to_jpeg2000_db",
                "gap_to_fixed_rate_db",
            )
        ]
        lines.append(
            f"| {key} | {r['meta']['steps']} | {r['bpp']:.3f} | {r['psnr']:.2f} "
            f"| {r['ms_ssim']:.4f} | " + " | ".join(gaps) + " |"
        )
    lines.extend(not_available_rows())
    return "\n".join(lines)


def not_available_rows() -> list[str]:
    """Rows of the family's table for the paper's models that are not here (ELIC)."""
    return [f"| {r['model']} | – | not available | – | – | – | – | – |" for r in not_available()]


def _bar_value(check: dict[str, Any]) -> str:
    sparsity = "sparsity" in check["check"]  # 0.949999 must not print as 0.950
    return _fmt(check["value"], 6 if sparsity else 3, signed=not sparsity)


def checks_table(bars: dict[str, Any]) -> str:
    """Markdown list of the quality bars and whether each passes."""
    lines = ["| quality bar | measured | pass |", "|---|---|---|"]
    for c in bars["checks"]:
        verdict = "yes" if c["pass"] else "**no**"
        shown = _bar_value(c)
        if shown == "–":
            shown = "not measurable (outside the compared curve's bpp range, inconclusive)"
        lines.append(f"| {c['check']} | {shown} | {verdict} |")
    return "\n".join(lines)


def write_manifest(rows: dict[str, dict[str, Any]], bars: dict[str, Any], path: Path) -> None:
    """``data/models/manifest.json``: every checkpoint's provenance and Kodak numbers."""
    from .. import __version__
    from ..io import atomic_write_json, sha256_file
    from .models import MODELS_DIR, shipped_models

    models = {}
    for name, entry in shipped_models().items():
        meta = next(r["meta"] for r in rows.values() if r["model"] == name)
        kodak = {
            (k.split("@")[1] if "@" in k else "default"): {
                f: rows[k][f]
                for f in (
                    "bpp",
                    "psnr",
                    "ms_ssim",
                    "jpeg2000_psnr",
                    "gap_to_published_hyperprior_db",
                    "gap_to_jpeg2000_db",
                    "gap_to_fixed_rate_db",
                    "ms_ssim_minus_mse_curve",
                    "n_images",
                )
            }
            for k in rows
            if rows[k]["model"] == name
        }
        keep = (
            "architecture",
            "N",
            "M",
            "metric",
            "lmbda",
            "lmbda_min",
            "lmbda_max",
            "steps",
            "wall_time_s",
            "hardware",
            "training_data",
            "n_training_images",
            "init_from",
            "final_val_loss",
            "final_val_bpp",
            "final_val_psnr",
            "val_data",
            "sparsity",
            "batch_size",
            "crop",
            "seed",
            "stopped_by_time_budget",
            "continued_from",
        )
        models[name] = {
            "file": entry["file"],
            "sha256": sha256_file(MODELS_DIR / entry["file"]),
            "bytes": (MODELS_DIR / entry["file"]).stat().st_size,
            **{k: meta.get(k) for k in keep if k in meta},
            "kodak_real_coding": kodak,
        }
    atomic_write_json(
        path,
        {
            "generated_by": f"nicspec models report (nicspec {__version__})",
            "models": models,
            "quality_bars": bars,
        },
    )


def plot_training_curves(logs_dir: Path, out: Path) -> Path | None:
    """Loss and validation PSNR against step for every training log in ``logs_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = sorted(logs_dir.glob("*.csv"))
    if not logs:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for log in logs:
        with log.open(newline="") as f:
            rows = list(csv.DictReader(f))
        train = [r for r in rows if r.get("loss")]
        val = [r for r in rows if r.get("val_psnr")]
        steps = [int(r["step"]) for r in train]
        axes[0].plot(steps, [float(r["loss"]) for r in train], label=log.stem)
        axes[1].plot(steps, [float(r["bpp"]) for r in train], label=log.stem)
        axes[2].plot(
            [int(r["step"]) for r in val], [float(r["val_psnr"]) for r in val], "o-", label=log.stem
        )
    axes[0].set(xlabel="step", ylabel="training loss (batch)", yscale="log", title="loss")
    axes[1].set(xlabel="step", ylabel="bpp (batch)", title="rate")
    axes[2].set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR (CID22 val)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _rd_group(meta: dict[str, Any]) -> str:
    """The curve a benchmark row belongs to in the RD figure (its label there)."""
    if meta["architecture"].endswith("vr"):
        return "variable-rate"
    if "sparsity" in meta and meta["sparsity"]:
        return "pruned 95%"
    if meta["architecture"] == "elic":
        return f"ELIC {meta['metric']}"
    return f"fixed-rate {meta['metric']}"


def _rd_colour(group: str) -> str:
    """The book's colour (:func:`labels.colour`) of a figure group: the NIC curve's hue."""
    from ..labels import CURVE_LADDER, CURVE_MSSSIM, CURVE_PRUNED, CURVE_VR, colour

    curve = {"variable-rate": CURVE_VR, "pruned 95%": CURVE_PRUNED,
             "fixed-rate ms-ssim": CURVE_MSSSIM, "fixed-rate mse": CURVE_LADDER}  # fmt: skip
    return colour(curve.get(group, "elic" if group.startswith("ELIC") else group))


def plot_rd(rows: dict[str, dict[str, Any]], out: Path) -> Path:
    """Kodak RD plot (:func:`rd_figure`) saved to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = rd_figure(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def rd_figure(rows: dict[str, dict[str, Any]]) -> Any:
    """Kodak RD figure: the family, our JPEG2000 points and CompressAI's published curves, each
    in the colour the book's chapters give it (:mod:`labels`)."""
    import matplotlib.pyplot as plt

    from ..labels import colour
    from .reference import published_curve

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in ("bmshj2018-hyperprior", "jpeg2000", "vtm", "bpg"):
        c = published_curve(name)
        mask = c.bpp <= 1.3
        kw = {"alpha": 0.7, "label": c.name, "color": colour(name.replace("-", " "))}
        axes[0].plot(c.bpp[mask], c.psnr[mask], "--", **kw)
        axes[1].plot(c.bpp[mask], c.ms_ssim[mask], "--", **kw)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows.values():
        groups.setdefault(_rd_group(r["meta"]), []).append(r)
    for group, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["bpp"])
        for ax, f in ((axes[0], "psnr"), (axes[1], "ms_ssim")):
            ax.plot([r["bpp"] for r in rs], [r[f] for r in rs], "o-", label=f"ours: {group}",
                    color=_rd_colour(group))  # fmt: skip
    j2k = sorted(rows.values(), key=lambda r: r["bpp"])
    axes[0].plot(
        [r["bpp"] for r in j2k],
        [r["jpeg2000_psnr"] for r in j2k],
        ".",
        color=colour("jpeg2000"),
        label="ours: JPEG2000 (OpenJPEG)",
    )
    axes[0].set(xlabel="bpp", ylabel="PSNR (dB)", title="Kodak, real entropy coding")
    axes[1].set(xlabel="bpp", ylabel="MS-SSIM", title="Kodak")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def rows_from_manifest(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The benchmark rows :func:`plot_rd` draws, read back from a manifest that
    :func:`write_manifest` wrote (each model's metadata and its Kodak numbers per setting)."""
    rows: dict[str, dict[str, Any]] = {}
    for name, entry in (manifest.get("models") or {}).items():
        for setting, m in (entry.get("kodak_real_coding") or {}).items():
            if m.get("bpp") is None or m.get("jpeg2000_psnr") is None:
                continue
            key = name if setting == "default" else f"{name}@{setting}"
            rows[key] = {"model": name, "meta": entry, **m}
    return rows


def replot(manifest: Path | None = None, out: Path | None = None) -> Path:
    """Redraw the Kodak RD figure from the manifest alone (no benchmark): after a change of
    the figure's style, or of the book's colours."""
    import json

    from ..errors import DataError
    from .models import MODELS_DIR, manifest_path

    path = manifest or manifest_path()
    if not path.exists():
        raise DataError(f"{path} does not exist: run `nicspec models report` first")
    rows = rows_from_manifest(json.loads(path.read_text()))
    if not rows:
        raise DataError(f"{path} holds no Kodak numbers to draw")
    return plot_rd(rows, out or MODELS_DIR / "figures" / "kodak-rd.png")


def replace_between_marks(text: str, mark: str, content: str) -> str:
    """Put ``content`` after ``mark``, up to the next blank-line-separated ``<!-- END -->``."""
    end = "<!-- END -->"
    if mark not in text:
        return text
    head, rest = text.split(mark, 1)
    tail = rest.split(end, 1)[1] if end in rest else rest.split("\n\n", 1)[-1]
    return f"{head}{mark}\n{content}\n{end}{tail}"


def report(
    limit: int | None = None,
    progress: bool = True,
    readme: Path | None = None,
    candidates: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Benchmark the family; on the full Kodak set of the shipped files also write the
    manifest, figures and tables (a partial or a candidates' benchmark writes nothing)."""
    from ..io import atomic_write_bytes
    from .models import MODELS_DIR, manifest_path

    rows = benchmark(limit=limit, progress=progress, candidates=candidates)
    if not rows:
        raise UsageError("no shipped models in data/models: train some (nicspec train --missing)")
    bars = quality_bars(rows)
    tables = models_table(rows) + "\n\n" + checks_table(bars)
    if limit is not None or candidates:  # never overwrites the shipped record
        return {"rows": rows, "bars": bars, "table": tables}
    write_manifest(rows, bars, manifest_path())
    plot_rd(rows, MODELS_DIR / "figures" / "kodak-rd.png")
    plot_training_curves(MODELS_DIR / "logs", MODELS_DIR / "figures" / "training-curves.png")
    for doc in (MODELS_DIR / "MODEL_CARD.md", readme):
        if doc is not None and doc.exists():
            text = replace_between_marks(doc.read_text(), README_MARK, tables)
            atomic_write_bytes(doc, text.encode())
    return {"rows": rows, "bars": bars, "table": tables}


def shipped_bars() -> list[dict[str, Any]]:
    """The quality bars recorded in the shipped manifest (empty without one)."""
    from .models import read_manifest

    return list(read_manifest().get("quality_bars", {}).get("checks", []))


def bar_changes(checks: list[dict[str, Any]], before: list[dict[str, Any]]) -> str:
    """One line per bar whose value or verdict differs from ``before`` (the shipped record)."""

    def shown(c: dict[str, Any]) -> str:
        return f"{_bar_value(c)} ({'pass' if c['pass'] else 'fail'})"

    was = {c["check"]: c for c in before}
    lines = []
    for c in checks:
        old = was.get(c["check"])
        if old is None or shown(old) != shown(c):
            then = "new" if old is None else shown(old)
            flip = "" if old is None or old["pass"] == c["pass"] else "  <- verdict changes"
            lines.append(f"  {c['check']}: {then} -> {shown(c)}{flip}")
    if not lines:
        return "against the shipped manifest: no bar changes"
    return "against the shipped manifest:\n" + "\n".join(lines)


def ship(checkpoint: Path, log: Path | None = None, replace: bool = False) -> Path:
    """Put a continued checkpoint in ``data/models`` in place of its namesake and extend the
    shipped training log with the continuation's rows; return the shipped path.

    Only a continuation of the file now shipped is accepted (its ``continued_from.sha256``), so
    an older branch cannot silently replace newer work; ``replace`` lifts that check. ``log``
    defaults to ``<runs>/<name>/log.csv`` beside ``<runs>/models/<name>.safetensors``.
    Afterwards ``nicspec models report`` re-measures the family and rewrites the manifest.
    """
    from ..io import atomic_path, sha256_file
    from .models import MODELS_DIR, load_checkpoint, read_checkpoint_meta
    from .train import read_log, write_log

    checkpoint = Path(checkpoint)
    (name,) = candidate_names([checkpoint])
    target = MODELS_DIR / f"{name}.safetensors"
    meta = read_checkpoint_meta(checkpoint)
    start = meta.get("continued_from") or {}
    if not replace and start.get("sha256") != sha256_file(target):
        raise UsageError(
            f"{checkpoint} does not continue the shipped {name} (it started from "
            f"{start.get('sha256') or 'another model'}); pass --replace to ship it anyway"
        )
    load_checkpoint(checkpoint)  # refuses a corrupt file or a wrong architecture, before writing
    log = log or checkpoint.parent.parent / name / "log.csv"
    if not log.exists():
        raise UsageError(f"no training log at {log}; name the run's log.csv with --log")
    shipped_log, start_step = MODELS_DIR / "logs" / f"{name}.csv", int(start.get("steps", 0))
    earlier = read_log(shipped_log, start_step) if not replace else []
    later = [r for r in read_log(log) if int(r["step"]) > start_step]
    before = read_checkpoint_meta(target).get("continued_from")
    with atomic_path(target) as tmp:
        if replace or "continued_from" in start or not before:
            tmp.write_bytes(checkpoint.read_bytes())
        else:  # trained before chains were kept: record the shipped file's own history too
            from safetensors.torch import load_file, save_file

            meta["continued_from"] = {**start, "continued_from": before}
            save_file(load_file(str(checkpoint)), str(tmp), {"nicspec": json.dumps(meta)})
    write_log(shipped_log, earlier + later)
    return target
