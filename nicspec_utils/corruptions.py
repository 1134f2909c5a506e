"""Kodak-C / CLIC-C: the 15 ImageNet-C corruptions, made deterministic, and corrupted-set builds.

The maths is :func:`imagecorruptions.corrupt` (the ImageNet-C formulas for any image size). The
reference code does not seed the corruptions; here every call is seeded from a hash of
(image content or ``image_key``, corruption, severity, seed), so the output bytes are the same
across runs and processes. The random sources the library uses are numpy's global generator
(noise, snow, frost's choice and crop, fog, motion blur angle, elastic transform, spatter),
scikit-image's ``random_noise`` (impulse noise, given ``seed``) and a numba generator (glass
blur, given ``seed``); Python's ``random`` and OpenCV's generator are seeded too, for safety.

Built sets use the released layout ``<out>/<corruption>/<severity>/<image_id>.png`` plus
``<out>/manifest.json`` (configuration, sha256 of every file, digest of every clean input).
Each file is written atomically, after a line naming it, its sha256 and its clean input is
appended to ``<out>/.manifest.journal``; a run killed outright (SIGKILL, power loss) leaves the
journal, which the next run folds into the manifest, so it redoes only the files missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import Dataset
from .errors import DataError, UsageError
from .io import (
    atomic_write_bytes,
    atomic_write_json,
    check_output_folder,
    encode_png,
    read_image,
    remove_stale_temporaries,
    sha256_file,
    write_png_atomic,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
SEED_SCHEME = "nicspec-corrupt-v1"
SEVERITIES = (1, 2, 3, 4, 5)
GROUPS = ("low", "medium", "high")
MANIFEST_SAVE_INTERVAL_S = 10.0
JOURNAL_NAME = ".manifest.journal"


# A corruption of one's own: (HxWx3 uint8 image, severity 1..5, seeded generator) -> image.
CorruptionFunction = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Corruption:
    """One corruption: its number (the paper's 1..15; 16 on for registered ones), its name,
    its frequency group, and the function that applies it (None: imagecorruptions' ImageNet-C
    formula of that name) with its version (it enters the results keys)."""

    number: int
    name: str
    group: str
    function: CorruptionFunction | None = None
    version: str = ""


CORRUPTIONS: tuple[Corruption, ...] = (
    Corruption(1, "snow", "low"),
    Corruption(2, "frost", "low"),
    Corruption(3, "fog", "low"),
    Corruption(4, "brightness", "low"),
    Corruption(5, "contrast", "low"),
    Corruption(6, "motion_blur", "medium"),
    Corruption(7, "zoom_blur", "medium"),
    Corruption(8, "defocus_blur", "medium"),
    Corruption(9, "glass_blur", "medium"),
    Corruption(10, "elastic_transform", "medium"),
    Corruption(11, "jpeg_compression", "medium"),
    Corruption(12, "pixelate", "medium"),
    Corruption(13, "gaussian_noise", "high"),
    Corruption(14, "shot_noise", "high"),
    Corruption(15, "impulse_noise", "high"),
)

_BY_NAME = {c.name: c for c in CORRUPTIONS}
_BY_NUMBER = {c.number: c for c in CORRUPTIONS}
# Serialises calls that touch the process-wide generators, so threads cannot interleave them.
_RNG_LOCK = threading.Lock()


def corruption_names() -> list[str]:
    """The 15 corruption names in the paper's order."""
    return [c.name for c in CORRUPTIONS]


def register_corruption(
    name: str, function: CorruptionFunction, group: str, version: str = "1"
) -> Corruption:
    """Add a corruption of one's own: every sweep, set builder and chapter then takes it by
    name (``all`` and the group names still mean the paper's 15). ``function`` must be a
    module-level function (Dask workers import it by name); change ``version`` whenever its
    output changes, so stored results are not served for the new formula."""
    key = str(name).strip().lower().replace("-", "_")
    if not key.isidentifier():
        raise UsageError(f"corruption name {name!r} must be a word (letters, digits, _)")
    if group not in GROUPS:
        raise UsageError(f"corruption group must be one of {', '.join(GROUPS)}, got {group!r}")
    if not callable(function):
        raise UsageError(f"corruption {key}: its function is not callable")
    old = _BY_NAME.get(key)
    if old is not None and old.function is None:
        raise UsageError(f"{key} is one of the paper's corruptions; choose another name")
    number = old.number if old is not None else max(_BY_NUMBER) + 1
    entry = Corruption(number, key, group, function, str(version))
    _BY_NAME[key] = _BY_NUMBER[number] = entry
    return entry


def unregister_corruption(name: str) -> None:
    """Remove a corruption added with :func:`register_corruption` (the paper's stay)."""
    entry = _BY_NAME.get(str(name).strip().lower().replace("-", "_"))
    if entry is None or entry.function is None:
        raise UsageError(f"{name!r} is not a registered corruption")
    _BY_NAME.pop(entry.name, None)
    _BY_NUMBER.pop(entry.number, None)


def registered_corruptions() -> list[Corruption]:
    """The corruptions added with :func:`register_corruption` (shipped with sweep tasks)."""
    return [c for c in _BY_NAME.values() if c.function is not None]


def restore_registered(entries: Sequence[Corruption]) -> None:
    """Register ``entries`` in this process (a worker receiving a task)."""
    for c in entries:
        if _BY_NAME.get(c.name) != c:
            register_corruption(c.name, c.function, c.group, c.version)  # type: ignore[arg-type]


def corruption_impl(name: str) -> str:
    """What computes a corruption, for results keys: imagecorruptions' version, or the
    registered function's qualified name and version."""
    c = get_corruption(name)
    if c.function is None:
        return imagecorruptions_version()
    return f"{c.function.__module__}.{c.function.__qualname__} v{c.version}"


def _choices() -> str:
    return f"all, {', '.join(GROUPS)}, 1..15 or {', '.join(corruption_names())}"


def get_corruption(name: str | int) -> Corruption:
    """Look a corruption up by name (``"gaussian_noise"``, ``"gaussian-noise"``) or number."""
    key = str(name).strip().lower().replace("-", "_")
    if key.isdigit() and int(key) in _BY_NUMBER:
        return _BY_NUMBER[int(key)]
    if key in _BY_NAME:
        return _BY_NAME[key]
    raise UsageError(f"unknown corruption {str(name)!r}; choose from {_choices()}")


def parse_corruptions(spec: str | Sequence[str]) -> list[str]:
    """Parse ``"all"``, a group (``"low"``...), or comma-separated names/numbers into names."""
    tokens = spec.split(",") if isinstance(spec, str) else list(spec)
    tokens = [str(t).strip().lower() for t in tokens if str(t).strip()]
    if not tokens:
        raise UsageError(f"no corruptions given; choose from {_choices()}")
    names: list[str] = []
    for token in tokens:
        if token == "all":
            found = corruption_names()
        elif token in GROUPS:
            found = [c.name for c in CORRUPTIONS if c.group == token]
        else:
            found = [get_corruption(token).name]
        names += [n for n in found if n not in names]
    return names


def _check_severity(value: int | str) -> int:
    try:
        severity = int(str(value).strip())
    except ValueError:
        raise UsageError(f"severity {str(value)!r} is not an integer; choose from 1..5") from None
    if severity not in SEVERITIES:
        raise UsageError(f"severity {severity} is out of range; choose from 1..5")
    return severity


def parse_severities(spec: str | int | Sequence[int]) -> list[int]:
    """Parse ``"3"``, ``"1-5"``, ``"1,3,5"`` or a mix (``"1-2,5"``) into sorted severities."""
    if isinstance(spec, int):
        return [_check_severity(spec)]
    tokens = spec.split(",") if isinstance(spec, str) else [str(s) for s in spec]
    tokens = [t.strip() for t in tokens if t.strip()]
    if not tokens:
        raise UsageError("no severities given; choose from 1..5 (e.g. 3, 1-5 or 1,3,5)")
    out: set[int] = set()
    for token in tokens:
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", token)
        if match:
            lo, hi = _check_severity(match[1]), _check_severity(match[2])
            if lo > hi:
                raise UsageError(f"severity range {token!r} is reversed; write e.g. 1-5")
            out.update(range(lo, hi + 1))
        else:
            out.add(_check_severity(token))
    return sorted(out)


def image_digest(image: np.ndarray) -> str:
    """Hex sha256 of an image's shape, dtype and bytes (the content key of a corruption)."""
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{arr.dtype.str}:{'x'.join(map(str, arr.shape))}:".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def derive_seed(image_key: str, name: str, severity: int, seed: int) -> int:
    """The seed of one call (31 bits, valid for numpy, numba and OpenCV): a sha256 of
    (image key, corruption, severity, seed)."""
    text = f"{SEED_SCHEME}|{image_key}|{name}|{severity}|{seed}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


@contextlib.contextmanager
def _seeded(call_seed: int) -> Iterator[None]:
    """Seed every process-wide generator, restoring numpy's and Python's state afterwards."""
    import cv2

    np_state = np.random.get_state()
    py_state = random.getstate()
    try:
        np.random.seed(call_seed)
        random.seed(call_seed)
        cv2.setRNGSeed(call_seed)
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _fit(result: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Make the library's result an HxWx3 uint8 array of ``shape`` (round, clip, crop/pad)."""
    arr = np.asarray(result)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float64)), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(f"corruption returned an array of shape {arr.shape}, not HxWx3")
    h, w = shape[:2]
    arr = arr[:h, :w]
    if arr.shape[:2] != (h, w):
        pad = ((0, h - arr.shape[0]), (0, w - arr.shape[1]), (0, 0))
        arr = np.pad(arr, pad, mode="edge")
    return np.ascontiguousarray(arr)


