"""Training of the NIC family from recipes (``data/models/recipes.yaml``): ``nicspec train``.

Loss: ``lambda * 255^2 * MSE + bpp`` or ``lambda * (1 - MS-SSIM) + bpp``; Adam for the
networks, a second Adam for the entropy bottleneck's quantiles (aux loss), gradient-norm clip.
Variable-rate models draw each image's lambda log-uniformly; pruned models follow the cubic
gradual-magnitude schedule (Zhu & Gupta 2017) with one global threshold. Runs are seeded and
resume exactly from ``runs/<recipe>/last.pt`` (step-based runs; a ``--time-budget`` run's
schedule follows the clock, so its resumption is not bit-exact).
"""

from __future__ import annotations

import csv
import math
import os
import platform
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import DataError, Interrupted, UsageError

RECIPES_FILE = Path(__file__).resolve().parents[2] / "data" / "models" / "recipes.yaml"
LOG_FIELDS = (
    "step",
    "elapsed_s",
    "lr",
    "loss",
    "bpp",
    "mse",
    "psnr",
    "ms_ssim",
    "aux_loss",
    "sparsity",
    "val_loss",
    "val_bpp",
    "val_psnr",
)


# ------------------------------------------------------------------------------------------
# recipes
@dataclass(frozen=True)
class Recipe:
    """One model's training configuration (defaults merged in)."""

    name: str
    params: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    @property
    def variable_rate(self) -> bool:
        return self.params["architecture"] == "scale-hyperprior-vr"


def load_recipes(path: Path = RECIPES_FILE) -> dict[str, Recipe]:
    """All recipes of the recipes file, defaults merged."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read recipes {path}: {exc}") from None
    defaults = raw.get("defaults", {})
    return {
        name: Recipe(name, {**defaults, **(entry or {})})
        for name, entry in raw.get("recipes", {}).items()
    }


def get_recipe(name: str, path: Path = RECIPES_FILE) -> Recipe:
    """One recipe by name."""
    recipes = load_recipes(path)
    if name not in recipes:
        raise UsageError(f"unknown recipe {name!r}; choose from {', '.join(recipes)}")
    return recipes[name]


FAMILIES = ("sh", "elic")


def family_recipes(family: str, path: Path = RECIPES_FILE) -> tuple[list[str], list[str]]:
    """The recipes a GPU script trains for ``family``: its base models (trained from scratch)
    and the rest (each starts from a base). ``sh``: the shipped scale-hyperprior family;
    ``elic``: every ELIC recipe (none is shipped)."""
    recipes = load_recipes(path)
    if family == "sh":
        members = [n for n, r in recipes.items() if r.get("ship")]
    elif family == "elic":
        members = [n for n, r in recipes.items() if r["architecture"] == "elic"]
    else:
        raise UsageError(f"unknown model family {family!r}; choose from {', '.join(FAMILIES)}")
    bases = [n for n in members if not recipes[n].get("init_from")]
    return bases, [n for n in members if n not in bases]


# ------------------------------------------------------------------------------------------
# data
class CropSampler:
    """Random crops (with horizontal flips) from images held in memory on the training device."""

    def __init__(self, images: list[Any], crop: int, device: str, seed: int) -> None:
        import torch

        self.images = [im for im in images if min(im.shape[1:]) >= crop]
        if not self.images:
            raise DataError(f"no training image is at least {crop} px a side")
        self.crop = crop
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, batch_size: int) -> Any:
        """A float batch (B, 3, crop, crop) in [0, 1]."""
        import torch

        g, c = self.generator, self.crop
        idx = torch.randint(len(self.images), (batch_size,), generator=g).tolist()
        rand = torch.rand(batch_size, 3, generator=g).tolist()
        crops = []
        for i, (ry, rx, rf) in zip(idx, rand, strict=True):
            im = self.images[i]
            top = int(ry * (im.shape[1] - c + 1))
            left = int(rx * (im.shape[2] - c + 1))
            patch = im[:, top : top + c, left : left + c]
            crops.append(patch.flip(-1) if rf < 0.5 else patch)
        return torch.stack(crops).float().div_(255.0)


def load_images_to_device(dataset_names: list[str], device: str) -> tuple[list[Any], int]:
    """Read every image of the named datasets as uint8 CxHxW tensors on ``device``."""
    import torch

    from ..data import get_dataset

    images = []
    for name in dataset_names:
        ds = get_dataset(name)
        for image_id in ds.image_ids:
            arr = ds.load(image_id)
            images.append(torch.from_numpy(arr).permute(2, 0, 1).contiguous().to(device))
    return images, len(images)


# ------------------------------------------------------------------------------------------
# losses and schedules
def rate_distortion(
    model: Any, x: Any, lmbda: Any, metric: str, variable_rate: bool
) -> dict[str, Any]:
    """Per-batch loss terms; ``lmbda`` is a float or a (B,) tensor."""
    import torch
    from pytorch_msssim import ms_ssim

    out = model(x, lmbda=lmbda) if variable_rate else model(x)
    n, _, h, w = x.shape
    bits = sum(
        (-torch.log2(lik.clamp_min(1e-9))).flatten(1).sum(1) for lik in out["likelihoods"].values()
    )
    bpp = bits / (h * w)
    x_hat = out["x_hat"]
    mse = (x_hat - x).pow(2).flatten(1).mean(1)
    lm = torch.as_tensor(lmbda, device=x.device, dtype=x.dtype).expand(n)
    if metric == "mse":
        dist = lm * 255**2 * mse
        msssim = None
    elif metric == "ms-ssim":
        msssim = ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0, size_average=False)
        dist = lm * (1 - msssim)
    else:
        raise UsageError(f"unknown metric {metric!r}; use mse or ms-ssim")
    loss = (dist + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(), "ms_ssim": msssim}


def lr_at(recipe: Recipe, progress: float, step: int = 10**9) -> float:
    """Learning rate: linear warm-up over ``warmup_steps``, then step decay at milestones."""
    lr = float(recipe["lr"])
    warmup = int(recipe.get("warmup_steps") or 0)
    if step < warmup:
        lr *= (step + 1) / warmup
    for milestone in recipe.get("lr_milestones") or []:
        if progress >= float(milestone):
            lr *= float(recipe.get("lr_gamma", 0.1))
    return lr


def cubic_sparsity(progress: float, final: float, start: float, end: float) -> float:
    """Zhu & Gupta's schedule s(t) = s_f + (s_0 - s_f)(1 - (t - t0)/(t1 - t0))^3, with s_0 = 0."""
    if progress <= start:
        return 0.0
    if progress >= end:
        return final
    return final * (1 - (1 - (progress - start) / (end - start)) ** 3)


