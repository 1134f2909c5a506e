"""Results bundles: finished store entries exported with the repository, and their check.

``nicspec results bundle --profile P`` writes ``data/results/P/`` (:func:`write_bundle`):

- ``entries/<key>/metrics.json`` (and ``spectra.npz`` where the entry has maps): the store's
  own files, copied unchanged (maps in the store's float16 encoding, :func:`store.save_maps`);
- ``records.parquet``: every entry's per-image records as one table (the store's columns,
  one row per (entry, image)), and ``records.csv``, the same table for readers;
- ``manifest.json``: the code version (git commit, ``nicspec_utils.__version__``, the store's
  ``MEASURE_VERSION``), every entry's configuration, the sha256 of every other file, the
  machine (CPU model, cores) and the wall times (the entries' own, and the chapters' of the
  last book build of the profile).

Which entries: those the profile's chapters used in the last ``nicspec book --profile P``
(each chapter's keys are logged to ``<results>/uses/P/<chapter>.keys`` while it executes,
:func:`store.note_use`), or with ``--all`` every finished entry in the results folder. The
bundle is written beside its target and renamed into place, so a failed run leaves the old
one as it was.

The store serves a bundle's entries read-only where the results folder lacks them
(:func:`store.bundle_entry`); ``NICSPEC_FRESH=1`` ignores bundles.

``nicspec results verify`` (:func:`verify`) checks every file's sha256 against the manifest,
then recomputes a seeded random sample of entries from their stored configurations in a
temporary folder and compares them with the bundle (:data:`TOLERANCES`).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .data import NOT_CATALOGUED
from .errors import DataError, UsageError

FORMAT = "nicspec-bundle-1"
MANIFEST = "manifest.json"
ENTRIES = "entries"
RECORDS_PARQUET = "records.parquet"
RECORDS_CSV = "records.csv.gz"  # gzip: a reader's pandas.read_csv or zcat opens it as is
# Chapter caches whose named 2-D arrays only figures draw: the bundle reduces them by its map
# factor like the entries' maps (chapter 1's mean corruption spectra; their band shares, ring
# energies and per-image shares are kept exact beside them in the same file).
DISPLAY_ONLY_CACHE_MAPS = {"corrupted/spectra/": ("magnitude",)}
USES_DIR = "uses"
SIZE_BUDGET_MB = 60.0
# The map factor of the entries a chapter draws (store.note_drawn): a 512x768 map at 1/2 is
# 256x384 cells, more than a panel of a multi-panel figure shows; the others take the bundle's.
DRAWN_FACTOR = 2
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_KEY = re.compile(r"^[0-9a-f]{16}$")

# What verify accepts as equal, by the field's name. A recomputed entry runs through the same
# code, so on the same libraries the numbers are bit-identical; the tolerances leave room for
# another CPU's float rounding only.
TOLERANCES = {
    "rate": "bits and bpp exact for classic codecs, 1e-6 relative for neural ones",
    "quality": "psnr* and ms_ssim* within 1e-6 relative (1e-9 absolute)",
    "other": "other floats (band shares, energies, radial profiles) within 1e-5 relative",
    "rounded": "for neural codecs, measures of the reference-rounded difference (*_rounded) "
    "within 1e-3 relative: a NIC's reconstruction varies in its last float bits between "
    "processes (its PSNR within 1e-6), and that flips the rounding of a few cells (measured: "
    "1.9e-5 on a paper-profile entry)",
    "maps": "maps within two float16 roundings (2**-10 relative) plus 1e-6 of the map's peak",
}
# Fields that measure the machine, not the result.
_UNCOMPARED = {"nicspec", "config", "key", "wall_time_s", "codec_time_s"}


# --- where things are ----------------------------------------------------------------------------


def check_name(name: str, what: str = "profile") -> str:
    """``name`` if it is a plain folder name, else UsageError."""
    if not _NAME.match(name or ""):
        raise UsageError(f"{what} {name!r} is not a plain name (letters, digits, _ . -)")
    return name


def uses_log(profile: str, chapter: str, results: Path | None = None) -> Path:
    """The file that logs the store keys ``chapter`` uses under ``profile``."""
    from .cache import results_dir

    base = results if results is not None else results_dir()
    return base / USES_DIR / check_name(profile) / f"{chapter}.keys"


def run_record_path(log: Path) -> Path:
    """The run record beside a chapter's uses log (``<chapter>.run.json``)."""
    return log.with_name(log.name.removesuffix(".keys") + ".run.json")


def run_record(profile: str, chapter: str, results: Path | None = None) -> dict[str, Any] | None:
    """What :func:`book.finish_uses` recorded of the chapter's last complete execution under
    the profile (seconds, commit, finish time, machine), or None."""
    from .cache import read_json

    data = read_json(run_record_path(uses_log(profile, chapter, results)))
    return data if isinstance(data, dict) else None


def profile_keys(profile: str, results: Path | None = None) -> list[str]:
    """The keys the profile's chapters used in their last execution (first use first)."""
    folder = uses_log(profile, "x", results).parent
    logs = sorted(folder.glob("*.keys")) if folder.is_dir() else []
    if not logs:
        raise DataError(
            f"no record of the entries profile {profile!r} uses ({folder} has no logs): "
            f"build it first (nicspec book --profile {profile}), or pass --all"
        )
    keys: dict[str, None] = {}
    for log in logs:
        keys.update(dict.fromkeys(_read_log(log)))
    return list(keys)