def corrupt(
    image: np.ndarray, name: str, severity: int, seed: int = 0, image_key: str = ""
) -> np.ndarray:
    """Corrupt an HxWx3 uint8 image deterministically; returns HxWx3 uint8 of the same shape.

    The output depends only on (image content, or ``image_key`` when given, corruption,
    severity, seed). The ImageNet-C float result is truncated to uint8 as
    :func:`imagecorruptions.corrupt` (and the ImageNet-C reference code) does.
    """
    corruption = get_corruption(name)
    severity = _check_severity(severity)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise DataError("corrupt() needs a numpy uint8 image")
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"corrupt() needs an HxWx3 image, got shape {image.shape}")
    if min(image.shape[:2]) < 32:
        raise DataError(
            f"image is {image.shape[1]}x{image.shape[0]}; corruptions need 32 px a side"
        )
    image = np.ascontiguousarray(image)
    key = image_key or image_digest(image)
    call_seed = derive_seed(key, corruption.name, severity, seed)
    if corruption.function is not None:
        rng = np.random.default_rng(call_seed)
        out = np.asarray(corruption.function(image.copy(), severity, rng))
        if out.shape != image.shape:
            raise DataError(
                f"corruption {corruption.name} returned shape {out.shape} for {image.shape}"
            )
        return np.clip(out, 0, 255).astype(np.uint8) if out.dtype != np.uint8 else out
    import imagecorruptions

    func = imagecorruptions.corruption_dict[corruption.name]
    # impulse_noise (scikit-image) and glass_blur (numba) draw from their own generators,
    # seeded only through this argument; without it they use fresh OS entropy.
    kwargs = {"seed": call_seed} if "seed" in inspect.signature(func).parameters else {}
    with _RNG_LOCK, _seeded(call_seed):
        result = imagecorruptions.corrupt(
            image, severity=severity, corruption_name=corruption.name, **kwargs
        )
    return _fit(result, image.shape)


