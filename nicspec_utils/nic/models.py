"""NIC architectures (CompressAI's scale hyperprior, a FiLM-conditioned variable-rate variant, and
ELIC) and checkpoint files (safetensors: never unpickled).

``elic`` is CompressAI's ``Elic2022Official`` (He et al. 2022: residual and attention transforms,
five uneven channel groups with a checkerboard spatial context and a channel context; the paper
uses N=192, M=320). Its channel groups are ``elic_groups(M)``: ELIC's 16, 16, 32, 64, 192 at
M=320, scaled with M for smaller models. Like the hyperprior it downsamples by 16 to the latent
and 64 to the hyper-latent, so the codecs' padding to a multiple of 64 serves it too.

A shipped checkpoint stores conv/deconv kernels in float16 and every other tensor in float32;
entropy-coder tables are rebuilt on load with ``model.update(force=True)``.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import DataError, UsageError

MODELS_DIR = Path(__file__).resolve().parents[2] / "data" / "models"
ARCHITECTURES = ("scale-hyperprior", "scale-hyperprior-vr", "elic")
# The last analysis conv (the one that outputs M channels) of each architecture, for shape checks.
_LAST_ANALYSIS = {
    "scale-hyperprior": "g_a.6.weight",
    "scale-hyperprior-vr": "base.g_a.6.weight",
    "elic": "g_a.13.weight",
}
# Sanity bounds on a checkpoint's channel counts (the paper's largest models use 320).
MAX_CHANNELS = 1024
# Buffers that compressai rebuilds from the weights in ``update()``; not stored.
DERIVED_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


class FiLM(nn.Module):
    """Feature-wise affine modulation of a C-channel feature map by a scalar condition."""

    def __init__(self, channels: int, hidden: int = 64) -> None:
        super().__init__()
        last = nn.Linear(hidden, 2 * channels)
        nn.init.zeros_(last.weight)  # identity at initialisation
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), last)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.net(cond).chunk(2, dim=1)
        return x * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


def _scale_hyperprior_class() -> type:
    from compressai.models import ScaleHyperprior

    return ScaleHyperprior


def elic_groups(M: int) -> list[int]:
    """ELIC's uneven channel groups for M latent channels: M/20, M/20, M/10, M/5 and the rest
    (16, 16, 32, 64, 192 at the paper's M=320)."""
    unit = M // 20
    if unit < 1:
        raise UsageError(f"elic needs M >= 20 latent channels (five channel groups), not {M}")
    return [unit, unit, 2 * unit, 4 * unit, M - 8 * unit]


def _elic(N: int, M: int) -> nn.Module:
    from compressai.models import Elic2022Official

    if N % 2:
        raise UsageError(f"elic needs an even N (its attention blocks halve it), not {N}")
    return Elic2022Official(N=N, M=M, groups=elic_groups(M))


class VariableRateScaleHyperprior(nn.Module):
    """Scale hyperprior whose every conv/deconv output is FiLM-modulated by log(lambda).

    The layer names of the four transforms match CompressAI's ``ScaleHyperprior``, so a
    fixed-rate checkpoint initialises it (the FiLM blocks start as the identity).
    """

    TRANSFORMS = ("g_a", "g_s", "h_a", "h_s")

    def __init__(
        self, N: int, M: int, lmbda_min: float, lmbda_max: float, film_hidden: int = 64
    ) -> None:
        super().__init__()
        base = _scale_hyperprior_class()(N, M)
        self.base = base
        self.N, self.M = N, M
        self.lmbda_min, self.lmbda_max = float(lmbda_min), float(lmbda_max)
        self.film = nn.ModuleDict()
        for name in self.TRANSFORMS:
            seq = getattr(base, name)
            blocks = {
                str(i): FiLM(layer.out_channels, film_hidden)
                for i, layer in enumerate(seq)
                if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d)
            }
            self.film[name] = nn.ModuleDict(blocks)
        self._cond: torch.Tensor | None = None

    # conditioning -------------------------------------------------------------------------
    def condition(self, lmbda: torch.Tensor | float) -> torch.Tensor:
        """Map lambda (scalar or per-image) to the FiLM input in [-1, 1]."""
        lm = torch.as_tensor(lmbda, dtype=torch.float32, device=self._device()).reshape(-1, 1)
        lo, hi = math.log(self.lmbda_min), math.log(self.lmbda_max)
        return 2 * (lm.log() - lo) / (hi - lo) - 1

    def set_lmbda(self, lmbda: float) -> None:
        """Fix the rate for ``compress``/``decompress``/``forward`` without an explicit lambda."""
        if not self.lmbda_min <= lmbda <= self.lmbda_max:
            raise UsageError(
                f"lambda {lmbda} is outside the model's range [{self.lmbda_min}, {self.lmbda_max}]"
            )
        self._cond = self.condition(lmbda)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _run(self, name: str, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        films: nn.ModuleDict = self.film[name]  # type: ignore[assignment]
        for i, layer in enumerate(getattr(self.base, name)):
            x = layer(x)
            if str(i) in films:
                c = cond if cond.shape[0] == x.shape[0] else cond.expand(x.shape[0], -1)
                x = films[str(i)](x, c)
        return x

    def _cond_for(self, lmbda: torch.Tensor | float | None) -> torch.Tensor:
        if lmbda is not None:
            return self.condition(lmbda)
        if self._cond is None:
            raise UsageError("variable-rate model: set a lambda first (set_lmbda / --lmbda)")
        return self._cond

    # CompressionModel-like API -----------------------------------------------------------
    @property
    def entropy_bottleneck(self) -> nn.Module:
        return self.base.entropy_bottleneck

    @property
    def gaussian_conditional(self) -> nn.Module:
        return self.base.gaussian_conditional

    @property
    def downsampling_factor(self) -> int:
        return 64

    def forward(self, x: torch.Tensor, lmbda: torch.Tensor | float | None = None) -> dict:
        cond = self._cond_for(lmbda)
        y = self._run("g_a", x, cond)
        z = self._run("h_a", torch.abs(y), cond)
        z_hat, z_likelihoods = self.base.entropy_bottleneck(z)
        scales_hat = self._run("h_s", z_hat, cond)
        y_hat, y_likelihoods = self.base.gaussian_conditional(y, scales_hat)
        x_hat = self._run("g_s", y_hat, cond)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def compress(self, x: torch.Tensor) -> dict:
        cond = self._cond_for(None)
        y = self._run("g_a", x, cond)
        z = self._run("h_a", torch.abs(y), cond)
        z_strings = self.base.entropy_bottleneck.compress(z)
        z_hat = self.base.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        scales_hat = self._run("h_s", z_hat, cond)
        indexes = self.base.gaussian_conditional.build_indexes(scales_hat)
        y_strings = self.base.gaussian_conditional.compress(y, indexes)
        return {"strings": [y_strings, z_strings], "shape": z.size()[-2:]}

    def decompress(self, strings: list, shape: Any) -> dict:
        cond = self._cond_for(None)
        z_hat = self.base.entropy_bottleneck.decompress(strings[1], shape)
        scales_hat = self._run("h_s", z_hat, cond)
        indexes = self.base.gaussian_conditional.build_indexes(scales_hat)
        y_hat = self.base.gaussian_conditional.decompress(strings[0], indexes, z_hat.dtype)
        x_hat = self._run("g_s", y_hat, cond).clamp_(0, 1)
        return {"x_hat": x_hat}

    def aux_loss(self) -> torch.Tensor:
        return self.base.aux_loss()

    def update(self, scale_table: Any = None, force: bool = False) -> bool:
        return self.base.update(scale_table=scale_table, force=force)


def build_model(
    architecture: str,
    N: int,
    M: int,
    lmbda_min: float | None = None,
    lmbda_max: float | None = None,
) -> nn.Module:
    """A freshly initialised model of a named architecture (one-line UsageError for sizes it
    cannot take)."""
    if architecture == "scale-hyperprior":
        return _scale_hyperprior_class()(N, M)
    if architecture == "scale-hyperprior-vr":
        if lmbda_min is None or lmbda_max is None:
            raise UsageError("scale-hyperprior-vr needs lmbda_min and lmbda_max")
        return VariableRateScaleHyperprior(N, M, lmbda_min, lmbda_max)
    if architecture == "elic":
        return _elic(N, M)
    raise UsageError(
        f"unknown architecture {architecture!r}; choose from {', '.join(ARCHITECTURES)}"
    )


def transform_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The conv/deconv kernels of the analysis/synthesis transforms (what pruning counts)."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            out[f"{name}.weight"] = module.weight
    return out


def sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero conv/deconv weights."""
    weights = transform_weights(model).values()
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / max(total, 1)


def _storable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    conv_keys = set(transform_weights(model))
    state = {}
    for key, value in model.state_dict().items():
        if key.rsplit(".", 1)[-1] in DERIVED_BUFFERS:
            continue
        value = value.detach().cpu()
        if key in conv_keys:
            value = value.to(torch.float16)
        elif value.is_floating_point():
            value = value.to(torch.float32)
        state[key] = value.contiguous()
    return state


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict[str, Any]) -> None:
    """Write a shippable safetensors checkpoint (atomically) with its metadata."""
    from safetensors.torch import save_file

    from ..io import atomic_path

    required = {"architecture", "N", "M"}
    if missing := required - set(meta):
        raise ValueError(f"checkpoint metadata lacks {sorted(missing)}")
    with atomic_path(path) as tmp:
        save_file(_storable_state(model), str(tmp), metadata={"nicspec": json.dumps(meta)})


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint file, without loading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("nicspec")
    except FileNotFoundError:
        raise DataError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise DataError(f"cannot read checkpoint {path}: {exc}") from None
    if raw is None:
        raise DataError(f"{path} is not a nicspec checkpoint (no 'nicspec' metadata)")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise DataError(f"{path}: its 'nicspec' metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: its 'nicspec' metadata is not a JSON object")
    return meta


def _channels(meta: dict[str, Any], key: str, path: str | Path) -> int:
    """A channel count from checkpoint metadata: an integer in 1..MAX_CHANNELS."""
    value = meta[key]
    number = 0
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, int | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            number = int(value)
    if not 1 <= number <= MAX_CHANNELS:
        raise DataError(
            f"{path}: bad checkpoint metadata ({key}={value!r:.40}; "
            f"a channel count must be an integer in 1..{MAX_CHANNELS})"
        )
    return number


def _lmbda_range(meta: dict[str, Any], path: str | Path) -> tuple[float | None, float | None]:
    """The variable-rate model's lambda range: finite, positive, ordered (None when absent)."""
    lo, hi = meta.get("lmbda_min"), meta.get("lmbda_max")
    if lo is None and hi is None:
        return None, None
    try:
        lo_f, hi_f = float(lo), float(hi)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        lo_f = hi_f = math.nan
    if not (math.isfinite(lo_f) and math.isfinite(hi_f) and 0 < lo_f < hi_f):
        raise DataError(
            f"{path}: bad checkpoint metadata (lmbda_min={lo!r}, lmbda_max={hi!r}; "
            "need finite numbers with 0 < lmbda_min < lmbda_max)"
        )
    return lo_f, hi_f


def _check_stored_shapes(path: str | Path, arch: str, n: int, m: int) -> None:
    """Compare the file's first analysis kernels with N and M from its header alone, so that
    metadata claiming a huge model allocates nothing."""
    from safetensors import safe_open

    prefix = "base." if arch == "scale-hyperprior-vr" else ""
    want = {f"{prefix}g_a.0.weight": (n, 3, 5, 5), _LAST_ANALYSIS[arch]: (m, n, 5, 5)}
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in want if k in keys}
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise DataError(f"cannot read checkpoint {path}: {exc}") from None
    for key, shape in want.items():
        if shapes.get(key) != shape:
            found = "absent" if key not in shapes else f"of shape {list(shapes[key])}"
            raise DataError(
                f"{path} does not match architecture {arch} (N={n}, M={m}): "
                f"{key} is {found}, not {list(shape)}"
            )


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint: the model (eval mode, entropy tables built) and its metadata.

    The metadata's sizes are checked before any model is built, and every stored tensor's
    shape and finiteness before its values are used.
    """
    from safetensors.torch import load_file

    meta = read_checkpoint_meta(path)
    if lacking := [k for k in ("architecture", "N", "M") if k not in meta]:
        raise DataError(f"{path}: checkpoint metadata lacks {', '.join(lacking)}")
    arch = meta["architecture"]
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise DataError(f"{path}: unknown architecture {arch!r}")
    n, m = _channels(meta, "N", path), _channels(meta, "M", path)
    lmbda_min, lmbda_max = _lmbda_range(meta, path)
    _check_stored_shapes(path, arch, n, m)
    try:
        model = build_model(arch, n, m, lmbda_min, lmbda_max)
    except (UsageError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: bad checkpoint metadata ({exc})") from None
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise DataError(f"cannot read checkpoint {path}: {exc}") from None
    expected = _storable_state(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        detail = (missing or unexpected or wrong)[:3]
        raise DataError(
            f"{path} does not match architecture {arch} (N={meta['N']}, M={meta['M']}): "
            f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} mis-shaped "
            f"tensors, e.g. {detail}"
        )
    if bad := [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]:
        raise DataError(
            f"{path}: {len(bad)} tensor(s) hold NaN or infinite values, e.g. {bad[:3]}; "
            "the checkpoint is damaged (or its training diverged)"
        )
    # nn.Module's loader, not CompressAI's override: the coder tables are rebuilt by update().
    nn.Module.load_state_dict(model, {k: v.float() for k, v in state.items()}, strict=False)
    model.update(force=True)  # type: ignore[operator]
    model.to(device).eval()
    return model, meta


def manifest_path() -> Path:
    """The shipped models' manifest."""
    return MODELS_DIR / "manifest.json"