def _read_uses(
    log: Path,
) -> tuple[dict[str, str | None], dict[str, tuple[str | None, str | None]], list[str]]:
    """A uses log, read once: store key -> the bundle that served it (None: the results
    folder), cache file (path under the results folder) -> (serving bundle, dataset), and the
    keys of the entries whose maps a figure drew (:func:`store.note_drawn`)."""
    from .store import DRAWN_PREFIX, FILE_PREFIX

    entries: dict[str, str | None] = {}
    files: dict[str, tuple[str | None, str | None]] = {}
    drawn: set[str] = set()
    try:
        lines = log.read_text(encoding="utf-8").splitlines()
    except OSError:
        return entries, files, []
    for line in lines:
        if line.startswith(DRAWN_PREFIX):
            key = line.removeprefix(DRAWN_PREFIX).strip()
            if _KEY.match(key):
                drawn.add(key)
            continue
        if line.startswith(FILE_PREFIX):
            rel, source, dataset = ([*line.split("\t"), "", ""])[:3]
            rel = rel.removeprefix(FILE_PREFIX)
            if rel and ".." not in Path(rel).parts and not Path(rel).is_absolute():
                files[rel] = (source or None, dataset or None)
            continue
        key, _, source = line.strip().partition("\t")
        if _KEY.match(key):
            entries[key] = source or entries.get(key)
    return entries, files, sorted(drawn)


def _read_log(log: Path) -> dict[str, str | None]:
    """A uses log's store keys -> the bundle that served each (None: the results folder)."""
    return _read_uses(log)[0]


def profile_uses(
    profile: str, results: Path | None = None
) -> dict[str, tuple[list[str], dict[str, str | None], list[str]]]:
    """Per chapter of the profile's last execution: the store keys it read, its cache files
    (path under the results folder -> the dataset it rests on) and the entries it drew."""
    folder = uses_log(profile, "x", results).parent
    logs = sorted(folder.glob("*.keys")) if folder.is_dir() else []
    return {
        log.stem: (list(entries), {rel: dataset for rel, (_, dataset) in files.items()}, drawn)
        for log in logs
        for entries, files, drawn in [_read_uses(log)]
    }


def served_from(profile: str, chapter: str) -> str | None:
    """One sentence for a chapter's top on the bundles that served its entries in its last
    execution (code version, date, machine), or None when none did."""
    from .store import bundles_root

    log = uses_log(profile, chapter)
    entries, files, _ = _read_uses(log)
    uses = {**entries, **{f: source for f, (source, _) in files.items()}}
    names = sorted({s for s in uses.values() if s})
    if not names:
        return None
    parts = []
    for name in names:
        n = sum(1 for s in uses.values() if s == name)
        try:
            manifest = read_manifest(bundles_root() / name)
        except DataError:
            parts.append(f"{n} came from the bundle data/results/{name}")
            continue
        # the chapter's own record where the bundle was assembled chapter by chapter
        own = (manifest.get("chapters") or {}).get(chapter) or {}
        code = own.get("code") or manifest.get("code") or {}
        where = own.get("machine") or manifest.get("machine") or {}
        when = own.get("bundled") or manifest.get("created", "")
        parts.append(
            f"{n} came from the bundle data/results/{name} (code {str(code.get('commit'))[:10]}, "
            f"{str(when)[:10]}, {where.get('cpu')}, "
            f"{where.get('cores')} cores)"
        )
    what = f"{len(entries)} store entries"
    if files:
        what = f"{len(uses)} results ({what} and {len(files)} cached chapter results)"
    return f"Of the {what} it read, " + "; ".join(parts) + " (make book FRESH=1 recomputes them)."


def all_bundles() -> list[Path]:
    """Every bundle under ``data/results`` (whatever ``NICSPEC_FRESH`` says)."""
    from .store import bundles_root

    root = bundles_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / MANIFEST).is_file())


# --- writing -----------------------------------------------------------------------------------


def _finished(folder: Path) -> dict[str, Any] | None:
    """The metrics of a finished, real entry in ``folder`` (not a placeholder), else None."""
    from .cache import read_json

    data = read_json(folder / "metrics.json")
    if not isinstance(data, dict) or data.get("placeholder") or not data.get("config"):
        return None
    if data.get("key") != folder.name:
        return None
    return data


def finished_keys(results: Path) -> list[str]:
    """The keys of every finished entry in a results folder."""
    if not results.is_dir():
        return []
    return [
        p.name for p in sorted(results.iterdir()) if _KEY.match(p.name) and _finished(p) is not None
    ]


def _source_of(key: str, results: Path) -> Path | None:
    """Where an entry's files are: the results folder, else a bundle that has it."""
    from .store import BUNDLE_ENTRIES

    if _finished(results / key) is not None:
        return results / key
    for bundle in all_bundles():
        if _finished(bundle / BUNDLE_ENTRIES / key) is not None:
            return bundle / BUNDLE_ENTRIES / key
    return None


def _file_source(rel: str, results: Path) -> Path | None:
    """Where a chapter's cache file is: the results folder, else a bundle that has it."""
    from .store import BUNDLE_CACHES

    if (results / rel).is_file():
        return results / rel
    for bundle in all_bundles():
        if (bundle / BUNDLE_CACHES / rel).is_file():
            return bundle / BUNDLE_CACHES / rel
    return None