def imagecorruptions_version() -> str:
    """The installed imagecorruptions distribution and version."""
    from importlib import metadata

    for dist in ("imagecorruptions-imaug", "imagecorruptions"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return f"{dist} {metadata.version(dist)}"
    return "imagecorruptions unknown"


def _config(dataset_name: str, seed: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "dataset": dataset_name,
        "seed": seed,
        "imagecorruptions": imagecorruptions_version(),
        "seed_scheme": SEED_SCHEME,
    }
    registered = {c.name: corruption_impl(c.name) for c in registered_corruptions()}
    if registered:  # a set with corruptions of one's own records what computed them
        config["registered"] = registered
    return config


def _rel(name: str, severity: int, image_id: str) -> str:
    return f"{name}/{severity}/{image_id}.png"


def _read_manifest(root: Path) -> dict[str, Any] | None:
    path = root / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}; delete it to rebuild the set") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path} is not a nicspec corruption manifest (format {MANIFEST_FORMAT})")
    return manifest


def _check_config(root: Path, manifest: dict[str, Any] | None, config: dict[str, Any]) -> None:
    old = (manifest or {}).get("config")
    if old is not None and old != config:
        diff = ", ".join(f"{k}={old.get(k)!r}" for k in config if old.get(k) != config[k])
        raise UsageError(f"{root} was built with {diff}; use another output folder")


