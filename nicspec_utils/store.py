"""The results store: content-addressed keys and one record per (configuration, image).

Every evaluation lives in ``<results>/<key>/`` (:func:`cache.results_dir`, one rule for the CLI,
the engines and the book): ``records.parquet`` (one row per image: rate, PSNR and MS-SSIM
w.r.t. the input and the clean image, band energies of every error map, timings),
``spectra.npz`` (the mean maps, :func:`save_maps`) and ``metrics.json`` (the means and the
configuration; written last, so its presence marks a finished entry). The key hashes the
configuration, the sha256 of every input image's bytes and :data:`MEASURE_VERSION`, so a
changed image or a changed formula can never serve an old number. :func:`load_records` reads
every entry as one table.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import DataError

# Bump when a measured number would change for the same configuration and inputs.
MEASURE_VERSION = 4  # 4: per-image map energies (record["energy"])
RECORDS_FILE = "records.parquet"

_SHA_CACHE: dict[tuple[str, int, int], str] = {}
_VERIFIED: set[str] = set()


def image_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) for the process."""
    from .io import sha256_file

    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror or exc}") from None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(p)
    return _SHA_CACHE[key]


def input_digests(dataset: Any, image_ids: Sequence[str]) -> list[str]:
    """The sha256 of each selected image's file, checked against the dataset's SHA256SUMS
    manifest on first use in this process (one line naming a file that does not match)."""
    from .data import read_sha256sums

    if getattr(dataset, "catalogue", False):  # no images here: the shipped catalogue's digests
        listed = read_sha256sums(Path(dataset.manifest))
        names = [Path(dataset.path(i)).name for i in image_ids]
        absent = [n for n in names if n not in listed]
        if absent:
            raise DataError(f"{absent[0]} is not in {dataset.manifest}")
        return [listed[n] for n in names]
    digests = [image_sha256(dataset.path(i)) for i in image_ids]
    manifest = getattr(dataset, "manifest", None)
    if manifest is not None and Path(manifest).is_file():
        expected = read_sha256sums(Path(manifest))
        for image_id, digest in zip(image_ids, digests, strict=True):
            path = Path(dataset.path(image_id))
            if str(path) in _VERIFIED:
                continue
            want = expected.get(path.name)
            if want is not None and want != digest:
                raise DataError(
                    f"{path} does not match its checksum in {manifest}: the file changed; "
                    "restore it or update the manifest"
                )
            _VERIFIED.add(str(path))
    return digests


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``a_b`` columns (``{"bands": {"D": {"low": x}}}`` -> ``bands_D_low``)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "_"))
        else:
            out[name] = value
    return out


def records_frame(
    records: Iterable[Mapping[str, Any]],
    meta: Mapping[str, Any],
    digests: Mapping[str, str] | None = None,
) -> Any:
    """Per-image records with the configuration's columns (``meta``) and each image's sha256
    (``digests``: image id -> hex) as a DataFrame."""
    import pandas as pd

    rows = []
    for r in records:
        row = {**meta, **flatten(r)}
        row["image_id"] = row.pop("id", row.get("image_id"))
        if digests is not None:
            row["image_sha256"] = digests.get(str(row["image_id"]))
        rows.append(row)
    return pd.DataFrame(rows)


def write_records(
    folder: Path,
    records: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
    digests: Mapping[str, str] | None = None,
) -> Path:
    """Write ``<folder>/records.parquet`` atomically; return its path."""
    from .io import atomic_write_bytes

    buf = io.BytesIO()
    records_frame(records, meta, digests).to_parquet(buf, index=False)
    path = folder / RECORDS_FILE
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_records(
    root: str | os.PathLike[str] | None = None, keys: Iterable[str] | None = None
) -> Any:
    """Every finished entry's records under ``root`` (default the results folder, backed by the
    bundles: :func:`bundle_dirs`) as one table; ``keys`` limits it to those entries. Entries
    without records (older schemas) are skipped."""
    import pandas as pd

    from .cache import results_dir

    base = Path(root) if root is not None else results_dir()
    folders = [base / k for k in keys] if keys is not None else sorted(base.glob("*"))
    frames = []
    for folder in folders:
        path = folder / RECORDS_FILE
        if not (folder / "metrics.json").is_file() or not path.is_file():
            continue
        try:
            frames.append(pd.read_parquet(path))
        except (OSError, ValueError) as exc:
            raise DataError(
                f"unreadable record file {path} ({exc}); delete it to recompute"
            ) from None
    if root is None:
        frames += _bundle_records(keys, {str(f["key"].iloc[0]) for f in frames if len(f)})
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --- mean maps ---------------------------------------------------------------------------------
# A map (a 2-D float array of at least MAP_MIN_SIDE a side) is stored as float16 times a power of
# two that brings its largest value to 2**15 (relative error <= 2**-11 = 4.9e-4 per cell, for
# every cell within 2**-29 of the largest); a centred |F| map (Hermitian: M[i, j] equals M at
# the mirrored frequency) keeps only its columns up to the centre. Then zlib. A corrupted
# Kodak entry's six maps: 9.5 MB as float32, 1.9 MB so. Claims are decided from the per-image
# records (float64), not from the maps; the maps serve figures and mean-map shares.
MAP_MIN_SIDE = 16
_MAP_FORMAT = "nicspec-maps-1"
_HALF = "__half_width__"
_SCALE = "__scale__"