class GlobalMagnitudePruner:
    """Masks the smallest-magnitude conv/deconv weights, one threshold over all layers."""

    def __init__(self, model: Any) -> None:
        from .models import transform_weights

        self.weights = transform_weights(model)
        self.masks = {k: w.new_ones(w.shape, dtype=w.dtype) for k, w in self.weights.items()}

    def prune_to(self, target: float) -> None:
        import torch

        # magnitudes of the masked weights: a pruned weight stays pruned (the optimiser moves it
        # between prunings, and a continued checkpoint must not regrow what was removed)
        mags = {k: (w.detach() * self.masks[k]).abs() for k, w in self.weights.items()}
        flat = torch.cat([m.flatten() for m in mags.values()])
        k = math.ceil(target * flat.numel())  # at least the target fraction
        if k < 1:
            return
        threshold = torch.kthvalue(flat.cpu(), k).values.to(flat.device)
        for key, m in mags.items():
            self.masks[key] = (m > threshold).to(m.dtype)
        self.apply()

    def below_target(self, target: float) -> bool:
        """Fewer weights masked than ``ceil(target * n)`` (exact integer counts, no tolerance)."""
        total = sum(m.numel() for m in self.masks.values())
        masked = sum(int((m == 0).sum()) for m in self.masks.values())
        return masked < math.ceil(target * total)

    def mask_sparsity(self) -> float:
        """Fraction of masked-out weights."""
        total = sum(m.numel() for m in self.masks.values())
        return 1 - sum(float(m.sum()) for m in self.masks.values()) / total

    def apply(self) -> None:
        import torch

        with torch.no_grad():
            for key, w in self.weights.items():
                w.mul_(self.masks[key])