def read_manifest() -> dict[str, Any]:
    """The shipped manifest (models, quality bars); empty when there is none yet."""
    path = manifest_path()
    return json.loads(path.read_text()) if path.exists() else {}


def shipped_models() -> dict[str, dict[str, Any]]:
    """Name -> description of every checkpoint in ``data/models`` (manifest entry if present)."""
    manifest = read_manifest().get("models", {})
    models = {}
    for path in sorted(MODELS_DIR.glob("*.safetensors")):
        models[path.stem] = {"file": path.name, **manifest.get(path.stem, {})}
    return models


def resolve_shipped(name: str) -> Path:
    """The checkpoint file of a shipped model, by name."""
    models = shipped_models()
    if name not in models:
        from .train import load_recipes

        if name in load_recipes():  # a recipe whose model is not here (ELIC: not trained yet)
            raise DataError(
                f"model {name!r} is not available: its recipe is not trained here; train it with "
                f"`nicspec train --recipe {name} --device cuda` and evaluate the file as "
                "checkpoint:PATH (data/models/MODEL_CARD.md says what is missing)"
            )
        choices = ", ".join(models) or "none are shipped yet"
        raise UsageError(f"unknown model {name!r}; shipped models: {choices}")
    path = MODELS_DIR / models[name]["file"]
    if not path.exists():
        raise DataError(f"model {name!r}: file {path} is missing")
    return path
