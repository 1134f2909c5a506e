"""Chapter 2's settings: codecs, their quality ladders and labels, the NIC models and lambdas,
the published curves, and the settings of each study."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...codecs import is_neural_name
from ...errors import UsageError
from ...labels import CURVE_LADDER, CURVE_MSSSIM, CURVE_PRUNED, CURVE_VR, nic_kind
from ...selection import split_list

CLASSIC_CODECS = ("jpeg", "jpeg2000", "webp", "avif", "hevc")
CODEC_LABELS = {
    "none": "none (raw RGB)",
    "jpeg": "JPEG",
    "jpeg2000": "JPEG2000",
    "jpeg2000-ffmpeg": "JPEG2000",
    "webp": "WebP",
    "avif": "AVIF",
    "hevc": "HEVC (x265)",
    "vtm": "VTM",
}
# Quality ladders spanning ~0.15-1.7 bpp on Kodak (measured on three Kodak images), the range
# of the shipped NIC models. JPEG2000's quality is its compression ratio (bpp = 24 / ratio); as
# the anchor of the BD tables it gets a denser ladder, 0.05-1.5 bpp, never thinned (FULL_LADDER).
DEFAULT_QUALITIES: dict[str, tuple[float, ...]] = {
    "jpeg": (5, 10, 20, 40, 75),
    "jpeg2000": (480.0, 240.0, 160.0, 96.0, 64.0, 48.0, 32.0, 24.0, 16.0),
    "webp": (5, 20, 50, 75, 90),
    "avif": (20, 40, 60, 75, 85),
    "hevc": (20, 30, 40, 50, 58),
}
# One mid setting per codec for the bpp-inflation table (None: the codec has no setting).
FIXED_QUALITY: dict[str, float | None] = {
    "none": None,
    "jpeg": 40,
    "jpeg2000": 48.0,
    "webp": 50,
    "avif": 60,
    "hevc": 40,
}
FULL_LADDER = ("jpeg2000",)
# The two JPEG2000 paths (codecs.reference_jpeg2000 picks the reference, the BD anchor): the
# curve of the other one, where it runs too, and of CompressAI's published JPEG2000
JPEG2000_CODECS = ("jpeg2000", "jpeg2000-ffmpeg")
JPEG2000_OTHER_CURVES = {
    "jpeg2000": "JPEG2000-Pillow (9/7)",
    "jpeg2000-ffmpeg": "JPEG2000-ffmpeg (the paper's path, 5/3)",
}
# VTM's QPs where a build is installed (NICSPEC_VTM_DIR): ~0.2-1.2 bpp on Kodak
DEFAULT_VTM_QPS = (27, 32, 37, 42)
VTM_CURVE = "VTM (ours)"
DEFAULT_VR_LAMBDAS = (0.0025, 0.0067, 0.018, 0.0483)
PUBLISHED_OVERLAY = ("vtm", "bpg", "bmshj2018-hyperprior")
PUBLISHED_LABELS = {
    "jpeg2000": "JPEG2000",
    "vtm": "VTM",
    "bpg": "BPG (x265, 4:4:4)",
    "bmshj2018-hyperprior": "bmshj2018 hyperprior",
}
PUBLISHED_COLOURS = ("black", "dimgray", "darkgoldenrod")
PUBLISHED_IMAGES = 24  # CompressAI's published Kodak curves use all 24 images

POINT_COLUMNS = [
    "dataset",
    "curve",
    "family",
    "codec",
    "setting",
    "quality",
    "lmbda",
    "bpp",
    "psnr",
    "ms_ssim",
    "ms_ssim_db",
    "n_images",
    "key",
]


# --- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One codec at one rate setting; ``curve`` names the RD curve it belongs to."""

    codec: str
    curve: str
    family: str  # "classic" or "nic"
    quality: float | None = None
    lmbda: float | None = None
    label: str = ""

    def options(self) -> dict[str, Any]:
        """Codec options for :func:`evaluate.evaluate` (the lambda of a variable-rate model)."""
        return {} if self.lmbda is None else {"lmbda": self.lmbda}


def _knob_value(codec: str, value: float) -> float | int:
    """A quality as the codec's knob wants it: int for integer knobs, else float."""
    from ...codecs import get_codec

    knob = get_codec(codec).knob
    if knob is None:
        raise UsageError(f"codec {codec!r} has no rate setting")
    return int(round(value)) if knob.integer else float(value)