@contextlib.contextmanager
def _manifest_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the manifest (POSIX), so concurrent writers merge, not overwrite."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(root / ".manifest.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _config_key(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _image_of(rel: str) -> str:
    """The image id of a file ``<corruption>/<severity>/<image_id>.png``."""
    return rel.split("/", 2)[-1].removesuffix(".png")


def _journal_append(root: Path, entry: dict[str, str]) -> None:
    """Append one line to the journal (one ``write`` with O_APPEND: lines never interleave)."""
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    fd = os.open(root / JOURNAL_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _journal_entries(
    root: Path, config: dict[str, Any], known: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Files the journal names (and their sources) that exist with the recorded sha256;
    entries already in ``known`` with that digest are taken without hashing the file."""
    try:
        text = (root / JOURNAL_NAME).read_text(errors="replace")
    except FileNotFoundError:
        return {}, {}
    except OSError as exc:
        raise DataError(f"cannot read {root / JOURNAL_NAME}: {exc.strerror}") from None
    key = _config_key(config)
    latest: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by the kill
        if isinstance(entry, dict) and entry.get("config") == key and "file" in entry:
            latest[str(entry["file"])] = entry
    files: dict[str, str] = {}
    sources: dict[str, str] = {}
    for rel, entry in latest.items():
        digest, path = str(entry.get("sha256")), root / rel
        if known.get(rel) == digest or (path.is_file() and sha256_file(path) == digest):
            files[rel] = digest
            sources[_image_of(rel)] = str(entry.get("source"))
    return files, sources


def _merge_manifest(
    root: Path,
    config: dict[str, Any],
    files: dict[str, str],
    sources: dict[str, str],
    fold_journal: bool = False,
) -> Path:
    """Merge file and source digests into ``root/manifest.json``, atomically and under a lock.

    An image whose clean input changed keeps only the files given for its new source. With
    ``fold_journal`` the journal's verified entries are merged too, and the journal removed.
    """
    with _manifest_lock(root):
        manifest = _read_manifest(root) or {}
        _check_config(root, manifest, config)
        if fold_journal:
            j_files, j_sources = _journal_entries(root, config, files)
            # this run's own results win over what an earlier, killed run journalled
            j_files = {k: v for k, v in j_files.items() if _image_of(k) not in sources}
            files = {**j_files, **files}
            sources = {**{k: v for k, v in j_sources.items() if k not in sources}, **sources}
        old_sources = manifest.get("sources", {})
        changed = {i for i, s in sources.items() if old_sources.get(i, s) != s}
        merged_files = {
            k: v for k, v in manifest.get("files", {}).items() if _image_of(k) not in changed
        }
        merged_files.update(files)
        merged_sources = {**old_sources, **sources}
        path = root / MANIFEST_NAME
        atomic_write_json(
            path,
            {
                "format": MANIFEST_FORMAT,
                "config": config,
                "layout": "<corruption>/<severity>/<image_id>.png",
                "sources": dict(sorted(merged_sources.items())),
                "files": dict(sorted(merged_files.items())),
            },
        )
        if fold_journal:
            (root / JOURNAL_NAME).unlink(missing_ok=True)
    return path


def _image_task(
    dataset: Dataset,
    image_id: str,
    pairs: list[tuple[str, int]],
    expected: dict[str, str],
    expected_source: str | None,
    out: str,
    seed: int,
    config_key: str = "",
    build: str = "",
) -> dict[str, Any]:
    """One image x the given (corruption, severity) pairs: verify existing files, make the rest.

    Each new file is journalled (name, sha256, source) before it is renamed into place. With a
    ``build`` id the clean image and its digest are kept for that build's next task here.
    """
    root = Path(out)
    clean, source = _clean(dataset, image_id, build)
    fresh = source == expected_source
    written: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, severity in pairs:
        rel = _rel(name, severity, image_id)
        path = root / rel
        want = expected.get(rel)
        if fresh and want and path.is_file() and sha256_file(path) == want:
            skipped[rel] = want
            continue
        data = encode_png(corrupt(clean, name, severity, seed=seed, image_key=source))
        digest = hashlib.sha256(data).hexdigest()
        if config_key:
            entry = {"file": rel, "sha256": digest, "source": source, "config": config_key}
            _journal_append(root, entry)
        atomic_write_bytes(path, data)
        written[rel] = digest
    return {"image_id": image_id, "source": source, "written": written, "skipped": skipped}


# The clean images of the current build in this process: (build, image id) -> (image, digest).
_CLEAN: dict[tuple[str, str], tuple[np.ndarray, str]] = {}
_CLEAN_KEEP = 4


def _clean(dataset: Dataset, image_id: str, build: str) -> tuple[np.ndarray, str]:
    """A clean image and its digest; within one build (``build`` set) loaded once per process."""
    if build and (build, image_id) in _CLEAN:
        return _CLEAN[build, image_id]
    clean = dataset.load(image_id)
    found = clean, image_digest(clean)
    if build:
        for stale in [k for k in _CLEAN if k[0] != build]:  # an earlier build's
            del _CLEAN[stale]
        while len(_CLEAN) >= _CLEAN_KEEP:
            del _CLEAN[next(iter(_CLEAN))]
        _CLEAN[build, image_id] = found
    return found


def _pair_task(task: dict[str, Any], registered: Sequence[Corruption] = ()) -> dict[str, Any]:
    """One (image, corruption) x its severities, as a Dask task (one OpenCV thread per worker:
    the cluster gives the parallelism); ``registered``: the client's own corruptions."""
    import cv2

    cv2.setNumThreads(1)
    restore_registered(registered)
    return _image_task(**task)


@dataclass(frozen=True)
class BuildStats:
    """What a build did: the manifest path, files written and skipped, seconds taken."""

    manifest: Path
    written: int
    skipped: int
    seconds: float


def build_corrupted_set_stats(
    dataset: Dataset,
    corruptions: list[str],
    severities: list[int],
    out: Path,
    image_ids: list[str] | None = None,
    jobs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    scheduler: str | None = None,
) -> BuildStats:
    """:func:`build_corrupted_set`, returning counts and timing as well as the manifest path."""
    from tqdm.auto import tqdm

    from .engines import scheduler as engine

    start = time.perf_counter()
    names = parse_corruptions(list(corruptions))
    sevs = sorted({_check_severity(s) for s in severities})
    if not sevs:
        raise UsageError("no severities given; choose from 1..5")
    if jobs is not None and int(jobs) < 1:
        raise UsageError(f"jobs must be at least 1, got {jobs}")
    root = check_output_folder(out)
    ids = dataset.select(image_ids).image_ids if image_ids else dataset.image_ids
    if not ids:
        raise DataError(f"dataset {dataset.name!r} has no images")
    config = _config(dataset.name, int(seed))
    manifest = _read_manifest(root)
    _check_config(root, manifest, config)
    pairs = [(n, s) for n in names for s in sevs]
    if (root / JOURNAL_NAME).exists():  # an earlier run was killed: keep what it finished
        _merge_manifest(root, config, {}, {}, fold_journal=True)
        manifest = _read_manifest(root)
    for folder in {root, *(root / n / str(s) for n, s in pairs)}:
        remove_stale_temporaries(folder)
    old_files: dict[str, str] = (manifest or {}).get("files", {})
    old_sources: dict[str, str] = (manifest or {}).get("sources", {})
    client = engine.get_client(scheduler, workers=None if jobs is None else int(jobs))
    # In-process: one task per image, in order. On Dask: one per (image, corruption), so that
    # the cores stay busy on a few images; a worker loads each clean image once per build.
    groups = [pairs] if client is None else [[p for p in pairs if p[0] == n] for n in names]
    build = "" if client is None else os.urandom(8).hex()
    tasks = [
        {
            "dataset": dataset,
            "image_id": image_id,
            "pairs": group,
            "expected": {k: v for n, s in group if (v := old_files.get(k := _rel(n, s, image_id)))},
            "expected_source": old_sources.get(image_id),
            "out": str(root),
            "seed": int(seed),
            "config_key": _config_key(config),
            "build": build,
        }
        for image_id in ids
        for group in groups
    ]
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create output folder {root}: {exc.strerror}") from None
    new_files: dict[str, str] = {}
    new_sources: dict[str, str] = {}
    counts = {"written": 0, "skipped": 0}
    last_save = time.monotonic()
    stream = engine.progress_stream() if progress else None
    bar = tqdm(
        total=len(ids) * len(pairs),
        unit="img",
        desc=f"corrupt {dataset.name}",
        disable=stream is None,
        file=stream,
        dynamic_ncols=True,
    )
    try:
        for _, result in engine.map_tasks(
            _pair_task if client is not None else _image_task_of,
            tasks,
            f"corrupt {dataset.name}",
            client=client,
            progress=False,  # the bar above counts files
            broadcast={"registered": registered_corruptions()} if client is not None else None,
        ):
            new_files.update(result["written"])
            new_files.update(result["skipped"])
            new_sources[result["image_id"]] = result["source"]
            counts["written"] += len(result["written"])
            counts["skipped"] += len(result["skipped"])
            bar.update(len(result["written"]) + len(result["skipped"]))
            if time.monotonic() - last_save > MANIFEST_SAVE_INTERVAL_S:
                _merge_manifest(root, config, new_files, new_sources)
                last_save = time.monotonic()
    finally:
        bar.close()
        if stream not in (None, sys.stderr):
            stream.close()
        path = _merge_manifest(root, config, new_files, new_sources, fold_journal=True)
    return BuildStats(path, counts["written"], counts["skipped"], time.perf_counter() - start)


def _image_task_of(task: dict[str, Any]) -> dict[str, Any]:
    return _image_task(**task)


def build_corrupted_set(
    dataset: Dataset,
    corruptions: list[str],
    severities: list[int],
    out: Path,
    image_ids: list[str] | None = None,
    jobs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    scheduler: str | None = None,
) -> Path:
    """Write ``out/<corruption>/<severity>/<image_id>.png`` and ``out/manifest.json``.

    The files are made by Dask tasks, one per (image, corruption) (:mod:`.engines.scheduler`:
    ``scheduler`` or ``$NICSPEC_SCHEDULER`` names a cluster, ``serial`` runs one image after
    another here; else a local cluster of ``jobs`` single-threaded workers, default
    ``$NICSPEC_WORKERS`` or every core). Each file is written, and journalled, when made, so a
    killed run keeps them. A rerun keeps files whose sha256 matches the manifest (and whose
    clean input is unchanged) and remakes missing, partial or altered ones. Returns the
    manifest path.
    """
    return build_corrupted_set_stats(
        dataset, corruptions, severities, out, image_ids, jobs, seed, progress, scheduler
    ).manifest


def load_or_corrupt(
    dataset: Dataset,
    image_id: str,
    name: str,
    severity: int,
    seed: int = 0,
    cache_dir: Path | None = None,
    clean: np.ndarray | None = None,
) -> np.ndarray:
    """One corrupted image: read from the set at ``cache_dir`` when valid, else compute it.

    With ``cache_dir``, a computed image is written there (same layout and manifest as
    :func:`build_corrupted_set`). A set built with other settings raises UsageError.
    ``clean``: the clean image when the caller has read it already.
    """
    cleans = None if clean is None else [clean]
    return load_or_corrupt_many(dataset, [image_id], name, severity, seed, cache_dir, cleans)[0]


def load_or_corrupt_many(
    dataset: Dataset,
    image_ids: Sequence[str],
    name: str,
    severity: int,
    seed: int = 0,
    cache_dir: Path | None = None,
    cleans: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """:func:`load_or_corrupt` for several images of one corruption: the set's manifest is read
    once and the computed images are merged into it once."""
    corruption = get_corruption(name)
    severity = _check_severity(severity)
    images = list(cleans) if cleans is not None else [dataset.load(i) for i in image_ids]
    sources = [image_digest(c) for c in images]
    if cache_dir is None:
        return [corrupt(c, corruption.name, severity, seed=seed, image_key=k)
                for c, k in zip(images, sources, strict=True)]  # fmt: skip
    root = Path(cache_dir)
    config = _config(dataset.name, int(seed))
    manifest = _read_manifest(root)
    _check_config(root, manifest, config)
    files = (manifest or {}).get("files", {})
    known = (manifest or {}).get("sources", {})
    out: list[np.ndarray] = []
    written: dict[str, str] = {}  # rel -> sha256 of the PNG
    fresh: dict[str, str] = {}  # image id -> digest of its clean image, for what was written
    for image_id, clean, source in zip(image_ids, images, sources, strict=True):
        rel = _rel(corruption.name, severity, image_id)
        path = root / rel
        want = files.get(rel)
        if want and known.get(image_id) == source and path.is_file() and sha256_file(path) == want:
            out.append(read_image(path))
            continue
        img = corrupt(clean, corruption.name, severity, seed=seed, image_key=source)
        written[rel] = write_png_atomic(path, img)
        fresh[image_id] = source
        out.append(img)
    if written:
        _merge_manifest(root, config, written, fresh)
    return out


def corruption_info(name: str) -> tuple[int, str]:
    """(paper number, frequency group) of a corruption."""
    c = get_corruption(name)
    return c.number, c.group


def group_of(name: str) -> str:
    """Frequency group (low / medium / high) of a corruption."""
    return corruption_info(name)[1]


def corrupted_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the corrupted sets: ``<results>/corrupted`` (:func:`cache.results_dir`, the
    one results-folder rule shared with the store) unless ``cache_dir`` names another; a
    relative ``cache_dir`` is taken from the project root, whatever the working folder."""
    from .cache import project_root, results_dir

    if cache_dir is None or str(cache_dir) == "":
        return results_dir() / "corrupted"
    root = Path(cache_dir).expanduser()
    return root if root.is_absolute() else project_root() / root


def corrupted_set_dir(cache_dir: str | os.PathLike[str] | None, dataset_name: str) -> Path:
    """Where the corrupted set of a dataset lives: ``<corrupted_root(cache_dir)>/<dataset as a
    folder name>``."""
    root = corrupted_root(cache_dir)
    return root / (re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_name).strip("_") or "dataset")