# ------------------------------------------------------------------------------------------
# the loop
def _hardware(device: str) -> str:
    import torch

    version = f"torch {torch.__version__}"
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}), {version}"
    return f"CPU {platform.processor() or platform.machine()} x{os.cpu_count()}, {version}"


def _build(recipe: Recipe) -> Any:
    from .models import build_model

    return build_model(
        recipe["architecture"],
        int(recipe["N"]),
        int(recipe["M"]),
        recipe.get("lmbda_min"),
        recipe.get("lmbda_max"),
    )


RUN_STATE_KEYS = (
    "model",
    "optimizer",
    "aux_optimizer",
    "sampler_rng",
    "lmbda_rng",
    "torch_rng",
    "step",
    "elapsed_s",
)


def load_run_state(path: Path, device: str = "cpu", keys: tuple[str, ...] = RUN_STATE_KEYS) -> Any:
    """A resumable training state (``last.pt``), loaded without unpickling code; DataError in
    one line for a file that is not one (or whose weights are not finite)."""
    import torch

    advice = "move it away to start the run afresh"
    try:
        with warnings.catch_warnings():  # torch warns about what it then refuses
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"training state not found: {path}") from None
    except Exception as exc:  # pickle, zip and torch errors come in many types
        raise DataError(
            f"{path} is not a nicspec training state ({type(exc).__name__}); {advice}"
        ) from None
    lacking = [k for k in keys if k not in state] if isinstance(state, dict) else list(keys)
    model = state.get("model") if isinstance(state, dict) else None
    if lacking or not isinstance(model, dict):
        raise DataError(
            f"{path} is not a nicspec training state (it lacks {', '.join(lacking or ['model'])}); "
            f"{advice}"
        )
    if bad := [
        k
        for k, v in model.items()
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not v.isfinite().all()
    ]:
        raise DataError(f"{path}: {len(bad)} weight tensor(s) are NaN or infinite, e.g. {bad[:3]}")
    return state


def _initialise_from(
    model: Any, recipe: Recipe, runs_dir: Path, models_dir: Path, weights: Path | None = None
) -> tuple[str, dict[str, Any]]:
    """Copy weights from ``weights`` (a checkpoint file), or else from the recipe's ``init_from``
    run (fp32) or shipped checkpoint. Returns the origin and the source checkpoint's metadata."""
    import torch

    from .models import load_checkpoint

    meta: dict[str, Any] = {}
    if weights is not None:
        if not weights.is_file():
            raise DataError(f"--init-weights: no such checkpoint {weights}")
        source_model, meta = load_checkpoint(weights)
        elic = (meta.get("architecture") == "elic", recipe["architecture"] == "elic")
        if recipe.variable_rate != hasattr(source_model, "base") or elic[0] != elic[1]:
            raise DataError(
                f"--init-weights {weights}: a {meta.get('architecture')} checkpoint cannot start "
                f"recipe {recipe.name} ({recipe['architecture']})"
            )
        state, origin = source_model.state_dict(), str(weights)
    else:
        source = recipe["init_from"]
        run_state = runs_dir / source / "last.pt"
        if run_state.exists():
            state = load_run_state(run_state, "cpu", keys=("model",))["model"]
            origin = str(run_state)
        else:
            shipped = models_dir / f"{source}.safetensors"
            if not shipped.exists():
                raise DataError(
                    f"recipe {recipe.name} starts from {source}, which is not trained yet"
                )
            state = load_checkpoint(shipped)[0].state_dict()
            origin = str(shipped)
    target = model.base if recipe.variable_rate else model
    state = {k.removeprefix("base."): v for k, v in state.items()}
    state = {
        k: v
        for k, v in state.items()
        if not k.endswith(("_quantized_cdf", "_offset", "_cdf_length", "scale_table"))
    }
    nn_load = torch.nn.Module.load_state_dict  # not CompressAI's override (needs coder tables)
    nn_load(target, state, strict=False)
    return origin, meta


