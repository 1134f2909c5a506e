"""Atomic file writes and robust image reading."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError

MIN_IMAGE_SIDE = 32


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers never see a partial file."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Save arrays to a compressed NPZ, atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_rgb_uint8(img: Image.Image, name: str = "image", sixteen_bit: bool = False) -> np.ndarray:
    """Convert any PIL image (greyscale, palette, RGBA, 16-bit) to an HxWx3 uint8 array."""
    notes = []
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
        notes.append("16-bit scaled to 8-bit")
    elif sixteen_bit:
        notes.append("16-bit reduced to 8-bit")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
        notes.append("alpha composited on white")
    if img.mode != "RGB":
        if img.mode in ("L", "1"):
            notes.append("greyscale replicated to RGB")
        img = img.convert("RGB")
    if notes:
        warnings.warn(f"{name}: {', '.join(notes)}", stacklevel=2)
    return np.asarray(img, dtype=np.uint8).copy()


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB; clear DataError for unreadable or tiny images."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            sixteen = any(";16" in str(getattr(t, "args", "")) for t in img.tile)
            img.load()
            arr = to_rgb_uint8(img, name=p.name, sixteen_bit=sixteen)
    except FileNotFoundError:
        raise DataError(f"image not found: {p}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image {p}: {exc}") from None
    h, w = arr.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise DataError(f"image {p} is {w}x{h}; images must be at least {MIN_IMAGE_SIDE} px a side")
    return arr


def encode_png(arr: np.ndarray) -> bytes:
    """Encode an HxWx3 uint8 array as PNG bytes (deterministic)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def write_png_atomic(path: str | os.PathLike[str], arr: np.ndarray) -> str:
    """Write an RGB uint8 array as PNG atomically; return the file's sha256."""
    data = encode_png(arr)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()
