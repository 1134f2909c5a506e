"""Neural image codecs: any CompressAI ``CompressionModel`` behind the :class:`Codec` interface.

* Input: padded at the bottom/right to a multiple of 64 by edge replication (option
  ``pad="replicate"``; ``pad="zero"`` gives CompressAI's constant zero padding), reconstruction
  cropped back and clamped to [0, 1] (continuous values, not rounded to 8 bits). Kodak (512x768),
  the CLIC crops (512x768) and ImageNet (256x256) are multiples of 64 already. 64 is the
  downsampling factor of every architecture here: the scale hyperprior and ELIC both reach the
  latent at 1/16 and the hyper-latent at 1/64 (ELIC's checkerboard context needs an even latent,
  which a multiple of 64 gives).
* Real coding (default): ``model.compress`` / ``model.decompress``, one image at a time (so that a
  stand-alone :meth:`NeuralCodec.decode` of each bitstream reproduces the reconstruction
  bit-exactly; batching can change float rounding in the hyper-decoder, which the entropy decoder
  must reproduce exactly). ``bits`` = 8 x the total length of all entropy-coded strings (latent and
  hyper-latent; ELIC's are one per channel group and checkerboard half, plus the hyper-latent's),
  nothing else. ``bitstream`` is a small self-describing container (magic, image size, latent
  shapes, lambda, the strings); its overhead is ``CodecResult.header_bytes`` and is *not* in
  ``bits`` (typically ~20 bytes, 0.0004 bpp on Kodak; ELIC's shapes take ~30 bytes more).
* ``estimate=True``: one eval-mode forward pass ``model(x)``; bits = sum of -log2 likelihoods,
  reconstruction = ``x_hat`` clamped; batched over same-size images (option ``batch_size``).
* Variable-rate models (``meta["variable_rate"]``, else: the model has ``set_lmbda``) take
  ``lmbda`` in [meta lmbda_min, lmbda_max] (default [0.0012, 0.26]) as the rate setting, set with
  ``model.set_lmbda`` before coding; fixed-rate models have none; CompressAI zoo models take
  ``quality`` 1..8 (1..6 for cheng2020).
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, UsageError
from .base import Codec, CodecResult, Knob, check_image

PAD_MULTIPLE = 64
MAGIC = b"NIC1"
VR_LMBDA_RANGE = (0.0012, 0.26)
ZOO_ARCHS = (
    "bmshj2018-factorized",
    "bmshj2018-hyperprior",
    "mbt2018-mean",
    "mbt2018",
    "cheng2020-anchor",
    "cheng2020-attn",
)
_MODEL_CACHE: OrderedDict[tuple, tuple[Any, dict]] = OrderedDict()
_MODEL_CACHE_SIZE = 12  # the whole shipped family (8 models, ~25 MB each in float32) stays loaded


# --- the bitstream container -------------------------------------------------------------------
# A tiny tagged tree: bytes, non-negative ints, floats, None, lists and dicts with str keys
# (ELIC's latent shapes); lengths as LEB128 varints.
_T_BYTES, _T_UINT, _T_LIST, _T_FLOAT, _T_NONE, _T_DICT = range(6)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pack(obj: Any, out: bytearray) -> None:
    if obj is None:
        out.append(_T_NONE)
    elif isinstance(obj, (bytes, bytearray)):
        out.append(_T_BYTES)
        out += _varint(len(obj)) + bytes(obj)
    elif isinstance(obj, (bool, int, np.integer)) and int(obj) >= 0:
        out.append(_T_UINT)
        out += _varint(int(obj))
    elif isinstance(obj, (float, np.floating)):
        out.append(_T_FLOAT)
        out += struct.pack("<d", float(obj))
    elif isinstance(obj, (list, tuple)):
        out.append(_T_LIST)
        out += _varint(len(obj))
        for item in obj:
            _pack(item, out)
    elif isinstance(obj, dict):
        out.append(_T_DICT)
        out += _varint(len(obj))
        for key, item in obj.items():
            _pack(str(key).encode(), out)
            _pack(item, out)
    else:
        raise TypeError(f"cannot serialise {type(obj).__name__}")


def _unpack(buf: bytes, pos: int) -> tuple[Any, int]:
    def varint(p: int) -> tuple[int, int]:
        n = shift = 0
        while True:
            byte = buf[p]
            p += 1
            n |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return n, p

    tag = buf[pos]
    pos += 1
    if tag == _T_NONE:
        return None, pos
    if tag == _T_BYTES:
        n, pos = varint(pos)
        if pos + n > len(buf):
            raise IndexError("truncated")
        return bytes(buf[pos : pos + n]), pos + n
    if tag == _T_UINT:
        return varint(pos)
    if tag == _T_FLOAT:
        return struct.unpack_from("<d", buf, pos)[0], pos + 8
    if tag == _T_LIST:
        n, pos = varint(pos)
        items = []
        for _ in range(n):
            item, pos = _unpack(buf, pos)
            items.append(item)
        return items, pos
    if tag == _T_DICT:
        n, pos = varint(pos)
        mapping = {}
        for _ in range(n):
            key, pos = _unpack(buf, pos)
            if not isinstance(key, bytes):
                raise ValueError("bad dict key")
            mapping[key.decode()], pos = _unpack(buf, pos)
        return mapping, pos
    raise ValueError(f"bad tag {tag}")


def _payload_bytes(strings: Any) -> int:
    """Total length of all byte strings in a (nested) list."""
    if isinstance(strings, (bytes, bytearray)):
        return len(strings)
    return sum(_payload_bytes(s) for s in strings)


def _shape_tree(shape: Any) -> Any:
    """A model's latent shape(s) as plain ints: a size, a list of sizes, or a dict of those
    (ELIC: ``{"y": [one (C, H, W) per channel group], "hyper": (H, W)}``)."""
    if isinstance(shape, dict):
        return {str(k): _shape_tree(v) for k, v in shape.items()}
    if _is_nested(shape):
        return [_shape_tree(s) for s in shape]
    return [int(s) for s in shape]


def _sizes(tree: Any) -> Any:
    """Inverse of :func:`_shape_tree`, with ``torch.Size`` leaves (what models decode with)."""
    import torch

    if isinstance(tree, dict):
        return {k: _sizes(v) for k, v in tree.items()}
    if _is_nested(tree):
        return [_sizes(s) for s in tree]
    return torch.Size(tree)


def pack_bitstream(
    height: int, width: int, shape: Any, strings: list[Any], lmbda: float | None
) -> bytes:
    """Serialise one image's strings (one entry per string group) with what decoding needs."""
    out = bytearray(MAGIC)
    _pack([height, width, _shape_tree(shape), strings, lmbda], out)
    return bytes(out)


