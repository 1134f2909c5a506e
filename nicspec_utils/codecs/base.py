"""The codec interface: :class:`Codec`, :class:`CodecResult`, the rate knob and input checks."""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from ..errors import DataError, UsageError

MIN_SIDE = 32


@dataclass
class CodecResult:
    """One coded image.

    ``bits`` is ``len(bitstream) * 8`` for every codec except NIC: there it counts only the
    entropy-coded strings (as CompressAI and the paper do) and ``header_bytes`` says how many bytes
    of ``bitstream`` (our container: magic, image size, latent shape) it leaves out; in NIC estimate
    mode it is the likelihood estimate and ``bitstream`` is ``b""``.
    """

    bitstream: bytes
    reconstruction: np.ndarray
    bits: float
    header_bytes: int = 0
    setting: float | None = None

    @property
    def bpp(self) -> float:
        """Bits per pixel of the input image (the reconstruction has the input's size)."""
        h, w = self.reconstruction.shape[:2]
        return float(self.bits) / float(h * w)


@dataclass(frozen=True)
class Knob:
    """The codec setting that controls the rate.

    ``lo``..``hi`` is the accepted range; ``search`` the range rate matching explores
    (default the accepted one). ``increasing`` says whether bpp grows with the value.
    """

    param: str
    lo: float
    hi: float
    integer: bool
    increasing: bool = True
    log: bool = False
    search: tuple[float, float] | None = None
    meaning: str = ""

    @property
    def search_range(self) -> tuple[float, float]:
        """The (low value, high value) rate matching explores."""
        return self.search if self.search is not None else (self.lo, self.hi)

    def validate(self, value: float, codec: str) -> float | int:
        """Return ``value`` as the knob's type; UsageError when out of range or not integral."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{codec}: {self.param} must be a number, got {value!r}") from None
        if not math.isfinite(v) or not self.lo <= v <= self.hi:
            raise UsageError(
                f"{codec}: {self.param} must be in {self.lo:g}..{self.hi:g}, got {v:g}"
            )
        if self.integer:
            if v != round(v):
                raise UsageError(f"{codec}: {self.param} must be an integer, got {v:g}")
            return int(round(v))
        return v


def check_image(image: Any) -> np.ndarray:
    """Check a codec input: HxWx3 uint8 (UsageError otherwise), each side >= 32 px (DataError)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise UsageError(f"codec input must be an HxWx3 uint8 RGB array, got shape {shape}")
    if image.dtype != np.uint8:
        raise UsageError(f"codec input must be an HxWx3 uint8 RGB array, got dtype {image.dtype}")
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DataError(f"image is {w}x{h}; codecs need at least {MIN_SIDE} px a side")
    return np.ascontiguousarray(image)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1] (k/255)."""
    return image.astype(np.float32) / np.float32(255.0)


def pil_decode(data: bytes, what: str) -> np.ndarray:
    """Decode an image file held in memory to HxWx3 uint8 with Pillow."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot decode {what} bitstream: {exc}") from None


class Codec:
    """Base class: subclasses set ``name``, ``version``, ``knob``, ``OPTIONS`` and ``_compress``.

    Options are keyword arguments checked against ``OPTIONS`` (name -> default). The rate setting
    (``quality``, a compression ratio, a QP or lambda, see ``knob``) is set with :meth:`at`.
    """

    name: str = ""
    version: str = ""
    knob: Knob | None = None
    OPTIONS: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            takes = ", ".join(self.OPTIONS) or "no options"
            raise UsageError(
                f"codec {self.name} does not take option(s) {', '.join(unknown)}; it takes: {takes}"
            )
        self.options: dict[str, Any] = {**self.OPTIONS, **options}
        self.setting: float | int | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.config()}>"

    # --- rate setting -------------------------------------------------------------------------
    def at(self, value: float) -> Codec:
        """A copy of this codec with the rate setting ``value`` (validated)."""
        if self.knob is None:
            raise UsageError(f"codec {self.name} has a fixed rate; it takes no quality setting")
        new = copy.copy(self)
        new.options = dict(self.options)
        new.setting = self.knob.validate(value, self.name)
        return new

    def for_bpp(self, bpp: float) -> Codec | None:
        """This codec set by its own rate control to aim at ``bpp``, or None when it has none
        (the registry then wraps it in per-image rate matching, :mod:`codecs.ratematch`)."""
        if self.knob is None:
            raise UsageError(f"codec {self.name} has a fixed rate; it cannot aim at a bpp")
        return None

    def _require_setting(self) -> None:
        if self.knob is not None and self.setting is None:
            raise UsageError(f"codec {self.name} needs a {self.knob.param} or a bpp target")

    # --- coding -------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Everything that determines the output (for cache keys)."""
        cfg: dict[str, Any] = {"codec": self.name, "version": self.version}
        if self.knob is not None:
            cfg[self.knob.param] = self.setting
        cfg.update(self.options)
        return cfg

    def compress(self, image: np.ndarray) -> CodecResult:
        """Code one HxWx3 uint8 image; the reconstruction is decoded from the real bitstream."""
        image = check_image(image)
        self._require_setting()
        result = self._compress(image)
        result.setting = self.setting
        return result

    def compress_batch(self, images: Sequence[np.ndarray]) -> list[CodecResult]:
        """Code several images (default: one at a time)."""
        return [self.compress(im) for im in images]

    def decode(self, bitstream: bytes) -> np.ndarray:
        """Decode a stand-alone bitstream to an HxWx3 float32 reconstruction."""
        raise UsageError(f"codec {self.name} cannot decode a stand-alone bitstream")

    def _compress(self, image: np.ndarray) -> CodecResult:
        raise NotImplementedError


def compress_each(codecs: Sequence[Codec], images: Sequence[np.ndarray]) -> list[CodecResult]:
    """Code ``images[k]`` with ``codecs[k]`` (each its own setting): in one batch where all
    codecs are of one class with a ``compress_pairs`` class method (``jpeg2000-ffmpeg``: one
    encode and one decode process), else one by one."""
    if len(codecs) != len(images):
        raise UsageError(f"{len(codecs)} codecs for {len(images)} images")
    kinds = {type(c) for c in codecs}
    pairs = getattr(kinds.pop(), "compress_pairs", None) if len(kinds) == 1 else None
    if pairs is not None:
        return list(pairs(codecs, images))
    return [c.compress(x) for c, x in zip(codecs, images, strict=True)]
