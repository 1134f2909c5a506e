"""Every codec behind one interface: ``get_codec(name, quality=None, bpp=None, **options)``.

Names (see each class for its options):

===================== ==========================================================================
``none``              identity; 24 bpp of raw RGB
``jpeg``              Pillow/libjpeg, quality 1..95
``jpeg2000``          Pillow/OpenJPEG, 9/7 + colour transform; ``bpp=`` or quality = compression
                      ratio (bpp = 24 / quality)
``jpeg2000-ffmpeg``   the paper's JPEG2000: OpenJPEG through ffmpeg (``yuv444p``, 5/3, JP2 file);
                      same rate semantics as ``jpeg2000`` (ratio rounded to an even integer)
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

import os
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
from .jpeg2000_ffmpeg import Jpeg2000FfmpegCodec, ffmpeg_unavailable
from .ratematch import RateTargetCodec, match_rate

__all__ = [
    "Codec",
    "CodecResult",
    "Knob",
    "RateTargetCodec",
    "check_image",
    "codec_names",
    "ffmpeg_unavailable",
    "get_codec",
    "jpeg2000_note",
    "jpeg2000_path",
    "jpeg2000_psnr_tol",
    "match_rate",
    "reference_jpeg2000",
    "vtm_unavailable",
]

CLASSIC: dict[str, type[Codec]] = {
    "none": NoneCodec,
    "jpeg": JpegCodec,
    "jpeg2000": Jpeg2000Codec,
    "jpeg2000-ffmpeg": Jpeg2000FfmpegCodec,
    "webp": WebpCodec,
    "avif": AvifCodec,
    "hevc": HevcCodec,
    "vtm": VtmCodec,
}
# Codec names of neural codecs: CompressAI's zoo, a checkpoint file, a shipped model.
PREFIXES = ("zoo:", "checkpoint:", "nic:")


def is_neural_name(name: str) -> bool:
    """Whether a codec name names a neural codec (by its prefix)."""
    return name.startswith(PREFIXES)


def codec_names() -> list[str]:
    """Names accepted by :func:`get_codec` (``checkpoint:PATH`` and ``nic:NAME`` are patterns)."""
    from .neural import ZOO_ARCHS

    return [*CLASSIC, *(f"zoo:{a}" for a in ZOO_ARCHS), "checkpoint:PATH", "nic:NAME"]


DEVICE_ENV = "NICSPEC_DEVICE"
JPEG2000_ENV = "NICSPEC_JPEG2000"
JPEG2000_PATHS = {"pillow": "jpeg2000", "ffmpeg": "jpeg2000-ffmpeg"}


def reference_jpeg2000() -> str:
    """The JPEG2000 codec name to use as the reference (for the chapters to call).

    ``$NICSPEC_JPEG2000``: "ffmpeg" (the paper's path, ``jpeg2000-ffmpeg``), "pillow"
    (``jpeg2000``) or "auto"/unset: the paper's path where ffmpeg with libopenjpeg is installed,
    else Pillow's. UsageError for "ffmpeg" without ffmpeg, or for another value.
    """
    import os

    choice = os.environ.get(JPEG2000_ENV, "auto").strip().lower() or "auto"
    if choice == "auto":
        return JPEG2000_PATHS["ffmpeg" if ffmpeg_unavailable() is None else "pillow"]
    if choice not in JPEG2000_PATHS:
        raise UsageError(f"{JPEG2000_ENV} must be auto, ffmpeg or pillow, got {choice!r}")
    if choice == "ffmpeg" and (why := ffmpeg_unavailable()) is not None:
        raise UsageError(f"{JPEG2000_ENV}=ffmpeg but {why}")
    return JPEG2000_PATHS[choice]


def jpeg2000_path(choice: str | None = "") -> str:
    """A chapter's ``jpeg2000_codec`` parameter as a codec name: empty -> the reference
    (:func:`reference_jpeg2000`), ``pillow`` / ``ffmpeg`` or a codec name -> that path
    (UsageError for anything else, or for ffmpeg's path where ffmpeg cannot run)."""
    c = (choice or "").strip().lower()
    if not c:
        return reference_jpeg2000()
    name = JPEG2000_PATHS.get(c, c)
    if name not in JPEG2000_PATHS.values():
        raise UsageError(f"jpeg2000_codec must be empty, pillow, ffmpeg, jpeg2000 or "
                         f"jpeg2000-ffmpeg, got {choice!r}")  # fmt: skip
    if name == "jpeg2000-ffmpeg" and (why := ffmpeg_unavailable()) is not None:
        raise UsageError(why)
    return name


def jpeg2000_psnr_tol(name: str) -> float:
    """The PSNR tolerance (dB) the JPEG2000 path ``name`` matches a target PSNR to by default
    (``target_psnr``): ffmpeg's even ratios :data:`jpeg2000_ffmpeg.PSNR_TOL`, Pillow's
    :data:`ratematch.PSNR_TOL`."""
    from . import jpeg2000_ffmpeg, ratematch

    return jpeg2000_ffmpeg.PSNR_TOL if name == "jpeg2000-ffmpeg" else ratematch.PSNR_TOL


def jpeg2000_note(name: str) -> str:
    """One paragraph (Markdown) for a chapter's page: which JPEG2000 path ``name`` is, why it
    ran here (:func:`reference_jpeg2000`, ``$NICSPEC_JPEG2000``) and how the two paths differ."""
    if name not in JPEG2000_PATHS.values():
        paths = " or ".join(JPEG2000_PATHS.values())
        raise UsageError(f"not a JPEG2000 path: {name!r}; choose {paths}")
    version = _create(name).version
    if name == "jpeg2000-ffmpeg":
        what = (
            f"**the paper's path**, OpenJPEG through ffmpeg (`jpeg2000-ffmpeg`, {version}: RGB "
            "converted to `yuv444p`, OpenJPEG's default reversible 5/3 wavelet, a JP2 file, the "
            "compression ratio rounded to an even integer)"
        )
    else:
        what = (
            f"**Pillow's OpenJPEG** (`jpeg2000`, {version}: the irreversible 9/7 wavelet with "
            "OpenJPEG's own colour transform, a raw codestream, any compression ratio)"
        )
    choice = os.environ.get(JPEG2000_ENV, "").strip().lower()
    if choice in JPEG2000_PATHS:
        why = f"`{JPEG2000_ENV}={choice}` chose it"
    elif name == "jpeg2000-ffmpeg":
        why = "ffmpeg with libopenjpeg is installed, so the paper's path is the reference"
    elif (missing := ffmpeg_unavailable()) is not None:
        why = f"the paper's path cannot run here ({missing})"
    else:
        why = "the chapter's `jpeg2000_codec` parameter chose it"
    return (
        f"JPEG2000 on this page is {what}: {why}. The two paths differ mostly by their wavelet: "
        "at the same rate Pillow's 9/7 reconstructs better than the 5/3 the paper's ffmpeg "
        "leaves OpenJPEG at (chapter 2 measures both against CompressAI's published JPEG2000 "
        f"curve; `{JPEG2000_ENV}=pillow|ffmpeg` or the chapter's `jpeg2000_codec` parameter "
        "picks one)."
    )


def vtm_unavailable() -> str | None:
    """Why the ``vtm`` codec cannot run here (one line: ``NICSPEC_VTM_DIR`` unset, or not a
    working VTM build), or None when it can (its encoder answers ``--help``)."""
    from .classic import VTM_ENV

    if not os.environ.get(VTM_ENV, "").strip():
        return f"{VTM_ENV} is not set"
    try:
        VtmCodec()
    except UsageError as exc:
        return str(exc)
    return None


def _create(name: str, **options: Any) -> Codec:
    if name in CLASSIC:
        return CLASSIC[name](**options)
    if name.startswith(PREFIXES):
        # NICSPEC_DEVICE (e.g. cuda) sets where neural codecs run unless an option says; set it
        # on the client, so the device enters the results key the tasks are planned under.
        options.setdefault("device", os.environ.get(DEVICE_ENV, "").strip() or "cpu")
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
        native = codec.for_bpp(bpp)
        if native is not None:
            return native
        from .ratematch import RateTargetCodec

        return RateTargetCodec(codec, bpp)
    if quality is not None:
        return codec.at(quality)
    return codec
