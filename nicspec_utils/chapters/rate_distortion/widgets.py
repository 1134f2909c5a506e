"""Chapter 2's explorer: pre-rendered reconstructions and a kernel-free widget over them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError, UsageError
from ...labels import ANCHOR, NIC_LABEL, dataset_label
from ...selection import split_list
from ...widgets import FORMAT_NAMES, PREVIEW_FORMAT, encode_preview, linked_stack
from .settings import nic_setting

# --- explorer: one image, every corruption x operating point x codec ----------------------------

EXPLORER_CLEAN = "clean"
# Chapter 1's corrupted sets: "" is the store's (corruptions.corrupted_root), None reads none.
EXPLORER_CORRUPTED_CACHE = ""


@dataclass(frozen=True)
class ExplorerPanel:
    """One reconstruction of the explorer: a crop (encoded) and its whole-image numbers."""

    corruption: str  # a corruption name or :data:`EXPLORER_CLEAN`
    model: str  # the NIC model that defines the operating point
    codec: str  # :data:`NIC_LABEL` or :data:`ANCHOR` (rate-matched to the model)
    bpp: float
    psnr: float  # w.r.t. the codec's input (the corrupted image)
    psnr_clean: float  # w.r.t. the clean image
    image: bytes

    @property
    def caption(self) -> str:
        """One line: codec, bpp and both PSNRs (whole image)."""
        who = (
            f"NIC {self.model}"
            if self.codec == NIC_LABEL
            else f"{ANCHOR} (matched to {self.model})"
        )
        return (
            f"{who}: {self.bpp:.3f} bpp, PSNR {self.psnr:.2f} dB w.r.t. the input, "
            f"{self.psnr_clean:.2f} dB w.r.t. the clean image"
        )


@dataclass
class Explorer:
    """Precomputed explorer data for one image (see :func:`explorer_panels`)."""

    dataset: str
    image_id: str
    severity: int
    crop: int
    scale: int
    corruptions: list[str]  # :data:`EXPLORER_CLEAN` first, then the paper's order
    models: list[str]
    inputs: dict[str, bytes]  # crop of each codec input, by corruption
    input_psnr: dict[str, float]  # PSNR of each input w.r.t. the clean image (inf when clean)
    panels: list[ExplorerPanel]
    fmt: str = PREVIEW_FORMAT  # how the crops are encoded (widgets.encode_preview)

    def panel(self, corruption: str, model: str, codec: str) -> ExplorerPanel:
        """The panel of one (corruption, model, codec)."""
        for p in self.panels:
            if (p.corruption, p.model, p.codec) == (corruption, model, codec):
                return p
        raise DataError(f"no explorer panel for {(corruption, model, codec)}")

    @property
    def nbytes(self) -> int:
        """Encoded image bytes the widget embeds (before base64)."""
        return sum(map(len, self.inputs.values())) + sum(len(p.image) for p in self.panels)


def _centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    d = min(int(size), h, w)
    top, left = (h - d) // 2, (w - d) // 2
    return img[top : top + d, left : left + d]


def _to_uint8(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a
    return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def cached_corrupted(
    dataset: Any,
    image_id: str,
    clean: np.ndarray,
    corruption: str,
    severity: int,
    seed: int = 0,
    cache_dir: str | Path | None = EXPLORER_CORRUPTED_CACHE,
) -> np.ndarray:
    """The corrupted image, read from chapter 1's corrupted set when its manifest vouches for the
    file (same seed scheme, implementation, source image and file digest), else computed."""
    from ... import corruptions as C
    from ...io import read_image, sha256_file

    if cache_dir is not None:
        root = C.corrupted_set_dir(cache_dir, dataset.name)
        rel = f"{corruption}/{severity}/{image_id}.png"
        try:
            manifest = json.loads((root / C.MANIFEST_NAME).read_text())
        except (OSError, ValueError):
            manifest = {}
        cfg = manifest.get("config", {}) if isinstance(manifest, dict) else {}
        ok = (
            cfg.get("seed") == int(seed)
            and cfg.get("seed_scheme") == C.SEED_SCHEME
            and cfg.get("imagecorruptions") == C.imagecorruptions_version()
            and manifest.get("sources", {}).get(image_id) == C.image_digest(clean)
            and (root / rel).is_file()
            and manifest.get("files", {}).get(rel) == sha256_file(root / rel)
        )
        if ok:
            return read_image(root / rel)
    return C.corrupt(clean, corruption, severity, seed=int(seed))


def explorer_panels(
    models: str | Sequence[str],
    dataset: str,
    image_id: str,
    corruptions: str | Sequence[str],
    severity: int,
    *,
    seed: int = 0,
    estimate: bool = False,
    crop: int = 160,
    scale: int = 2,
    quality: int = 85,
    fmt: str = PREVIEW_FORMAT,
    cache_dir: str | Path | None = EXPLORER_CORRUPTED_CACHE,
    progress: Callable[[str], None] | None = None,
    j2k: str = "jpeg2000",
) -> Explorer:
    """Code one image, clean and under each corruption (at one severity), with each NIC model and
    with JPEG2000 (``j2k``: its path) rate-matched to that model's bpp on the same input (ratio
    24 / bpp, the bpp rounded as in :func:`corrupted_study`); keep centre crops (WebP at
    ``quality`` by default: ``fmt``, :func:`widgets.encode_preview`) and whole-image numbers.

    PSNRs are :func:`metrics.psnr` on the whole image, w.r.t. the codec's input and the clean
    image. Corrupted inputs come from chapter 1's sets in ``cache_dir`` when valid.
    """
    from ...codecs import get_codec
    from ...corruptions import parse_corruptions
    from ...data import get_dataset
    from ...metrics import psnr

    ds = get_dataset(dataset)
    names = [EXPLORER_CLEAN] + parse_corruptions(corruptions)
    nics = [nic_setting(m) for m in split_list(models)]
    if not nics:
        raise UsageError("the explorer needs at least one NIC model")
    clean = ds.load(image_id)
    codecs = {s.label: get_codec(s.codec, estimate=bool(estimate)) for s in nics}
    inputs: dict[str, bytes] = {}
    input_psnr: dict[str, float] = {}
    panels: list[ExplorerPanel] = []
    for name in names:
        if progress is not None:
            progress(f"explorer: {name}")
        inp = clean if name == EXPLORER_CLEAN else cached_corrupted(
            ds, image_id, clean, name, int(severity), seed, cache_dir
        )  # fmt: skip
        inputs[name] = encode_preview(_centre_crop(inp, crop), fmt, quality)
        input_psnr[name] = psnr(inp, clean)
        for s in nics:
            res_nic = codecs[s.label].compress(inp)
            target = round(float(res_nic.bpp), 4)
            res_j2k = get_codec(j2k, bpp=target).compress(inp)
            for codec, res in ((NIC_LABEL, res_nic), (ANCHOR, res_j2k)):
                rec = np.asarray(res.reconstruction)
                panels.append(
                    ExplorerPanel(
                        corruption=name,
                        model=s.label,
                        codec=codec,
                        bpp=float(res.bpp),
                        psnr=psnr(rec, inp),
                        psnr_clean=psnr(rec, clean),
                        image=encode_preview(_centre_crop(_to_uint8(rec), crop), fmt, quality),
                    )
                )
    return Explorer(
        dataset=ds.name,
        image_id=image_id,
        severity=int(severity),
        crop=min(int(crop), *clean.shape[:2]),
        scale=int(scale),
        corruptions=names,
        models=[s.label for s in nics],
        inputs=inputs,
        input_psnr=input_psnr,
        panels=panels,
        fmt=fmt,
    )


def _corruption_option(name: str) -> str:
    from ...corruptions import get_corruption

    if name == EXPLORER_CLEAN:
        return "clean (no corruption)"
    c = get_corruption(name)
    return f"{c.number}. {name.replace('_', ' ')} ({c.group})"


def explorer_widget(explorer: Explorer) -> Any:
    """Dropdowns (corruption, operating point, codec) switching ``Stack``s of the precomputed
    crops; each dropdown's ``index`` is ``jslink``-ed to the stacks it drives, so the widget
    works from its embedded state on a static page (no kernel, no Python callbacks)."""
    try:
        import ipywidgets as w
    except ImportError:
        raise UsageError(
            "the explorer needs ipywidgets (pip install 'nicspec-utils[book]')"
        ) from None

    ex = explorer
    side = str(ex.crop * ex.scale)

    def pic(data: bytes) -> Any:
        return w.Image(value=data, format=ex.fmt, width=side, height=side)

    def small(text: str, fit: bool = True) -> Any:
        return w.HTML(f"<small>{text}</small>", layout={"width": f"{side}px"} if fit else {})

    layout = {"width": "max-content"}
    pick_corruption = w.Dropdown(
        options=[_corruption_option(n) for n in ex.corruptions], description="corruption",
        layout=layout,
    )  # fmt: skip
    pick_model = w.Dropdown(options=ex.models, description="rate of", layout=layout)
    codecs = [NIC_LABEL, ANCHOR]
    pick_codec = w.Dropdown(
        options=["NIC model", f"{ANCHOR} at the model's bpp"], description="codec", layout=layout
    )

    inputs = []
    for n in ex.corruptions:
        if n == EXPLORER_CLEAN:
            note = "the clean image"
        else:
            note = (
                f"{n.replace('_', ' ')}, severity {ex.severity}: "
                f"PSNR {ex.input_psnr[n]:.2f} dB w.r.t. clean"
            )
        inputs.append(w.VBox([pic(ex.inputs[n]), small(note)]))
    input_stack = linked_stack(inputs, pick_corruption)

    per_corruption = []
    for n in ex.corruptions:
        per_model = []
        for m in ex.models:
            panels = [ex.panel(n, m, c) for c in codecs]
            cards = [w.VBox([pic(p.image), small(p.caption)]) for p in panels]
            per_model.append(linked_stack(cards, pick_codec))
        per_corruption.append(linked_stack(per_model, pick_model))
    output_stack = linked_stack(per_corruption, pick_corruption)

    note = (
        f"{dataset_label(ex.dataset)} {ex.image_id}: the centre {ex.crop}x{ex.crop} px, shown at "
        f"{ex.scale}x ({FORMAT_NAMES.get(ex.fmt, ex.fmt)} previews); bpp and PSNR are of the "
        "whole image"
    )
    box = w.VBox(
        [
            w.HTML("<style>.nicspec-explorer img {image-rendering: pixelated;}</style>"),
            w.HBox([pick_corruption, pick_model, pick_codec], layout={"flex_flow": "row wrap"}),
            w.HBox(
                [
                    w.VBox([w.HTML("<b>input</b>"), input_stack]),
                    w.VBox([w.HTML("<b>reconstruction</b>"), output_stack]),
                ]
            ),
            small(note, fit=False),
        ]
    )
    box.add_class("nicspec-explorer")
    return box
