"""Atomic file writes and robust image reading."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError, UsageError

MIN_IMAGE_SIDE = 32
MAX_PIXELS_ENV = "NICSPEC_MAX_PIXELS"
# 12 MP: three times CLIC's largest image (2048x2048); a 4000x4000 photo would need gigabytes.
DEFAULT_MAX_PIXELS = 12_000_000
# A temporary of ours: ".<target name>.<writer pid>.<random>.tmp" beside the target.
# (the random part is tempfile's 8 characters, so the pid is always the next-to-last field)
_TMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")
_OLD_TMP_PATTERN = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # before the pid was in the name
STALE_TMP_AGE_S = 3600.0
_swept: set[str] = set()  # folders already swept of stale temporaries by this process


@functools.lru_cache(maxsize=1)
def _file_mode() -> int:
    """0666 less the umask (0644 with the usual 022): what ``open()`` would have created."""
    mask = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                mask = int(line.split()[1], 8)
    if mask is None:  # not Linux: read the umask by setting it (once, cached)
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists (another user's) or cannot tell: keep its file
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove our own temporaries (``.NAME.PID.XXXX.tmp``) left in ``folder`` by a killed writer:
    those whose writer process is gone, or older than an hour. Returns what was removed."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        match = _TMP_PATTERN.match(name)
        if match is None and not _OLD_TMP_PATTERN.match(name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_AGE_S
            pid = int(match["pid"]) if match else None
            dead = pid is not None and pid != os.getpid() and not _pid_alive(pid)
            if old or dead:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed


def _sweep_once(folder: Path) -> None:
    key = str(folder.resolve())
    if key not in _swept:
        remove_stale_temporaries(folder)
        _swept.add(key)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def check_output_folder(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """DataError, before any work, when ``path`` cannot become a writable folder: it (or a
    parent) is a file, or the nearest existing parent is not writable. Creates nothing."""
    target = Path(path).expanduser()
    probe = target
    while not probe.exists():
        if probe.is_symlink():  # a dangling link: mkdir would fail on it
            raise DataError(f"{what} {target}: {probe} is a broken symbolic link")
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is a file" if probe == target else f"is inside {probe}, which is a file"
        raise DataError(f"{what} {target} {where}, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise DataError(f"{what} {target}: the folder {probe} is not writable")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The file gets the usual mode (0666 less the umask, not mkstemp's 0600) and is fsynced
    before the rename, the folder after it. Temporaries that a killed writer left beside
    ``path`` are removed the first time this process writes into that folder.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(target.parent)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp"
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fchmod(fd, _file_mode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
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


def max_pixels() -> int:
    """The largest image (width x height) read: NICSPEC_MAX_PIXELS, default 12 million."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(float(value)) if "e" in value.lower() else int(value)
    except (ValueError, OverflowError):
        limit = 0
    if limit < 1:
        raise UsageError(f"{MAX_PIXELS_ENV}={value!r}: give a positive number of pixels")
    return limit


def check_pixels(width: int, height: int, name: str | os.PathLike[str]) -> None:
    """DataError if an image of ``width`` x ``height`` exceeds :func:`max_pixels`."""
    limit = max_pixels()
    if width * height > limit:
        raise DataError(
            f"image {name} is {width}x{height} ({width * height / 1e6:.1f} MP), above the limit "
            f"of {limit / 1e6:.1f} MP; set {MAX_PIXELS_ENV} (pixels) to raise it"
        )


@contextlib.contextmanager
def _opened(p: Path) -> Iterator[Image.Image]:
    """The image file opened lazily (nothing decoded yet), its size checked against the pixel
    limit; every failure a one-line DataError."""
    limit = max_pixels()
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit  # a limit raised on purpose raises Pillow's bomb check
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img_cm = Image.open(p)
        with img_cm as img:
            check_pixels(*img.size, p)
            yield img
    except FileNotFoundError:
        raise DataError(f"image not found: {p}") from None
    except Image.DecompressionBombError as exc:  # Pillow's check, at open, above ~179 MP
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found[1]) / 1e6:.1f} MP" if found else "too large"
        raise DataError(
            f"image {p} is {size}, above the limit of {limit / 1e6:.1f} MP; "
            f"set {MAX_PIXELS_ENV} (pixels) to raise it"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image {p}: {exc}") from None
    except MemoryError:
        raise DataError(f"cannot read image {p}: out of memory") from None


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of an image file from its header (no pixel decoded), within the limit."""
    with _opened(Path(path)) as img:
        return img.size


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB; clear DataError for unreadable, tiny or huge
    images (the size is checked from the header, before any pixel is decoded)."""
    p = Path(path)
    with _opened(p) as img:
        sixteen = any(";16" in str(getattr(t, "args", "")) for t in getattr(img, "tile", []))
        img.load()
        arr = to_rgb_uint8(img, name=p.name, sixteen_bit=sixteen)
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
