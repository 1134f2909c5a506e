"""Every codec behind one interface: ``get_codec(name, quality=None, bpp=None, **options)``.

Names (see each class for its options):

===================== ==========================================================================
``none``              identity; 24 bpp of raw RGB
``jpeg``              Pillow/libjpeg, quality 1..95
``jpeg2000``          Pillow/OpenJPEG, 9/7 + colour transform; ``bpp=`` or quality = compression
                      ratio (bpp = 24 / quality)
``webp``, ``avif``    Pillow (libwebp; libavif + aom, 4:4:4 by default), quality 0..100
``hevc``              pillow-heif (libheif + x265), 8-bit 4:4:4 by default, quality 0..100
``vtm``               VTM EncoderAppStatic/DecoderAppStatic (``vtm_dir`` or NICSPEC_VTM_DIR),
                      quality = QP 0..63
``zoo:<arch>``        CompressAI pretrained zoo model, quality 1..8 (cheng2020: 1..6), metric
``checkpoint:<path>`` a checkpoint read by ``nicspec_utils.models.load_checkpoint``
``nic:<name>``        a model shipped in data/models (``models.resolve_shipped``)
===================== ==========================================================================

``quality`` and ``bpp`` are exclusive. ``bpp=`` on a quality-based codec matches the rate image by
image (see :mod:`.ratematch`); use :func:`match_rate` for one setting over a set of images.
Variable-rate NIC models take ``lmbda=`` (``quality=`` is accepted as the same thing).
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .base import Codec, CodecResult, Knob, check_image
from .classic import (
    AvifCodec,
    HevcCodec,
    Jpeg2000Codec,
    JpegCodec,
    NoneCodec,
    VtmCodec,
    WebpCodec,
)
from .ratematch import RateTargetCodec, match_rate

__all__ = [
    "Codec",
    "CodecResult",
    "Knob",
    "RateTargetCodec",
    "check_image",
    "codec_names",
    "get_codec",
    "match_rate",
]

CLASSIC: dict[str, type[Codec]] = {
    "none": NoneCodec,
    "jpeg": JpegCodec,
    "jpeg2000": Jpeg2000Codec,
    "webp": WebpCodec,
    "avif": AvifCodec,
    "hevc": HevcCodec,
    "vtm": VtmCodec,
}
PREFIXES = ("zoo:", "checkpoint:", "nic:")


def codec_names() -> list[str]:
    """Names accepted by :func:`get_codec` (``checkpoint:PATH`` and ``nic:NAME`` are patterns)."""
    from .neural import ZOO_ARCHS

    return [*CLASSIC, *(f"zoo:{a}" for a in ZOO_ARCHS), "checkpoint:PATH", "nic:NAME"]


def _create(name: str, **options: Any) -> Codec:
    if name in CLASSIC:
        return CLASSIC[name](**options)
    if name.startswith(PREFIXES):
        from . import neural

        prefix, _, rest = name.partition(":")
        if not rest:
            raise UsageError(f"codec name {name!r} needs something after '{prefix}:'")
        if prefix == "zoo":
            return neural.ZooCodec(rest, **options)
        if prefix == "checkpoint":
            return neural.checkpoint_codec(rest, **options)
        return neural.shipped_codec(rest, **options)
    raise UsageError(f"unknown codec {name!r}; choose from {', '.join(codec_names())}")


def get_codec(
    name: str, quality: float | None = None, bpp: float | None = None, **options: Any
) -> Codec:
    """Build a codec by name; set its rate with ``quality`` or aim at ``bpp`` (not both).

    With neither, the codec has no rate setting yet (fine for ``none`` and fixed-rate NIC; others
    raise UsageError when asked to compress; :func:`match_rate` fills it in).
    """
    if quality is not None and bpp is not None:
        raise UsageError("give either quality or bpp, not both")
    codec = _create(name, **options)
    if bpp is not None:
        return codec.for_bpp(bpp)
    if quality is not None:
        return codec.at(quality)
    return codec