def _mirror_index(n: int) -> Any:
    import numpy as np

    return (2 * (n // 2) - np.arange(n)) % n


def _is_hermitian(m: Any) -> bool:
    import numpy as np

    if not np.all(np.isfinite(m)):
        return False
    mirrored = m[_mirror_index(m.shape[0])][:, _mirror_index(m.shape[1])]
    return bool(np.allclose(m, mirrored, rtol=1e-5, atol=1e-6 * float(np.max(np.abs(m)) or 1)))


def encode_maps(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """The arrays as they are written: maps in float16 (Hermitian ones by half), the rest as
    given, with what :func:`decode_maps` needs to restore them."""
    import numpy as np

    out: dict[str, Any] = {"__format__": np.asarray(_MAP_FORMAT)}
    for name, value in arrays.items():
        a = np.asarray(value)
        if a.ndim != 2 or min(a.shape) < MAP_MIN_SIDE or not np.issubdtype(a.dtype, np.floating):
            out[name] = a
            continue
        finite = np.abs(a[np.isfinite(a)])
        peak = float(finite.max()) if finite.size else 0.0
        # the peak scaled into [2**14, 2**15): float16 holds up to 65504, so [2**15, 2**16)
        # turned a peak just under a power of two (mantissa above 1.9990) into inf
        exponent = 14 - int(np.floor(np.log2(peak))) if peak > 0 else 0
        if _is_hermitian(a):
            out[_HALF + name] = np.asarray(a.shape[1])
            a = a[:, : a.shape[1] // 2 + 1]
        out[_SCALE + name] = np.asarray(exponent)
        with np.errstate(over="ignore"):  # only a non-finite cell (kept as it is) overflows
            out[name] = np.ldexp(a.astype(np.float64), exponent).astype(np.float16)
    return out


def decode_maps(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The arrays :func:`encode_maps` was given (maps as float32); older files pass through."""
    import numpy as np

    if "__format__" not in stored:
        return {k: np.asarray(v) for k, v in stored.items()}
    out: dict[str, Any] = {}
    for name, value in stored.items():
        if name.startswith(("__format__", _HALF, _SCALE)):
            continue
        a = np.asarray(value)
        if _SCALE + name in stored:
            a = np.ldexp(a.astype(np.float32), -int(stored[_SCALE + name]))
        if _HALF + name in stored:
            width = int(stored[_HALF + name])
            rows, cols = _mirror_index(a.shape[0]), _mirror_index(width)
            full = np.empty((a.shape[0], width), dtype=a.dtype)
            full[:, : a.shape[1]] = a
            rest = np.arange(a.shape[1], width)
            full[:, rest] = a[rows][:, cols[rest]]
            a = full
        out[name] = a
    return out


def reduce_maps(arrays: Mapping[str, Any], factor: int) -> dict[str, Any]:
    """Every 2-D map (both sides at least :data:`MAP_MIN_SIDE`) as the mean of its ``factor``
    x ``factor`` tiles (edges that fill no tile dropped), the rest as given. A centred spectrum
    keeps its frequency range (-1/2 to 1/2 cycles per pixel), at ``factor`` times the spacing."""
    import numpy as np

    if int(factor) < 1:
        raise DataError(f"a map reduction factor must be at least 1, got {factor}")
    f = int(factor)
    out: dict[str, Any] = {}
    for name, value in arrays.items():
        a = np.asarray(value)
        if f == 1 or a.ndim != 2 or min(a.shape) < MAP_MIN_SIDE:
            out[name] = a
            continue
        h, w = (a.shape[0] // f) * f, (a.shape[1] // f) * f
        tiles = a[:h, :w].astype(np.float64).reshape(h // f, f, w // f, f)
        out[name] = tiles.mean(axis=(1, 3)).astype(np.float32)
    return out


def save_maps(path: str | os.PathLike[str], arrays: Mapping[str, Any]) -> None:
    """Write ``arrays`` (maps and small arrays) to an NPZ at ``path``, encoded and atomically."""
    import numpy as np

    from .io import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, **encode_maps(arrays))
    atomic_write_bytes(path, buf.getvalue())


def load_maps(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The arrays :func:`save_maps` wrote (also reads plain NPZ files); one line if unreadable."""
    import zipfile

    import numpy as np

    try:
        with np.load(path) as z:
            return decode_maps({k: z[k] for k in z.files})
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"unreadable map file {path} ({exc}); delete it to recompute") from None


def results_folder(results: str | Path | None = None) -> Path:
    """Where a chapter caches its results: ``results`` if given (relative: to the project
    root), else :func:`cache.results_dir` (the one rule the CLI uses too)."""
    from .cache import project_root, results_dir

    if results:
        path = Path(results).expanduser()
        return path if path.is_absolute() else project_root() / path
    return results_dir()


@contextlib.contextmanager
def claim(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a store entry while it is computed (POSIX ``flock`` on
    ``<folder>/.lock``; released by the kernel when a killed process dies, so a kill never
    leaves an entry claimed). Where locks are unavailable the entry is computed unclaimed."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    lock = folder / ".lock"
    with open(lock, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if not (folder / "metrics.json").exists():  # failed: leave nothing behind
                lock.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    folder.rmdir()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- results bundles ---------------------------------------------------------------------------
# A bundle (``data/results/<name>/``, written by ``nicspec results bundle``, see
# :mod:`nicspec_utils.bundle`) holds finished entries as ``entries/<key>/metrics.json`` (+
# ``spectra.npz``) and their records in one ``records.parquet``. It backs the results folder
# read-only: an entry missing there is served from the first bundle that holds it. Bundles are
# never written by the store; ``NICSPEC_FRESH=1`` ignores them (``make book FRESH=1``).
BUNDLES_DIR = Path("data") / "results"
BUNDLE_MANIFEST = "manifest.json"
BUNDLE_ENTRIES = "entries"
BUNDLE_CACHES = "caches"
FILE_PREFIX = "file:"
DRAWN_PREFIX = "drawn:"
FRESH_ENV = "NICSPEC_FRESH"
USES_ENV = "NICSPEC_USES_LOG"


def bundles_root() -> Path:
    """The folder that holds the bundles: ``data/results`` in the project."""
    from .cache import project_root

    return project_root() / BUNDLES_DIR


def bundle_dirs() -> list[Path]:
    """The bundles the store reads (folders with a manifest, by name), or none when
    ``$NICSPEC_FRESH`` is set (to anything but empty or 0)."""
    if os.environ.get(FRESH_ENV, "").strip() not in ("", "0"):
        return []
    root = bundles_root()
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if not p.name.startswith(".") and (p / BUNDLE_MANIFEST).is_file()
    )


def bundle_entry(key: str) -> Path | None:
    """The folder of ``key`` in the first bundle that has it finished, else None."""
    for bundle in bundle_dirs():
        folder = bundle / BUNDLE_ENTRIES / key
        if (folder / "metrics.json").is_file():
            return folder
    return None


def note_use(key: str, bundle: str | None = None, dataset: str | None = None) -> None:
    """Append ``key`` (and the name of the bundle that served it) to the log named by
    ``$NICSPEC_USES_LOG`` (the book sets one per chapter, so ``nicspec results bundle`` knows
    which entries a profile uses and the page which bundle it read); nothing without it.
    A cache file is logged as ``file:<path>`` with the dataset it rests on."""
    log = os.environ.get(USES_ENV, "").strip()
    if not log:
        return
    line = key + (f"\t{bundle or ''}\t{dataset}" if dataset else (f"\t{bundle}" if bundle else ""))
    try:
        with open(log, "a", encoding="utf-8") as handle:  # O_APPEND: one line per write
            handle.write(line + "\n")
    except OSError:
        pass  # a log that cannot be written costs the bundle its key list, not the result


def note_drawn(key: str) -> None:
    """Log that the executing chapter draws a map of entry ``key`` in a figure (``drawn:<key>``
    in its uses log): a bundle keeps that entry's maps at :data:`bundle.DRAWN_FACTOR`, the
    others at its (coarser) map factor."""
    if key:
        note_use(DRAWN_PREFIX + key)


_MANIFESTS: dict[tuple[str, int], dict[str, Any]] = {}


def _manifest_of(bundle: Path) -> dict[str, Any]:
    """A bundle's manifest, read once per process (per modification time); {} if unreadable."""
    import json

    path = bundle / BUNDLE_MANIFEST
    try:
        stamp = (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError:
        return {}
    if stamp not in _MANIFESTS:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        _MANIFESTS[stamp] = data if isinstance(data, dict) else {}
    return _MANIFESTS[stamp]


def current_chapter() -> str | None:
    """The chapter the book is executing now (the name of its uses log), else None."""
    log = os.environ.get(USES_ENV, "").strip()
    return Path(log).name.removesuffix(".partial").removesuffix(".keys") if log else None


def covers(dataset: str) -> bool:
    """Whether the bundle of the profile being built (``$NICSPEC_PROFILE``, set by ``nicspec
    book``) holds what the executing chapter used of ``dataset`` in the run that made it, so
    the chapter may run on the dataset's shipped checksum catalogue without its images."""
    profile, chapter = os.environ.get("NICSPEC_PROFILE", "").strip(), current_chapter()
    if not profile or not chapter:
        return False
    for bundle in bundle_dirs():
        if bundle.name == profile:
            chapters = _manifest_of(bundle).get("chapters") or {}
            return dataset in ((chapters.get(chapter) or {}).get("datasets") or [])
    return False


def served_file(path: str | os.PathLike[str], dataset: str | None = None) -> Path:
    """Where a chapter reads one of its own cache files (a result that is not a store entry:
    chapter 1's spectra, chapter 5's classifications, ...): ``path`` when it exists, else the
    copy in the first bundle that has it (``<bundle>/caches/<path under the results folder>``),
    else ``path`` (to be computed and written there). The file is noted in the uses log, with
    the dataset it rests on, so ``nicspec results bundle`` exports it; a cache outside the
    results folder is neither looked up in bundles nor logged."""
    p = Path(path)
    rel = _results_relative(p)
    if rel is None:
        return p
    found, source = p, None
    if not p.is_file():
        for bundle, copy in _bundle_copies(rel):
            found, source = copy, bundle.name
            break
    note_use(FILE_PREFIX + rel, source, dataset)
    return found


def _results_relative(path: Path) -> str | None:
    """``path`` relative to the results folder (POSIX), or None outside it."""
    from .cache import results_dir

    try:
        return path.resolve().relative_to(results_dir().resolve()).as_posix()
    except ValueError:
        return None


def _bundle_copies(rel: str) -> Iterator[tuple[Path, Path]]:
    """(bundle, its copy) of the results folder's file ``rel``, for each bundle that has one."""
    for bundle in bundle_dirs():
        copy = bundle / BUNDLE_CACHES / rel
        if copy.is_file():
            yield bundle, copy


def bundle_copy(path: str | os.PathLike[str]) -> Path | None:
    """The first bundle's copy of a chapter cache file at ``path`` (under the results folder),
    else None; unlike :func:`served_file`, nothing is noted in the uses log."""
    rel = _results_relative(Path(path))
    return None if rel is None else next((c for _, c in _bundle_copies(rel)), None)


def served_json(
    path: str | os.PathLike[str], compute: Callable[[], Any], dataset: str | None = None
) -> Any:
    """:func:`cache.cached_json` through :func:`served_file`: the JSON at ``path``, else a
    bundle's copy, else computed and stored at ``path``."""
    from .cache import cached_json, read_json

    p = Path(path)
    readable = served_file(p, dataset)
    if readable != p:  # a bundle's copy
        value = read_json(readable)
        if value is not None:
            return value
    return cached_json(p, compute)


def served_files(folder: str | os.PathLike[str], pattern: str) -> list[Path]:
    """The files matching ``pattern`` in ``folder`` (under the results folder), those a bundle
    has there and the folder lacks added from the first bundle that has them, each read
    through :func:`served_file` (so logged); sorted by name."""
    from .cache import results_dir

    here = Path(folder)
    names = {p.name for p in here.glob(pattern) if p.is_file()} if here.is_dir() else set()
    try:
        rel = here.resolve().relative_to(results_dir().resolve())
    except ValueError:
        return sorted(here / n for n in names)
    for bundle in bundle_dirs():
        copy = bundle / BUNDLE_CACHES / rel
        if copy.is_dir():
            names |= {p.name for p in copy.glob(pattern) if p.is_file()}
    return [served_file(here / n) for n in sorted(names)]


def _bundle_records(keys: Iterable[str] | None, exclude: set[str]) -> list[Any]:
    """Record tables of the bundles' entries (``keys`` only, if given), less ``exclude``."""
    import pandas as pd

    wanted = None if keys is None else set(keys)
    frames = []
    for bundle in bundle_dirs():
        path = bundle / RECORDS_FILE
        if not path.is_file():
            continue
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"unreadable bundle records {path} ({exc})") from None
        keep = ~frame["key"].isin(exclude)
        if wanted is not None:
            keep &= frame["key"].isin(wanted)
        frame = frame[keep]
        exclude = exclude | set(frame["key"])
        if len(frame):
            frames.append(frame)
    return frames
