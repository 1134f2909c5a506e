"""Kernel-free ipywidgets: stacks switched by dropdowns through browser-side links only, so a
page built from an executed notebook stays interactive without a running kernel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def linked_stack(children: Iterable[Any], picker: Any) -> Any:
    """A ``Stack`` of ``children`` whose visible child follows ``picker.index`` (a ``jslink``)."""
    import ipywidgets as w

    stack = w.Stack(list(children), selected_index=0)
    w.jslink((picker, "index"), (stack, "selected_index"))
    return stack


# Pictures embedded in a widget's saved state travel base64-encoded inside the page's HTML:
# WebP (every current browser shows it) weighs about half of a JPEG of the same look.
PREVIEW_FORMATS = ("webp", "jpeg", "png")
PREVIEW_FORMAT = "webp"
FORMAT_NAMES = {"webp": "WebP", "jpeg": "JPEG", "png": "PNG"}


def encode_preview(img: Any, fmt: str = PREVIEW_FORMAT, quality: int = 80) -> bytes:
    """An ``HxWx3 uint8`` array (or a PIL image) as the bytes a widget ``Image`` embeds: WebP or
    JPEG at ``quality`` (JPEG without chroma subsampling), or PNG."""
    import io

    import numpy as np
    from PIL import Image

    from .errors import UsageError

    if fmt not in PREVIEW_FORMATS:
        raise UsageError(f"preview format must be one of {', '.join(PREVIEW_FORMATS)}, got {fmt!r}")
    image = img if isinstance(img, Image.Image) else Image.fromarray(np.ascontiguousarray(img))
    if fmt != "png" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buf = io.BytesIO()
    if fmt == "webp":
        image.save(buf, format="WEBP", quality=int(quality), method=6)
    elif fmt == "jpeg":
        image.save(buf, format="JPEG", quality=int(quality), subsampling=0)
    else:
        image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