def parse_qualities(spec: str) -> dict[str, tuple[float, ...]]:
    """``"jpeg=5,10,20;webp=50,75"`` -> {codec: qualities}; an empty spec gives {}."""
    out: dict[str, tuple[float, ...]] = {}
    for part in spec.split(";"):
        if not part.strip():
            continue
        codec, sep, values = part.partition("=")
        codec = codec.strip()
        if not sep or not codec:
            raise UsageError(f"quality spec needs codec=v1,v2,..., got {part.strip()!r}")
        try:
            numbers = tuple(float(v) for v in split_list(values))
        except ValueError:
            raise UsageError(f"quality spec for {codec}: not numbers: {values!r}") from None
        if not numbers:
            raise UsageError(f"quality spec for {codec} lists no values")
        out[codec] = numbers
    return out


def pick_points(values: Sequence[float], points: int | None) -> list[float]:
    """``points`` values spread evenly over a ladder (both ends kept); all when None or more."""
    vals = list(values)
    if points is None or points >= len(vals):
        return vals
    if points < 1:
        raise UsageError(f"need at least one rate point per codec, got {points}")
    if points == 1:
        return [vals[len(vals) // 2]]
    idx = sorted({int(round(i)) for i in np.linspace(0, len(vals) - 1, points)})
    return [vals[i] for i in idx]


def codec_label(codec: str) -> str:
    """Display name of a codec (``jpeg2000`` -> ``JPEG2000``; NIC names unchanged)."""
    return CODEC_LABELS.get(codec, codec)


def ladder_key(codec: str) -> str:
    """The name a codec's defaults are kept under (both JPEG2000 paths: ``jpeg2000``)."""
    return "jpeg2000" if codec in JPEG2000_CODECS else codec


def _quality_label(codec: str, quality: float | None) -> str:
    if quality is None:
        return "-"
    if codec in JPEG2000_CODECS:
        return f"ratio {quality:g} ({24.0 / quality:.3g} bpp)"
    return f"q={quality:g}"


def jpeg2000_curve(codec: str, j2k: str = "jpeg2000") -> str:
    """The curve a JPEG2000 path's points belong to: the reference ``j2k`` is the anchor
    (``JPEG2000``), the other path is :data:`JPEG2000_OTHER_CURVES`."""
    return codec_label(codec) if codec == j2k else JPEG2000_OTHER_CURVES[codec]


def classic_settings(
    codecs: str | Sequence[str],
    qualities: str | dict[str, Sequence[float]] | None = None,
    points: int | None = None,
    full: Sequence[str] = FULL_LADDER,
    j2k: str = "jpeg2000",
) -> list[Setting]:
    """Settings of the classic codecs: each codec's ladder (``qualities`` overrides the default
    ladder per codec, as a dict or a ``"jpeg=5,10;webp=50"`` spec), thinned to ``points``
    except for the codecs in ``full`` (the BD anchor keeps its whole ladder). ``jpeg2000`` in
    ``codecs`` means the reference path ``j2k`` (Pillow's ``jpeg2000`` or the paper's
    ``jpeg2000-ffmpeg``; both share JPEG2000's ladder); naming the other path too
    (``jpeg2000-ffmpeg``, or ``jpeg2000-pillow`` for Pillow's) adds its curve
    (:func:`jpeg2000_curve`)."""
    override = parse_qualities(qualities) if isinstance(qualities, str) else dict(qualities or {})
    settings = []
    alias = {"jpeg2000": j2k, "jpeg2000-pillow": "jpeg2000"}
    names = [alias.get(c, c) for c in split_list(codecs)]
    for codec in dict.fromkeys(names):
        if is_neural_name(codec):
            raise UsageError(f"{codec!r} is a neural codec; list it under the NIC models")
        if codec == "none":
            settings.append(Setting("none", codec_label("none"), "classic", label="-"))
            continue
        key = ladder_key(codec)
        ladder = override.get(codec, override.get(key, DEFAULT_QUALITIES.get(key)))
        if ladder is None:
            raise UsageError(f"no default qualities for {codec!r}; give them in the quality spec")
        curve = jpeg2000_curve(codec, j2k) if key == "jpeg2000" else codec_label(codec)
        for q in ladder if key in full else pick_points(ladder, points):
            value = _knob_value(codec, q)
            label = _quality_label(codec, value)
            settings.append(Setting(codec, curve, "classic", value, label=label))
    return settings


def vtm_settings(qps: str | Sequence[int] = DEFAULT_VTM_QPS) -> list[Setting]:
    """VTM (VVC intra) at each QP: one curve, :data:`VTM_CURVE` (needs a VTM build)."""
    raw = split_list(qps) if isinstance(qps, str) else list(qps)
    try:
        values = [int(q) for q in raw]
    except ValueError:
        raise UsageError(f"VTM QPs must be integers, got {qps!r}") from None
    return [Setting("vtm", VTM_CURVE, "classic", q, label=f"QP {q}") for q in values]


def resolve_models(spec: str | Sequence[str]) -> list[str]:
    """``"all"`` -> every shipped model (ladder by lambda first); otherwise the names given."""
    from ...nic.models import shipped_models

    shipped = shipped_models()
    names = split_list(spec)
    if names == ["all"]:
        order = [CURVE_LADDER, CURVE_VR, CURVE_PRUNED, CURVE_MSSSIM]
        return sorted(
            shipped,
            key=lambda n: (
                order.index(nic_kind(n, shipped[n])),
                float(shipped[n].get("lmbda") or 0),
            ),
        )
    unknown = [n for n in names if n not in shipped]
    if unknown:
        raise UsageError(
            f"unknown NIC model(s) {', '.join(unknown)}; shipped: {', '.join(shipped)}"
        )
    return names


def vr_lambda_values(vr_lambdas: str | Sequence[float]) -> list[float]:
    """``"0.0025,0.0067"`` or a sequence -> floats (a clear error for anything else)."""
    raw = split_list(vr_lambdas) if isinstance(vr_lambdas, str) else list(vr_lambdas)
    try:
        return [float(v) for v in raw]
    except ValueError:
        raise UsageError(f"VR lambdas must be numbers, got {vr_lambdas!r}") from None


def nic_settings(
    models: str | Sequence[str], vr_lambdas: str | Sequence[float] = DEFAULT_VR_LAMBDAS
) -> list[Setting]:
    """Settings of shipped NIC models: each fixed-rate model once, a variable-rate one at each
    lambda of ``vr_lambdas``."""
    from ...nic.models import shipped_models

    shipped = shipped_models()
    lambdas = vr_lambda_values(vr_lambdas)
    settings = []
    for name in resolve_models(models):
        kind = nic_kind(name, shipped[name])
        if kind == CURVE_VR:
            if not lambdas:
                raise UsageError(f"{name} is variable-rate: give it lambdas")
            for lam in lambdas:
                settings.append(Setting(f"nic:{name}", kind, "nic", lmbda=lam, label=f"λ={lam:g}"))
        else:
            settings.append(Setting(f"nic:{name}", kind, "nic", label=name))
    return settings


def _setting_values(text: str, what: str) -> list[float]:
    """``"1/3/5"`` or ``"1-4"`` (integers) -> numbers, for a ``SPEC@VALUES`` suffix."""
    text = text.strip()
    lo, dash, hi = text.partition("-")
    try:
        if dash and lo.strip().isdigit() and hi.strip().isdigit():
            a, b = int(lo), int(hi)
            if a > b:
                raise ValueError
            return [float(v) for v in range(a, b + 1)]
        values = [float(v) for v in text.split("/") if v.strip()]
    except ValueError:
        raise UsageError(f"{what}: settings after '@' must be numbers a/b/c or a range a-b, "
                         f"got {text!r}") from None  # fmt: skip
    if not values:
        raise UsageError(f"{what}: no settings after '@'")
    return values


def extra_settings(
    spec: str | Sequence[str], vr_lambdas: str | Sequence[float] = DEFAULT_VR_LAMBDAS
) -> list[Setting]:
    """Settings of your own codecs, to put next to the shipped ones (``extra_codecs``).

    A comma list of items ``[LABEL=]CODEC[@SETTINGS]``:

    - ``checkpoint:PATH``: a checkpoint that ``nicspec_utils.models.load_checkpoint`` reads (as
      ``nicspec train`` writes it). Fixed-rate: one point; variable-rate (architecture
      ``scale-hyperprior-vr``): one point per lambda, ``@0.0067/0.018`` or else ``vr_lambdas``.
    - ``zoo:ARCH``: a CompressAI zoo model (pretrained weights; downloaded once, or already in
      torch's hub cache). Every quality of the architecture, or ``@3``, ``@1/4/8``, ``@1-4``;
      ``zoo:ARCH-3`` is the same as ``zoo:ARCH@3``.
    - ``nic:NAME``: a shipped model under a label of your choosing.

    Items with the same LABEL form one RD curve (for example several fixed-rate checkpoints of
    your own ladder: ``mine=checkpoint:a.safetensors,mine=checkpoint:b.safetensors``); without a
    label the curve is named after the codec (``checkpoint:<file name>``, ``zoo:ARCH``).
    Everything is run as NIC (``family`` ``nic``: the ``estimate`` switch applies).
    """
    from ...codecs.neural import ZOO_ARCHS

    settings: list[Setting] = []
    for item in split_list(spec):
        label, eq, rest = item.partition("=")
        if eq and label.strip() and not is_neural_name(label.strip()):
            curve, codec = label.strip(), rest.strip()
        else:
            curve, codec = "", item
        if not is_neural_name(codec):
            raise UsageError(
                f"extra codec {item!r}: give checkpoint:PATH, zoo:ARCH[@QUALITIES] or nic:NAME "
                "(classic codecs go in classic_codecs)"
            )
        base, at, values_text = codec.rpartition("@") if "@" in codec else (codec, "", "")
        prefix, _, name = base.partition(":")
        values = _setting_values(values_text, item) if at else None
        if prefix == "zoo":
            head, dash, tail = name.rpartition("-")
            if name not in ZOO_ARCHS and dash and head in ZOO_ARCHS and tail.isdigit():
                name, values = head, [float(tail)] if values is None else values
            if name not in ZOO_ARCHS:
                raise UsageError(f"extra codec {item!r}: unknown CompressAI zoo model {name!r}; "
                                 f"choose from {', '.join(ZOO_ARCHS)}")  # fmt: skip
            if values is None:
                from compressai.zoo import image as zoo_image

                values = [float(q) for q in sorted(zoo_image.cfgs[name])]
            curve = curve or f"zoo:{name}"
            for q in values:
                settings.append(Setting(f"zoo:{name}", curve, "nic", int(q), label=f"q={q:g}"))
            continue
        if prefix == "checkpoint":
            path = Path(name).expanduser().resolve()
            from ...nic.models import read_checkpoint_meta

            meta = read_checkpoint_meta(path)
            codec_name, short = f"checkpoint:{path}", path.name
        else:  # nic: a shipped model
            from ...nic.models import shipped_models

            shipped = shipped_models()
            if name not in shipped:
                raise UsageError(f"extra codec {item!r}: no shipped model {name!r}; "
                                 f"shipped: {', '.join(shipped)}")  # fmt: skip
            meta, codec_name, short = shipped[name], f"nic:{name}", name
        curve = curve or f"{prefix}:{short}"
        if meta.get("architecture") == "scale-hyperprior-vr":
            if values is None:
                values = vr_lambda_values(vr_lambdas)
            if not values:
                raise UsageError(f"extra codec {item!r} is variable-rate: give it lambdas")
            for lam in values:
                settings.append(Setting(codec_name, curve, "nic", lmbda=lam, label=f"λ={lam:g}"))
        else:
            if values is not None:
                raise UsageError(f"extra codec {item!r} is fixed-rate: it takes no '@' setting")
            settings.append(Setting(codec_name, curve, "nic", label=short))
    return settings


def fixed_point_label(setting: Setting) -> str:
    """The name of one extra setting as an operating point of the corrupted study."""
    if not setting.label or setting.label in setting.curve:
        return setting.curve
    return f"{setting.curve} {setting.label}"


def nic_setting(model: str | Setting) -> Setting:
    """The setting of one fixed-rate shipped model (``nic:<name>``); a :class:`Setting` (one of
    :func:`extra_settings`, say) is taken as it is."""
    if isinstance(model, Setting):
        return model
    name = model.removeprefix("nic:")
    kind = nic_kind(name)
    if kind == CURVE_VR:
        raise UsageError(f"{name} is variable-rate; the corrupted study takes fixed-rate models")
    return Setting(f"nic:{name}", kind, "nic", label=name)


def inflation_settings(
    codecs: str | Sequence[str],
    models: str | Sequence[str] = (),
    qualities: dict[str, float | None] | None = None,
    j2k: str = "jpeg2000",
) -> list[Setting]:
    """Fixed settings for the bpp-inflation table: each classic codec at its mid setting
    (:data:`FIXED_QUALITY`, overridable) and each fixed-rate NIC model; ``jpeg2000`` means the
    reference path ``j2k``."""
    fixed = {**FIXED_QUALITY, **(qualities or {})}
    settings = []
    for codec in split_list(codecs):
        codec = j2k if codec == "jpeg2000" else codec
        if ladder_key(codec) not in fixed and codec not in fixed:
            raise UsageError(f"no fixed setting for {codec!r}; give one in qualities")
        q = fixed.get(codec, fixed.get(ladder_key(codec)))
        value = None if q is None else _knob_value(codec, q)
        label = codec_label(codec)
        if value is not None:
            label += f" {_quality_label(codec, value)}"
        settings.append(Setting(codec, codec_label(codec), "classic", value, label=label))
    settings += [nic_setting(m) for m in split_list(models)]
    return settings