def _entry_records(folder: Path, metrics: Mapping[str, Any]) -> Any:
    """An entry's per-image records: its records.parquet, else rebuilt from metrics.json."""
    import pandas as pd

    from .engines.evaluate import _record_meta
    from .store import RECORDS_FILE, records_frame

    path = folder / RECORDS_FILE
    if path.is_file():
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"unreadable record file {path} ({exc})") from None
    if (folder.parent.parent / RECORDS_PARQUET).is_file():  # an entry of a bundle
        frame = pd.read_parquet(folder.parent.parent / RECORDS_PARQUET)
        return frame[frame["key"] == folder.name]
    config = metrics["config"]
    digests = dict(zip(config["image_ids"], config["inputs"], strict=True))
    return records_frame(metrics["per_image"], _record_meta(dict(metrics)), digests)


def _git(*args: str) -> str | None:
    from .cache import project_root

    try:
        done = subprocess.run(
            ["git", *args], cwd=project_root(), text=True, capture_output=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """The code that wrote the bundle: git commit (and whether tracked files had local
    changes), the package version, the store's measure version."""
    from .store import MEASURE_VERSION

    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "local_changes": bool(status) if status is not None else None,
        "nicspec": __version__,
        "measure_version": MEASURE_VERSION,
    }


def machine() -> dict[str, Any]:
    """The machine: CPU model, cores, platform, Python."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _chapter_times(profile: str) -> dict[str, Any]:
    """The chapters' times of the profile's last book build (book/chapters/timings.json)."""
    from .cache import project_root, read_json

    timings = read_json(project_root() / "book" / "chapters" / "timings.json") or {}
    return {
        name: t
        for name, t in timings.items()
        if isinstance(t, dict) and t.get("profile") == profile
    }


def sha256_tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` but the manifest."""
    from .io import sha256_file

    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST
    }