def validate(model: Any, recipe: Recipe, images: list[Any]) -> dict[str, float]:
    """Mean loss, bpp and PSNR on the validation images (eval-mode forward, whole images)."""
    import torch

    model.eval()
    lmbda = float(recipe.get("lmbda") or math.sqrt(recipe["lmbda_min"] * recipe["lmbda_max"]))
    totals = {"loss": 0.0, "bpp": 0.0, "psnr": 0.0}
    with torch.no_grad():
        for im in images:
            x = im.unsqueeze(0).float() / 255.0
            h, w = x.shape[-2:]
            x = x[..., : h - h % 64, : w - w % 64]
            terms = rate_distortion(model, x, lmbda, recipe["metric"], recipe.variable_rate)
            mse = float(terms["mse"].clamp_min(1e-12))
            totals["loss"] += float(terms["loss"])
            totals["bpp"] += float(terms["bpp"])
            totals["psnr"] += 10 * math.log10(1 / mse)
    model.train()
    return {k: v / len(images) for k, v in totals.items()}


def write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write a training log (CSV with :data:`LOG_FIELDS`) atomically."""
    from ..io import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def read_log(path: Path, up_to_step: int = 10**12) -> list[dict[str, Any]]:
    """The rows of a training log up to ``up_to_step`` (none if the file is absent)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= up_to_step]