def unpack_bitstream(data: bytes) -> tuple[int, int, Any, list[Any], float | None]:
    """Inverse of :func:`pack_bitstream`: (height, width, shape, strings, lmbda)."""
    if not data.startswith(MAGIC):
        raise DataError("not a nicspec NIC bitstream (bad magic)")
    try:
        (h, w, shape, strings, lmbda), end = _unpack(data, len(MAGIC))
    except (IndexError, ValueError, TypeError, struct.error):
        raise DataError("corrupt NIC bitstream") from None
    if end != len(data):
        raise DataError("corrupt NIC bitstream (trailing bytes)")
    return h, w, shape, strings, lmbda


def _is_nested(shape: Any) -> bool:
    return (
        not isinstance(shape, dict)
        and len(shape) > 0
        and isinstance(shape[0], (list, tuple, dict))
        and not hasattr(shape, "numel")
    )


# --- the codec ---------------------------------------------------------------------------------
class NeuralCodec(Codec):
    """Wrap a CompressAI-style model (``compress``, ``decompress``, ``forward``).

    Options: ``estimate`` (False), ``pad`` ("replicate" | "zero"), ``batch_size`` (4, estimate
    mode only), ``device`` ("cpu"), ``lmbda`` (variable-rate models only).
    """

    OPTIONS = {
        "estimate": False,
        "pad": "replicate",
        "batch_size": 4,
        "device": "cpu",
        "lmbda": None,
    }

    def __init__(
        self,
        model: Any,
        *,
        name: str = "nic",
        meta: dict[str, Any] | None = None,
        source: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.name = name
        super().__init__(**options)
        import compressai

        self.version = f"compressai {compressai.__version__}"
        self.meta = dict(meta or {})
        self.source = dict(source or {})
        if self.options["pad"] not in ("replicate", "zero"):
            raise UsageError(
                f"{name}: pad must be 'replicate' or 'zero', got {self.options['pad']!r}"
            )
        if int(self.options["batch_size"]) < 1:
            raise UsageError(f"{name}: batch_size must be at least 1")
        self.model = model
        self.knob = self._make_knob()
        lmbda = self.options.pop("lmbda")
        self.options["lmbda"] = None
        if lmbda is not None:
            if self.knob is None or self.knob.param != "lmbda":
                raise UsageError(f"{name} is not a variable-rate model; it takes no lmbda")
            self.setting = self.knob.validate(lmbda, name)
        if model is not None:
            self.model = model.to(self.options["device"]).eval()

    def _make_knob(self) -> Knob | None:
        if not self.meta.get("variable_rate", hasattr(self.model, "set_lmbda")):
            return None
        lo = float(self.meta.get("lmbda_min", VR_LMBDA_RANGE[0]))
        hi = float(self.meta.get("lmbda_max", VR_LMBDA_RANGE[1]))
        return Knob(
            "lmbda",
            lo,
            hi,
            integer=False,
            log=True,
            meaning="rate-distortion trade-off lambda of the variable-rate model",
        )

    def config(self) -> dict[str, Any]:
        """Codec, compressai version, model identity, rate setting, output-relevant options."""
        cfg: dict[str, Any] = {"codec": self.name, "version": self.version}
        for key in ("architecture", "N", "M", "variable_rate"):
            if key in self.meta:
                cfg[key] = self.meta[key]
        cfg.update(self.source)
        if self.knob is not None:
            cfg[self.knob.param] = self.setting
        cfg.update({k: self.options[k] for k in ("estimate", "pad", "device")})
        cfg["pad_multiple"] = PAD_MULTIPLE
        return cfg

    # --- helpers ---
    def _tensor(self, images: Sequence[np.ndarray]) -> Any:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
        h, w = x.shape[-2:]
        ph = (-h) % PAD_MULTIPLE
        pw = (-w) % PAD_MULTIPLE
        if ph or pw:
            if self.options["pad"] == "replicate":
                x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            else:
                x = F.pad(x, (0, pw, 0, ph), mode="constant", value=0.0)
        return x.to(self.options["device"])

    @staticmethod
    def _to_numpy(x_hat: Any, h: int, w: int) -> np.ndarray:
        x = x_hat[..., :h, :w].clamp(0.0, 1.0).permute(0, 2, 3, 1)
        return x.detach().cpu().numpy().astype(np.float32)

    def _apply_rate(self) -> None:
        if self.knob is not None and self.knob.param == "lmbda":
            if not hasattr(self.model, "set_lmbda"):
                raise UsageError(f"{self.name}: the model has no set_lmbda for variable rate")
            self.model.set_lmbda(float(self.setting))  # type: ignore[arg-type]

    # --- coding ---
    def compress(self, image: np.ndarray) -> CodecResult:
        """Code one image (real entropy coding, or the likelihood estimate)."""
        return self.compress_batch([image])[0]

    def compress_batch(self, images: Sequence[np.ndarray]) -> list[CodecResult]:
        """Code several images; estimate mode stacks same-size images into batches."""
        import torch

        images = [check_image(im) for im in images]
        self._require_setting()
        if self.model is None:
            raise UsageError(f"codec {self.name} has no model loaded")
        results: list[CodecResult | None] = [None] * len(images)
        with torch.inference_mode():
            self._apply_rate()
            if not self.options["estimate"]:
                for i, im in enumerate(images):
                    results[i] = self._code_one(im)
            else:
                groups: dict[tuple[int, ...], list[int]] = {}
                for i, im in enumerate(images):
                    groups.setdefault(im.shape, []).append(i)
                bs = int(self.options["batch_size"])
                for idx in groups.values():
                    for start in range(0, len(idx), bs):
                        chunk = idx[start : start + bs]
                        for i, res in zip(
                            chunk, self._estimate([images[j] for j in chunk]), strict=True
                        ):
                            results[i] = res
        for r in results:
            r.setting = self.setting  # type: ignore[union-attr]
        return results  # type: ignore[return-value]

    def _code_one(self, image: np.ndarray) -> CodecResult:
        h, w = image.shape[:2]
        out = self.model.compress(self._tensor([image]))
        strings = [group[0] for group in out["strings"]]
        variable = self.knob is not None and self.knob.param == "lmbda"
        lmbda = float(self.setting) if variable else None  # type: ignore[arg-type]
        data = pack_bitstream(h, w, out["shape"], strings, lmbda)
        payload = _payload_bytes(strings)
        rec = self._decompress(strings, out["shape"], h, w)
        return CodecResult(data, rec, float(8 * payload), header_bytes=len(data) - payload)

    def _decompress(self, strings: list[Any], shape: Any, h: int, w: int) -> np.ndarray:
        out = self.model.decompress([[s] for s in strings], shape)
        return self._to_numpy(out["x_hat"], h, w)[0]

    def _estimate(self, images: list[np.ndarray]) -> list[CodecResult]:
        import torch

        h, w = images[0].shape[:2]
        out = self.model(self._tensor(images))
        bits = torch.zeros(len(images), dtype=torch.float64)
        for lik in _flatten(out["likelihoods"]):
            bits -= torch.log2(lik.double()).flatten(1).sum(dim=1).cpu()
        rec = self._to_numpy(out["x_hat"], h, w)
        return [CodecResult(b"", rec[i], float(bits[i])) for i in range(len(images))]

    def decode(self, bitstream: bytes) -> np.ndarray:
        """Decode a bitstream written by real-mode :meth:`compress` (same model and device)."""
        import torch

        if self.model is None:
            raise UsageError(f"codec {self.name} has no model loaded")
        h, w, shape, strings, lmbda = unpack_bitstream(bitstream)
        try:
            shape = _sizes(shape)
        except (TypeError, ValueError):
            raise DataError("corrupt NIC bitstream (bad latent shape)") from None
        with torch.inference_mode():
            if lmbda is not None:
                if not hasattr(self.model, "set_lmbda"):
                    raise DataError("bitstream is from a variable-rate model; this model is not")
                self.model.set_lmbda(float(lmbda))
            return self._decompress(strings, shape, h, w)


def _flatten(likelihoods: Any) -> list[Any]:
    if isinstance(likelihoods, dict):
        return [t for v in likelihoods.values() for t in _flatten(v)]
    if isinstance(likelihoods, (list, tuple)):
        return [t for v in likelihoods for t in _flatten(v)]
    return [likelihoods]


def _cache_get(key: tuple, load: Any) -> tuple[Any, dict]:
    if key in _MODEL_CACHE:
        _MODEL_CACHE.move_to_end(key)
        return _MODEL_CACHE[key]
    from ..runtime import keep_heap

    keep_heap()  # a process that runs a network: no mmap/munmap of its activations per layer
    value = load()
    _MODEL_CACHE[key] = value
    while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
        _MODEL_CACHE.popitem(last=False)
    return value


# --- CompressAI zoo ----------------------------------------------------------------------------
class ZooCodec(NeuralCodec):
    """A pretrained CompressAI zoo model, ``zoo:<arch>``; ``quality`` picks the weights.

    Options: ``metric`` ("mse" | "ms-ssim"), ``pretrained`` (True; False builds untrained weights
    with refreshed entropy tables, for tests), plus the :class:`NeuralCodec` options.
    """

    OPTIONS = {**NeuralCodec.OPTIONS, "metric": "mse", "pretrained": True}

    def __init__(self, arch: str, **options: Any) -> None:
        from compressai.zoo import image as zoo_image

        if arch not in ZOO_ARCHS or arch not in zoo_image.cfgs:
            raise UsageError(
                f"unknown CompressAI zoo model {arch!r}; choose from {', '.join(ZOO_ARCHS)}"
            )
        self.arch = arch
        self._qualities = sorted(zoo_image.cfgs[arch])
        super().__init__(None, name=f"zoo:{arch}", meta={"architecture": arch}, **options)
        if self.options["metric"] not in ("mse", "ms-ssim"):
            raise UsageError(f"{self.name}: metric must be 'mse' or 'ms-ssim'")
        self.source = {
            "metric": self.options["metric"],
            "pretrained": bool(self.options["pretrained"]),
        }

    def _make_knob(self) -> Knob:
        return Knob(
            "quality",
            self._qualities[0],
            self._qualities[-1],
            integer=True,
            meaning="CompressAI zoo quality index",
        )

    def at(self, value: float) -> Codec:
        """This zoo architecture at ``quality`` (loads the weights, cached in memory)."""
        new = super().at(value)
        assert isinstance(new, ZooCodec)
        q = int(new.setting)  # type: ignore[arg-type]
        metric, pretrained, device = (
            self.options["metric"],
            bool(self.options["pretrained"]),
            self.options["device"],
        )
        model, _ = _cache_get(
            ("zoo", self.arch, metric, q, pretrained, device),
            lambda: (_load_zoo(self.arch, metric, q, pretrained).to(device).eval(), {}),
        )
        new.model = model
        new.source = {**self.source}
        if pretrained:
            from compressai.zoo import image as zoo_image

            new.source["url"] = zoo_image.model_urls[self.arch][metric][q]
        return new


def _load_zoo(arch: str, metric: str, quality: int, pretrained: bool) -> Any:
    import compressai.zoo
    import torch
    from compressai.zoo import image as zoo_image

    if not pretrained:
        model = compressai.zoo.image_models[arch](quality=quality, metric=metric, pretrained=False)
        model.update(force=True)
        return model
    url = zoo_image.model_urls.get(arch, {}).get(metric, {}).get(quality)
    if url is None:
        raise UsageError(f"CompressAI publishes no {metric} weights for {arch} quality {quality}")
    try:
        return compressai.zoo.image_models[arch](
            quality=quality, metric=metric, pretrained=True, progress=False
        )
    except Exception as exc:  # network and file errors come in many types
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise DataError(
            f"could not load CompressAI weights {url} ({type(exc).__name__}); "
            f"put the file in {cache} to work offline"
        ) from None


# --- our own checkpoints -----------------------------------------------------------------------
def _load_checkpoint_cached(path: Path, device: str) -> tuple[Any, dict]:
    from ..io import sha256_file

    try:
        from ..nic.models import load_checkpoint
    except ImportError as exc:
        raise UsageError(f"checkpoint codecs need nicspec_utils.models ({exc})") from None
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    st = path.stat()

    def load() -> tuple[Any, dict]:
        model, meta = load_checkpoint(path, device=device)
        return model, {**meta, "sha256": sha256_file(path)}

    return _cache_get(("ckpt", str(path.resolve()), st.st_mtime_ns, st.st_size, device), load)


def checkpoint_codec(
    path: str | os.PathLike[str], shipped: str | None = None, **options: Any
) -> NeuralCodec:
    """``checkpoint:<path>`` (or ``nic:<name>`` when ``shipped`` is given). A relative path
    that is not in the working folder is taken from the project root, so a checkpoint in the
    repository (``checkpoint:data/models/ladder/x.pt``) keeps one name, and one store key, on
    every checkout."""
    from ..cache import project_root

    p = Path(path).expanduser()
    where = p if p.is_absolute() or p.exists() else project_root() / p
    model, meta = _load_checkpoint_cached(where, str(options.get("device", "cpu")))
    name = f"nic:{shipped}" if shipped else f"checkpoint:{p}"
    source: dict[str, Any] = {"checkpoint_sha256": meta["sha256"]}
    if shipped:
        source["shipped"] = shipped
    else:
        source["checkpoint"] = p.name
    return NeuralCodec(model, name=name, meta=meta, source=source, **options)


def shipped_codec(name: str, **options: Any) -> NeuralCodec:
    """``nic:<name>``: a model shipped in data/models (see data/models/manifest.json)."""
    try:
        from ..nic.models import resolve_shipped
    except ImportError as exc:
        raise UsageError(f"nic: codecs need nicspec_utils.models ({exc})") from None
    return checkpoint_codec(resolve_shipped(name), shipped=name, **options)