def write_bundle(
    profile: str,
    out: str | Path | None = None,
    keys: Sequence[str] | None = None,
    results: str | Path | None = None,
    map_factor: int | None = None,
    merge: bool = True,
) -> dict[str, Any]:
    """Export entries into a bundle folder (default ``data/results/<profile>``); return its
    manifest. ``keys``: the entries (default: those the profile's chapters used,
    :func:`profile_keys`); ``results``: the results folder to read (default the store's).

    ``merge``: the chapters the target bundle of the same profile holds and this build did not
    execute are kept, with their entries, caches and provenance (a long profile is bundled
    chapter by chapter, over several machines); the bundle is ``complete`` once it holds every
    chapter of the book. False: only this build's chapters.

    ``map_factor``: the entries' 2-D maps are kept as the mean of ``f`` x ``f`` tiles
    (:func:`store.reduce_maps`), with each map's band shares and energy at full resolution in
    ``display.json`` beside them (what :class:`engines.evaluate.Point` reads instead of the
    maps), so the maps serve figures only; None: the smallest of :data:`MAP_FACTORS` that
    keeps the bundle within :data:`SIZE_BUDGET_MB`, by estimate (1: the maps as stored)."""
    import pandas as pd

    from .cache import results_dir
    from .engines.evaluate import DISPLAY_FILE
    from .io import atomic_write_json, check_output_folder
    from .store import BUNDLE_ENTRIES, bundles_root

    started = time.perf_counter()
    check_name(profile)
    base = Path(results) if results is not None else results_dir()
    target = Path(out).expanduser() if out is not None else bundles_root() / profile
    uses = profile_uses(profile, base) if keys is None else {}
    if keys is None and not uses:
        profile_keys(profile, base)  # the one-line error: no record of the profile's entries
    carried = _carried_chapters(target, profile, set(uses)) if keys is None and merge else {}
    for chapter, (chapter_keys, chapter_files, record) in carried.items():
        uses[chapter] = (chapter_keys, chapter_files, list(record.get("drawn") or []))
    drawn = {k for *_, chapter_drawn in uses.values() for k in chapter_drawn}
    wanted = (
        list(keys)
        if keys is not None
        else list(dict.fromkeys(k for chapter_keys, *_ in uses.values() for k in chapter_keys))
    )
    withheld: dict[str, int] = {}  # a dataset whose terms forbid redistributing anything of it
    for chapter, (chapter_keys, used_files, chapter_drawn) in list(uses.items()):
        kept = {}
        for rel, d in used_files.items():
            names = set((d or "").split(",")) & NOT_CATALOGUED
            for name in names:
                withheld[name] = withheld.get(name, 0) + 1
            if not names:
                kept[rel] = d
        uses[chapter] = (chapter_keys, kept, chapter_drawn)
    cache_files = {rel: d for _, files, _ in uses.values() for rel, d in files.items()}
    if not wanted and not cache_files:
        raise DataError(f"no finished entries to bundle in {base}")
    check_output_folder(target.parent, "--out")
    if target.exists() and not (target / MANIFEST).is_file():
        raise DataError(f"--out {target} exists and is not a bundle; choose another folder")
    sources: dict[str, Path] = {}
    missing = []
    for key in wanted:
        source = _source_of(key, base)
        if source is None:
            missing.append(key)
        else:
            sources[key] = source
    if missing:
        raise DataError(
            f"{len(missing)} of the {len(wanted)} entries are not finished in {base} or any "
            f"bundle (first: {missing[0]}); compute them (nicspec book --profile {profile})"
        )
    file_sources = {rel: _file_source(rel, base) for rel in cache_files}
    absent = sorted(rel for rel, src in file_sources.items() if src is None)
    if absent:
        raise DataError(
            f"{len(absent)} of the {len(cache_files)} cache files the chapters used are not in "
            f"{base} or any bundle (first: {absent[0]}); rebuild (nicspec book --profile {profile})"
        )
    factor = _map_factor(sources, file_sources, drawn) if map_factor is None else int(map_factor)
    if factor not in MAP_FACTORS:
        raise UsageError(f"--map-factor must be one of {', '.join(map(str, MAP_FACTORS))}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        entries: dict[str, Any] = {}
        frames = []
        for key, source in sources.items():
            metrics = _finished(source)
            assert metrics is not None
            folder = staging / BUNDLE_ENTRIES / key
            folder.mkdir(parents=True)
            _copy_json_compact(source / "metrics.json", folder / "metrics.json")
            maps = metrics.get("spectra")
            entry_factor = (min(factor, DRAWN_FACTOR) if key in drawn else factor) if maps else 1
            reduced = _display_factor(source)
            if maps and reduced is not None:  # a bundle's entry, already reduced: as it is
                entry_factor = reduced
                for name in (maps, DISPLAY_FILE):
                    shutil.copyfile(source / name, folder / name)
            elif maps and entry_factor == 1:
                shutil.copyfile(source / maps, folder / maps)
            elif maps:
                _write_display_maps(source / maps, folder, entry_factor)
            frames.append(_entry_records(source, metrics))
            config = metrics["config"]
            corruption = config.get("corruption") or {}
            entries[key] = {
                "codec": metrics.get("codec"),
                "dataset": metrics.get("dataset"),
                "corruption": corruption.get("name"),
                "severity": corruption.get("severity"),
                "n_images": metrics.get("n_images"),
                "maps": bool(maps),
                "map_factor": entry_factor,
                "computed_by": metrics.get("nicspec"),
                "wall_time_s": metrics.get("wall_time_s"),
                "config": config,
            }
        from .store import BUNDLE_CACHES

        caches: dict[str, Any] = {}
        manifests: dict[Path, dict[str, Any]] = {}  # each source bundle's, read once
        for rel, src in file_sources.items():
            assert src is not None
            dest = staging / BUNDLE_CACHES / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            caches[rel] = {"dataset": cache_files[rel]}
            here_made = src.is_relative_to(base)  # else a bundle's copy, taken as it is
            cache_factor = _copy_cache(src, dest, rel, factor, here_made, manifests)
            if cache_factor != 1:
                caches[rel]["map_factor"] = cache_factor
        times = _chapter_times(profile)
        for chapter in uses:
            if chapter not in carried:
                times[chapter] = run_record(profile, chapter, base) or times.get(chapter)
        here, code = machine(), code_version()  # this build's chapters'
        chapters = {
            chapter: carried[chapter][2]
            if chapter in carried
            else _chapter_record(
                chapter_keys, files, chapter_drawn, entries, times.get(chapter), code, here
            )  # fmt: skip
            for chapter, (chapter_keys, files, chapter_drawn) in uses.items()
        }
        missing = missing_chapters(chapters)
        table = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame({"key": pd.Series(dtype=str), "image_id": pd.Series(dtype=str)})
        )
        table.to_parquet(staging / RECORDS_PARQUET, index=False)
        table.to_csv(staging / RECORDS_CSV, index=False, compression={"method": "gzip", "mtime": 0})
        files = sha256_tree(staging)
        size = sum((staging / f).stat().st_size for f in files)
        entry_s = sum(float(e["wall_time_s"] or 0.0) for e in entries.values())
        manifest = {
            "format": FORMAT,
            "profile": profile,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "code": code,
            "machine": here,
            "wall_time_s": {
                "entries": round(entry_s, 3),
                "chapters": {
                    name: info["executed"]
                    for name, info in chapters.items()
                    if info.get("executed")
                },
                "bundle": round(time.perf_counter() - started, 3),
            },
            "map_factor": factor,
            "complete": not missing,
            "missing_chapters": missing,
            "partial_chapters": partial_chapters(chapters),
            "n_entries": len(entries),
            "n_records": int(len(table)),
            "size_bytes": size,
            "tolerances": TOLERANCES,
            "entries": entries,
            "caches": caches,
            "withheld_caches": withheld,
            "chapters": chapters,
            "files": files,
        }
        atomic_write_json(staging / MANIFEST, manifest)
        os.chmod(staging, 0o755)
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


MAP_FACTORS = (1, 2, 4, 8, 16, 32)