@contextmanager
def _stop_requests() -> Iterator[list[str]]:
    """Catch SIGTERM and SIGINT while training: the names of those received, for the loop to
    stop at the end of its step (the previous handlers come back afterwards)."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)

    before = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def train(
    recipe: Recipe,
    device: str = "cpu",
    runs_dir: Path = Path("runs"),
    models_dir: Path | None = None,
    steps: int | None = None,
    time_budget_s: float | None = None,
    progress: bool = True,
    log_every: int = 100,
    init_weights: Path | None = None,
    checkpoint_every: int | None = None,
) -> Path:
    """Train (or resume) one recipe; write the shippable checkpoint; return its path.

    ``init_weights`` starts a fresh run from a checkpoint file instead of the recipe's
    ``init_from`` (e.g. to continue a shipped model: its steps and wall time are carried over).
    ``checkpoint_every`` overrides the recipe's interval between resumable states.
    ``time_budget_s`` ends the run after that much training time in all, resumed segments
    included; the learning-rate schedule then follows the clock. SIGTERM or
    Ctrl-C stops the run at the end of the current step, saves its state and raises
    :class:`Interrupted`; the same call then resumes it.
    """
    import torch
    from tqdm import tqdm

    from ..io import sha256_file
    from .models import MODELS_DIR, save_checkpoint, sparsity

    models_dir = models_dir or MODELS_DIR
    total_steps = int(steps or recipe["steps"])
    every = int(recipe["checkpoint_every"] if checkpoint_every is None else checkpoint_every)
    if every < 1:
        raise UsageError(f"the checkpoint interval must be at least 1 step, not {every}")
    run_dir = runs_dir / recipe.name
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path, log_path = run_dir / "last.pt", run_dir / "log.csv"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda asked for, but no CUDA device is available")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(int(recipe["seed"]))

    model = _build(recipe).to(device)
    # channels-last convolutions make a CPU step 1.19x faster (oneDNN), with the same fp32
    # arithmetic: scripts/bench_train_step.py, results in the README
    memory_format = torch.channels_last if device == "cpu" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    # a resume state that cannot be used fails here, before any image is loaded
    resume = load_run_state(state_path, device) if state_path.exists() else None

    def unusable(exc: Exception) -> DataError:
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        return DataError(
            f"{state_path} does not fit recipe {recipe.name} ({type(exc).__name__}: {first}); "
            "move it away to start the run afresh"
        )

    if resume is not None:
        try:
            model.load_state_dict(resume["model"])
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise unusable(exc) from None
    train_images, n_train = load_images_to_device(list(recipe["train_data"]), device)
    val_images, _ = load_images_to_device([recipe["val_data"]], device)
    sampler = CropSampler(train_images, int(recipe["crop"]), device, int(recipe["seed"]))
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    optimizer = torch.optim.Adam(main_params, lr=float(recipe["lr"]))
    aux_optimizer = torch.optim.Adam(aux_params, lr=float(recipe["aux_lr"]))
    prune = recipe.get("prune")
    pruner = GlobalMagnitudePruner(model) if prune else None
    lmbda_gen = torch.Generator().manual_seed(int(recipe["seed"]) + 1)

    step, elapsed_before, init_origin = 0, 0.0, None
    prior: dict[str, Any] = {}  # the continued checkpoint's own training (steps, wall time)
    if resume is not None:
        state = resume
        try:
            optimizer.load_state_dict(state["optimizer"])
            aux_optimizer.load_state_dict(state["aux_optimizer"])
            sampler.generator.set_state(state["sampler_rng"])
            lmbda_gen.set_state(state["lmbda_rng"])
            torch.set_rng_state(state["torch_rng"])
            if device.startswith("cuda") and "cuda_rng" in state:
                torch.cuda.set_rng_state(state["cuda_rng"].cpu())
            if pruner is not None:
                pruner.masks = {k: v.to(device) for k, v in state["masks"].items()}
            step, elapsed_before = int(state["step"]), float(state["elapsed_s"])
            init_origin = state.get("init_origin") or None
            prior = dict(state.get("prior") or {})
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise unusable(exc) from None
    elif init_weights is not None or recipe.get("init_from"):
        init_origin, source_meta = _initialise_from(
            model, recipe, runs_dir, models_dir, init_weights
        )
        if source_meta.get("name") == recipe.name:  # continuing this model: carry its history
            prior = {
                "steps": int(source_meta.get("steps") or 0),
                "wall_time_s": float(source_meta.get("wall_time_s") or 0.0),
                "hardware": source_meta.get("hardware"),
                "sha256": sha256_file(init_weights) if init_weights else None,
            }
            if source_meta.get("continued_from"):  # keep every earlier segment of the chain
                prior["continued_from"] = source_meta["continued_from"]
        if pruner is not None:  # an already-pruned start keeps its zeros masked from step 0
            pruner.masks = {k: (w.detach() != 0).to(w.dtype) for k, w in pruner.weights.items()}
    step0, wall0 = int(prior.get("steps", 0)), float(prior.get("wall_time_s", 0.0))
    rows = read_log(log_path, step0 + step)

    def save_state() -> None:
        from ..io import atomic_path

        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "aux_optimizer": aux_optimizer.state_dict(),
            "sampler_rng": sampler.generator.get_state(),
            "lmbda_rng": lmbda_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "elapsed_s": elapsed_before + (time.perf_counter() - t0),
            "init_origin": init_origin or "",
            "prior": prior,
        }
        if device.startswith("cuda"):
            state["cuda_rng"] = torch.cuda.get_rng_state()
        if pruner is not None:
            state["masks"] = pruner.masks
        with atomic_path(state_path) as tmp:
            torch.save(state, tmp)
        write_log(log_path, rows)

    with _stop_requests() as stop:
        t0 = time.perf_counter()
        model.train()
        bar = tqdm(total=total_steps, initial=step, desc=recipe.name, disable=not progress)
        metric, vr = recipe["metric"], recipe.variable_rate
        batch_size, clip = int(recipe["batch_size"]), float(recipe["clip_grad_norm"])
        stopped_by_budget = False
        while step < total_steps:
            elapsed = time.perf_counter() - t0
            if time_budget_s is not None and elapsed_before + elapsed >= time_budget_s:
                stopped_by_budget = True
                break
            progress_frac = step / total_steps
            if time_budget_s is not None:
                progress_frac = max(progress_frac, (elapsed_before + elapsed) / time_budget_s)
            lr = lr_at(recipe, progress_frac, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = sampler.sample(batch_size).contiguous(memory_format=memory_format)
            if vr:
                lo, hi = math.log(recipe["lmbda_min"]), math.log(recipe["lmbda_max"])
                lmbda = torch.exp(lo + (hi - lo) * torch.rand(batch_size, generator=lmbda_gen))
                lmbda = lmbda.to(device)
            else:
                lmbda = float(recipe["lmbda"])  # type: ignore[assignment]
            terms = rate_distortion(model, x, lmbda, metric, vr)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(main_params, clip)
            optimizer.step()
            aux_loss = model.aux_loss()
            aux_optimizer.zero_grad(set_to_none=True)
            aux_loss.backward()
            aux_optimizer.step()
            if pruner is not None:
                if step % int(prune.get("every", 100)) == 0:
                    final = float(prune["final_sparsity"])
                    target = cubic_sparsity(progress_frac, final, prune["start"], prune["end"])
                    if progress_frac <= prune["end"] or pruner.below_target(final):
                        pruner.prune_to(target)
                pruner.apply()
            step += 1
            bar.update(1)
            last = step == total_steps
            if step % log_every == 0 or last:
                terms = {k: None if v is None else v.detach() for k, v in terms.items()}
                if not math.isfinite(float(terms["loss"])):  # checked when logging: avoids a sync
                    raise DataError(
                        f"{recipe.name}: the loss is {float(terms['loss'])} at step {step}"
                    )
                mse = float(terms["mse"])
                row = {
                    "step": step0 + step,
                    "elapsed_s": round(wall0 + elapsed_before + time.perf_counter() - t0, 2),
                    "lr": lr,
                    "loss": float(terms["loss"]),
                    "bpp": float(terms["bpp"]),
                    "mse": mse,
                    "psnr": 10 * math.log10(1 / max(mse, 1e-12)),
                    "ms_ssim": "" if terms["ms_ssim"] is None else float(terms["ms_ssim"].mean()),
                    "aux_loss": float(aux_loss.detach()),
                    "sparsity": sparsity(model) if pruner is not None else "",
                }
                if step % int(recipe["val_every"]) == 0 or last:
                    val = validate(model, recipe, val_images)
                    row |= {"val_loss": val["loss"], "val_bpp": val["bpp"], "val_psnr": val["psnr"]}
                rows.append(row)
                bar.set_postfix(
                    loss=f"{row['loss']:.3f}", bpp=f"{row['bpp']:.3f}", psnr=f"{row['psnr']:.2f}"
                )
            if stop:
                save_state()
                raise Interrupted(
                    f"{recipe.name}: stopped by {stop[0]} at step {step0 + step}; its state is in "
                    f"{state_path}: run the same command again to resume"
                )
            if step % every == 0:
                save_state()
        bar.close()
    val = validate(model, recipe, val_images)
    if not rows or int(rows[-1]["step"]) != step0 + step:
        wall_now = round(wall0 + elapsed_before + time.perf_counter() - t0, 2)
        rows.append(
            {"step": step0 + step, "elapsed_s": wall_now, "val_loss": val["loss"]}
            | {"val_bpp": val["bpp"], "val_psnr": val["psnr"]}
        )
    save_state()
    wall = elapsed_before + time.perf_counter() - t0
    meta = {
        "name": recipe.name,
        "architecture": recipe["architecture"],
        "N": int(recipe["N"]),
        "M": int(recipe["M"]),
        "metric": metric,
        "lmbda": recipe.get("lmbda"),
        "lmbda_min": recipe.get("lmbda_min"),
        "lmbda_max": recipe.get("lmbda_max"),
        "steps": step0 + step,
        "planned_steps": step0 + total_steps,
        "stopped_by_time_budget": stopped_by_budget,
        "batch_size": batch_size,
        "crop": int(recipe["crop"]),
        "wall_time_s": round(wall0 + wall, 1),
        "hardware": _hardware(device),
        "training_data": list(recipe["train_data"]),
        "n_training_images": n_train,
        "init_from": recipe.get("init_from"),
        "init_weights": init_origin if init_weights is not None else None,
        "continued_from": prior or None,
        "final_val_loss": val["loss"],
        "final_val_bpp": val["bpp"],
        "final_val_psnr": val["psnr"],
        "val_data": recipe["val_data"],
        "seed": int(recipe["seed"]),
        "recipe": recipe.params,
    }
    if pruner is not None:
        meta["sparsity"] = sparsity(model)
    out = models_dir / f"{recipe.name}.safetensors"
    save_checkpoint(model, out, meta)
    return out


# ------------------------------------------------------------------------------------------
# CLI
def _sources_first(names: list[str], recipes: dict[str, Recipe]) -> list[str]:
    """Order recipes so that each comes after the recipe it is initialised from."""
    ordered: list[str] = []

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in ordered or name not in names:
            return
        if name in seen:
            raise UsageError(f"recipes form a cycle through init_from: {' -> '.join(seen)}")
        source = recipes[name].get("init_from")
        if source:
            visit(source, (*seen, name))
        ordered.append(name)

    for name in names:
        visit(name, ())
    return ordered