def _chapter_record(
    keys: Sequence[str],
    files: Mapping[str, str | None],
    drawn: Sequence[str],
    entries: Mapping[str, Any],
    executed: Mapping[str, Any] | None,
    code: Mapping[str, Any],
    here: Mapping[str, Any],
) -> dict[str, Any]:
    """A chapter's record in a bundle's manifest: what it used and drew, the datasets those
    rest on, the parameters that replaced the profile's (a part of its run: ``nicspec book
    --set``), and its provenance (the executing commit and machine from its run record where
    there is one, else the bundling's)."""
    run = dict(executed or {})
    return {
        "overrides": dict(run.get("overrides") or {}),
        "entries": len(keys),
        "caches": len(files),
        "datasets": sorted(
            {str(entries[k]["dataset"]) for k in keys if k in entries}
            | {name for d in files.values() if d for name in d.split(",")}
        ),
        "keys": list(keys),
        "cache_files": sorted(files),
        "drawn": list(drawn),
        "executed": executed,
        "code": {
            "commit": run.get("commit") or code["commit"],
            "of": "execution" if run.get("commit") else "bundling",
        },
        "machine": run.get("machine") or here,
        "bundled": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def missing_chapters(chapters: Mapping[str, Any]) -> list[str]:
    """The book's chapters a bundle's ``chapters`` lack, or hold only a part of (run with some
    of the profile's parameters replaced: :func:`partial_chapters`); none: the bundle is
    complete."""
    from .book import chapter_names

    partial = partial_chapters(chapters)
    return [name for name in chapter_names() if name not in chapters or name in partial]


def partial_chapters(chapters: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Chapter -> the parameters that replaced the profile's when it ran (only those that
    ran as a part of the profile's run: a later full run takes over their entries)."""
    return {
        name: dict(info["overrides"])
        for name, info in chapters.items()
        if isinstance(info, Mapping) and info.get("overrides")
    }


def _carried_chapters(
    target: Path, profile: str, rebuilt: set[str]
) -> dict[str, tuple[list[str], dict[str, str | None], dict[str, Any]]]:
    """The chapters of the bundle at ``target`` (of ``profile``) that this build did not
    execute: chapter -> (its store keys, its cache files -> dataset, its manifest record)."""
    if not (target / MANIFEST).is_file():
        return {}
    manifest = read_manifest(target)
    if manifest.get("profile") != profile:
        raise DataError(
            f"{target} is the bundle of profile {manifest.get('profile')!r}, not {profile!r}; "
            "choose another --out"
        )
    caches = manifest.get("caches") or {}
    carried = {}
    for chapter, info in (manifest.get("chapters") or {}).items():
        if chapter in rebuilt:
            continue
        if "keys" not in info:
            raise DataError(
                f"{target}'s chapter {chapter} does not list its entries (an older bundle); "
                "rebuild every chapter of it, or pass --replace"
            )
        files = {rel: (caches.get(rel) or {}).get("dataset") for rel in info.get("cache_files", [])}
        carried[chapter] = (list(info["keys"]), files, dict(info))
    return carried


def _copy_json_compact(source: Path, dest: Path) -> None:
    """A JSON file rewritten without indentation (the same data, about a third smaller)."""
    data = json.loads(source.read_text(encoding="utf-8"))
    dest.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")), encoding="utf-8")


def _copy_cache(
    src: Path,
    dest: Path,
    rel: str,
    factor: int,
    from_results: bool,
    manifests: dict[Path, dict[str, Any]],
) -> int:
    """Copy one chapter cache into a bundle; return the factor its figure maps now have.
    Files of :data:`DISPLAY_ONLY_CACHE_MAPS` from the results folder get those maps reduced by
    ``factor``; a bundle's copy is taken as it is, with the factor that bundle gave it
    (``manifests``: the source bundles' manifests, filled as they are first read)."""
    from .store import load_maps, reduce_maps, save_maps

    names = next((n for prefix, n in DISPLAY_ONLY_CACHE_MAPS.items() if rel.startswith(prefix)), ())
    if not names or not rel.endswith(".npz"):
        shutil.copyfile(src, dest)
        return 1
    if not from_results:
        shutil.copyfile(src, dest)
        bundle = src.parents[len(Path(rel).parts)]
        if bundle not in manifests:
            manifests[bundle] = read_manifest(bundle)
        entry = (manifests[bundle].get("caches") or {}).get(rel) or {}
        return int(entry.get("map_factor", 1))
    if factor == 1:
        shutil.copyfile(src, dest)
        return 1
    arrays = load_maps(src)
    reduced = reduce_maps({n: arrays[n] for n in names if n in arrays}, factor)
    save_maps(dest, {**arrays, **reduced})
    return factor


def _display_factor(folder: Path) -> int | None:
    """The map factor of an entry folder whose maps a bundle already reduced, else None."""
    from .cache import read_json
    from .engines.evaluate import DISPLAY_FILE

    display = read_json(folder / DISPLAY_FILE)
    return int(display["factor"]) if isinstance(display, dict) and "factor" in display else None


def _map_factor(
    sources: Mapping[str, Path], files: Mapping[str, Path | None], drawn: Iterable[str] = ()
) -> int:
    """The smallest factor of :data:`MAP_FACTORS` whose bundle fits :data:`SIZE_BUDGET_MB`,
    estimated from the stored files (a reduced map is written whole, not by its Hermitian
    half, so it takes about 2 / f**2 of the stored bytes)."""
    maps = other = 0.0
    fine = set(drawn)
    for key, source in sources.items():
        kept = _display_factor(source) is not None  # already reduced: copied as it is
        for item in source.iterdir():
            if item.is_file():
                if item.suffix == ".npz" and key in fine and not kept:
                    other += item.stat().st_size * min(1.0, 2.0 / DRAWN_FACTOR**2)
                elif item.suffix == ".npz" and not kept:
                    maps += item.stat().st_size
                else:
                    other += item.stat().st_size
    for rel, path in files.items():
        if path is None:
            continue
        if rel.endswith(".npz") and any(rel.startswith(d) for d in DISPLAY_ONLY_CACHE_MAPS):
            maps += path.stat().st_size
        else:
            other += path.stat().st_size
    budget = SIZE_BUDGET_MB * 1e6
    for f in MAP_FACTORS:
        if other + maps * (1.0 if f == 1 else min(1.0, 2.0 / f**2)) <= budget:
            return f
    return MAP_FACTORS[-1]


def _write_display_maps(source: Path, folder: Path, factor: int) -> None:
    """An entry's maps reduced by ``factor`` into ``folder`` (same file name), and its
    ``display.json``: the factor, the full shapes, each map's full-resolution shares and energy."""
    from .engines.evaluate import DISPLAY_FILE, display_scalars
    from .io import atomic_write_json
    from .store import load_maps, reduce_maps, save_maps

    arrays = load_maps(source)
    save_maps(folder / source.name, reduce_maps(arrays, factor))
    atomic_write_json(
        folder / DISPLAY_FILE,
        {
            "factor": factor,
            "shapes": {k: list(v.shape) for k, v in arrays.items() if getattr(v, "ndim", 0) == 2},
            "scalars": display_scalars(arrays),
        },
    )


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` onto ``target``; an old bundle there goes only once the new one is in
    (a crash in between leaves it under a hidden name, which no reader looks at)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- reading and checking ----------------------------------------------------------------------


def read_manifest(bundle: Path) -> dict[str, Any]:
    """A bundle's manifest; DataError in one line when it is missing or not a bundle's."""
    path = bundle / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{bundle} is not a results bundle: it has no {MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable bundle manifest {path} ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{path} is not a {FORMAT} manifest")
    return data


def check_files(bundle: Path, manifest: Mapping[str, Any]) -> list[str]:
    """What does not match the manifest: changed, missing and unlisted files."""
    from .io import sha256_file

    listed: Mapping[str, str] = manifest.get("files") or {}
    problems = []
    for rel, digest in listed.items():
        path = bundle / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{rel} does not match its sha256 in the manifest")
    for path in sorted(bundle.rglob("*")):
        rel = path.relative_to(bundle).as_posix()
        if path.is_file() and rel != MANIFEST and rel not in listed:
            problems.append(f"{rel} is not in the manifest")
    return problems


class Unavailable(Exception):
    """An entry that cannot be recomputed on this machine (its reason in one line)."""


def rebuild_codec(cfg: Mapping[str, Any]) -> Any:
    """The codec whose configuration is ``cfg`` (a store entry's ``config["codec"]``), or
    Unavailable when this machine cannot build that very codec."""
    from .codecs import CLASSIC, RateTargetCodec, get_codec, is_neural_name
    from .engines.evaluate import _codec_config

    name = str(cfg.get("codec"))
    opts = {k: v for k, v in cfg.items() if k not in ("codec", "version")}
    rate = opts.pop("rate_control", None)
    target = None
    if rate == "per-image":
        target = (opts.pop("target_bpp"), opts.pop("rate_tol"), opts.pop("rate_side", "nearest"))
    if name in CLASSIC:
        allowed = set(CLASSIC[name].OPTIONS) | {"target_psnr", "psnr_tol"}
    elif is_neural_name(name):
        from .codecs import neural

        allowed = set(neural.NeuralCodec.OPTIONS) | set(neural.ZooCodec.OPTIONS)
    else:
        raise Unavailable(f"codec {name} is not in the registry (a chapter's own model)")
    try:
        codec = get_codec(name, **{k: v for k, v in opts.items() if k in allowed})
        knob = getattr(codec, "knob", None)
        if knob is not None and knob.param not in allowed and opts.get(knob.param) is not None:
            codec = codec.at(opts[knob.param])
        if target is not None:
            codec = RateTargetCodec(codec, float(target[0]), float(target[1]), str(target[2]))
    except (UsageError, DataError, ImportError) as exc:
        raise Unavailable(f"codec {name} cannot be built here ({exc})") from None
    built = json.loads(json.dumps(_codec_config(codec), default=str))
    if built != json.loads(json.dumps(dict(cfg), default=str)):
        fields = sorted(k for k in set(built) | set(cfg) if built.get(k) != cfg.get(k))
        if fields == ["version"]:
            raise Unavailable(
                f"codec {name} here is {built.get('version')!r}, the bundle's "
                f"{cfg.get('version')!r}"
            )
        raise Unavailable(f"codec {name} rebuilt from its config differs in {', '.join(fields)}")
    return codec


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The path of the first difference between two JSON values, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
            if d:
                return d
        return None
    return None if a == b else (path or "<value>")


def _close(name: str, a: Any, b: Any, exact_rate: bool) -> bool:
    """Whether two values of field ``name`` agree within :data:`TOLERANCES`."""
    if (
        isinstance(a, bool)
        or isinstance(b, bool)
        or not (isinstance(a, (int, float)) and isinstance(b, (int, float)))
    ):
        if _missing(a) and _missing(b):
            return True
        return bool(a == b)
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    base = name.rsplit(".", 1)[-1]
    if base in ("bits", "bpp", "n_images", "n_lossless", "height", "width"):
        if exact_rate or base not in ("bits", "bpp"):
            return fa == fb
        return math.isclose(fa, fb, rel_tol=1e-6, abs_tol=0.0)
    if base.startswith(("psnr", "ms_ssim")):
        return math.isclose(fa, fb, rel_tol=1e-6, abs_tol=1e-9)
    if not exact_rate and "_rounded" in name:
        return math.isclose(fa, fb, rel_tol=1e-3, abs_tol=1e-12)
    return math.isclose(fa, fb, rel_tol=1e-5, abs_tol=1e-12)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def compare_values(stored: Any, fresh: Any, exact_rate: bool, path: str = "") -> str | None:
    """The first field of ``fresh`` that differs from ``stored`` beyond the tolerances (as
    ``path: stored vs fresh``), or None; timing fields are not compared."""
    if isinstance(stored, Mapping) and isinstance(fresh, Mapping):
        for k in sorted(set(stored) | set(fresh)):
            if k in _UNCOMPARED or str(k).endswith("_time_s"):
                continue
            where = f"{path}.{k}" if path else str(k)
            if k not in stored or k not in fresh:
                return f"{where}: only in the {'bundle' if k in stored else 'recomputation'}"
            d = compare_values(stored[k], fresh[k], exact_rate, where)
            if d:
                return d
        return None
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return f"{path}: {len(stored)} items vs {len(fresh)}"
        for i, (a, b) in enumerate(zip(stored, fresh, strict=True)):
            d = compare_values(a, b, exact_rate, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if _close(path, stored, fresh, exact_rate) else f"{path}: {stored!r} vs {fresh!r}"


def compare_records(stored: Any, fresh: Any, exact_rate: bool) -> str | None:
    """The first per-image record cell that differs (rows matched by image id), or None."""
    if sorted(stored["image_id"]) != sorted(fresh["image_id"]):
        return "records: the images differ"
    # the bundle's table holds every entry's columns: one entry's are those not all empty
    a = stored.set_index("image_id").sort_index().dropna(axis=1, how="all")
    b = fresh.set_index("image_id").sort_index().dropna(axis=1, how="all")
    cols = [c for c in a.columns if not c.endswith("_time_s")]
    extra = sorted(set(b.columns) - set(a.columns))
    if extra:
        return f"records: column {extra[0]} only in the recomputation"
    for col in cols:
        if col not in b.columns:
            return f"records: column {col} only in the bundle"
        for image_id in a.index:
            x, y = a.at[image_id, col], b.at[image_id, col]
            x, y = (v.item() if hasattr(v, "item") else v for v in (x, y))
            if not _close(col, x, y, exact_rate):
                return f"records[{image_id}].{col}: {x!r} vs {y!r}"
    return None


def compare_maps(
    stored: Mapping[str, Any], fresh: Mapping[str, Any], neural: bool = False
) -> str | None:
    """The first map or array that differs beyond the tolerances, or None (``neural``: a
    neural codec's, whose reference-rounded arrays get :data:`TOLERANCES` ``rounded``)."""
    import numpy as np

    from .store import MAP_MIN_SIDE

    if set(stored) != set(fresh):
        return f"maps: {sorted(set(stored) ^ set(fresh))[0]} only in one of them"
    for name in sorted(stored):
        a = np.asarray(stored[name], dtype=np.float64)
        b = np.asarray(fresh[name], dtype=np.float64)
        if a.shape != b.shape:
            return f"maps.{name}: shape {a.shape} vs {b.shape}"
        finite = np.isfinite(a)
        if not np.array_equal(finite, np.isfinite(b)):
            return f"maps.{name}: non-finite cells differ"
        if not finite.any():
            continue
        peak = float(np.max(np.abs(a[finite])))
        if a.ndim == 2 and min(a.shape) >= MAP_MIN_SIDE:
            tol = 2.0**-10 * np.maximum(np.abs(a), np.abs(b)) + 1e-6 * peak
        elif neural and "_rounded" in name:
            tol = 1e-3 * np.abs(a) + 1e-6 * peak
        else:
            tol = 1e-5 * np.abs(a) + 1e-12 * peak
        err = np.abs(a - b)[finite]
        if np.any(err > tol[finite]):
            worst = float(np.max(err / np.maximum(tol[finite], 1e-300)))
            return f"maps.{name}: differs by up to {worst:.3g}x its tolerance"
    return None


def _compare_entry_maps(
    folder: Path, fresh: Mapping[str, Any], name: str, exact: bool = True
) -> str | None:
    """A bundle entry's maps against recomputed ones: reduced as the bundle reduced them, and
    their full-resolution shares and energies too (display.json), where it did."""
    from .engines.evaluate import DISPLAY_FILE, display_scalars
    from .store import load_maps, reduce_maps

    stored = load_maps(folder / name)
    display = (
        json.loads((folder / DISPLAY_FILE).read_text(encoding="utf-8"))
        if (folder / DISPLAY_FILE).is_file()
        else None
    )
    if display is None:
        return compare_maps(stored, fresh, neural=not exact)
    problem = compare_values(display["scalars"], display_scalars(dict(fresh)), exact, "display")
    reduced = reduce_maps(fresh, int(display["factor"]))
    return problem or compare_maps(stored, reduced, neural=not exact)


@dataclass
class Checked:
    """One sampled entry's verification: ``ok``, ``mismatch`` or ``skipped``."""

    key: str
    label: str
    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    """What :func:`verify` found in one bundle."""

    bundle: Path
    sampled: list[Checked] = field(default_factory=list)
    n_entries: int = 0
    seconds: float = 0.0

    @property
    def verified(self) -> list[Checked]:
        """The entries recomputed and compared (matching or not)."""
        return [c for c in self.sampled if c.status != "skipped"]

    @property
    def mismatches(self) -> list[Checked]:
        """The entries that differ from the bundle."""
        return [c for c in self.sampled if c.status == "mismatch"]


def _label(entry: Mapping[str, Any]) -> str:
    where = str(entry.get("dataset"))
    if entry.get("corruption"):
        where += f" + {entry['corruption']}-{entry['severity']}"
    n = entry.get("n_images")
    return f"{entry.get('codec')} on {where} ({n} image{'' if n == 1 else 's'})"


def default_seed() -> int:
    """Today's date as YYYYMMDD (UTC): a different sample every day."""
    return int(datetime.now(timezone.utc).strftime("%Y%m%d"))


def verify_entry(bundle: Path, key: str, entry: Mapping[str, Any], scratch: Path) -> Checked:
    """Recompute one bundle entry in ``scratch`` and compare it with the bundle."""
    import pandas as pd

    from .cache import canonical_json
    from .codecs import is_neural_name
    from .data import get_dataset
    from .engines.evaluate import plan_entry, run_with_codec
    from .store import BUNDLE_ENTRIES, load_maps

    started = time.perf_counter()
    label = _label(entry)
    config = json.loads(canonical_json(entry["config"]))

    def done(status: str, detail: str = "") -> Checked:
        return Checked(key, label, status, detail, time.perf_counter() - started)

    folder = bundle / BUNDLE_ENTRIES / key
    stored = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    if stored.get("config") != config:
        return done("mismatch", "metrics.json holds another configuration than the manifest")
    corruption = config.get("corruption") or {}
    try:
        codec = rebuild_codec(config["codec"])
        try:
            ds = get_dataset(config["dataset"]).select(config["image_ids"])
        except (UsageError, DataError) as exc:
            raise Unavailable(
                f"dataset {config['dataset']} is not available here ({exc})"
            ) from None
        name, severity, seed = (corruption.get(k) for k in ("name", "severity", "seed"))
        plan = plan_entry(codec, ds, config["image_ids"], name, severity, seed or 0, scratch)
    except Unavailable as why:
        return done("skipped", str(why))
    if plan.key != key:
        where = _first_difference(config, json.loads(canonical_json(plan.config)))
        if where == "inputs":
            return done("skipped", "the images here differ from the ones the bundle used")
        return done("skipped", f"stale: this code plans another key for it ({where} changed)")
    maps = bool(entry.get("maps"))
    path, fresh, _ = run_with_codec(codec, ds, config["image_ids"], name, severity, seed or 0,
                                    scratch, progress=False, maps=maps)  # fmt: skip
    exact = not is_neural_name(str(config["codec"].get("codec")))
    problem = compare_values(stored, fresh, exact)
    if problem is None:
        records = pd.read_parquet(bundle / RECORDS_PARQUET)
        problem = compare_records(records[records["key"] == key], pd.read_parquet(
            path.parent / "records.parquet"), exact)  # fmt: skip
    if problem is None and maps:
        problem = _compare_entry_maps(folder, load_maps(path.parent / fresh["spectra"]),
                                      stored["spectra"], exact)  # fmt: skip
    return done("mismatch", problem) if problem else done("ok")


def verify(
    bundle: str | Path,
    sample: int = 5,
    seed: int | None = None,
    max_seconds: float | None = None,
    keys: Iterable[str] | None = None,
    on_entry: Callable[[Checked], None] | None = None,
) -> Report:
    """Check a bundle: every file against its sha256 (DataError on the first that differs),
    then recompute ``sample`` entries drawn with ``seed`` (default :func:`default_seed`) from
    those whose stored wall time is at most ``max_seconds`` (or ``keys``), in a temporary
    folder; entries this machine cannot recompute are skipped and the next drawn instead."""
    import random

    if sample < 1:
        raise UsageError(f"--sample must be at least 1, got {sample}")
    started = time.perf_counter()
    folder = Path(bundle).expanduser()
    if not folder.is_dir():
        raise UsageError(f"bundle {folder} is not a folder")
    manifest = read_manifest(folder)
    problems = check_files(folder, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataError(f"bundle {folder}: {problems[0]}{more}")
    entries: Mapping[str, Any] = manifest.get("entries") or {}
    pool = sorted(entries) if keys is None else [k for k in keys if k in entries]
    if max_seconds is not None:
        pool = [k for k in pool if float(entries[k].get("wall_time_s") or 0) <= max_seconds]
    random.Random(default_seed() if seed is None else seed).shuffle(pool)
    report = Report(folder, n_entries=len(entries))
    with tempfile.TemporaryDirectory(prefix="nicspec-verify-") as tmp:
        for key in pool:
            if len(report.verified) >= sample:
                break
            checked = verify_entry(folder, key, entries[key], Path(tmp))
            report.sampled.append(checked)
            if on_entry is not None:
                on_entry(checked)
    report.seconds = time.perf_counter() - started
    return report
