"""Result caching: stable keys for configurations, the results folder, cached JSON."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UsageError
from .io import atomic_write_json

RESULTS_ENV = "NICSPEC_RESULTS"
KEY_LENGTH = 16


def _jsonable(obj: Any) -> Any:
    """Fallback for json.dumps: paths, numpy scalars and arrays, sets."""
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot put a {type(obj).__name__} into a configuration key")


def canonical_json(config: Mapping[str, Any]) -> str:
    """Canonical JSON of a configuration: sorted keys, no spaces, tuples as lists, no NaN."""
    try:
        return json.dumps(
            config, sort_keys=True, separators=(",", ":"), default=_jsonable, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"configuration cannot be hashed: {exc}") from None


def config_key(config: Mapping[str, Any]) -> str:
    """Short, stable hex key (first 16 hex digits of sha256) of a configuration's canonical JSON.

    Equal configurations give equal keys whatever their key order; note that ``50`` and ``50.0``
    are different values here.
    """
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:KEY_LENGTH]


def results_dir() -> Path:
    """The results folder, the one rule for the CLI, the engines and the book alike:
    ``$NICSPEC_RESULTS`` if set, else ``results/`` in the source checkout the package runs from
    (the same from any working folder), else the user cache (an installed package)."""
    value = os.environ.get(RESULTS_ENV)
    if value:
        return Path(value).expanduser()
    if _is_project(PACKAGE_ROOT):
        return PACKAGE_ROOT / "results"
    import platformdirs

    return Path(platformdirs.user_cache_dir("nicspec")) / "results"


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that plain JSON accepts: numpy values to Python, inf and NaN to None."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray, os.PathLike, set, frozenset)):
        return json_safe(_jsonable(obj))
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def read_json(path: str | os.PathLike[str]) -> Any | None:
    """Parsed JSON of a file, or None if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        warnings.warn(f"ignoring unreadable cache file {path}: {exc}", stacklevel=2)
        return None


def cached_json(path: str | os.PathLike[str], compute: Callable[[], Any]) -> Any:
    """Return the JSON stored at ``path``; if missing or unreadable, compute, store atomically."""
    value = read_json(path)
    if value is not None:
        return value
    value = json_safe(compute())
    atomic_write_json(path, value)
    return value


def _is_project(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "nicspec_utils").is_dir()


# The checkout holding this package (an editable install or a clone on sys.path).
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def project_root(start: Path | None = None) -> Path:
    """The source checkout the package runs from; else the nearest project folder at or above
    ``start`` (default: cwd); else the cwd itself."""
    if start is None and _is_project(PACKAGE_ROOT):
        return PACKAGE_ROOT
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_project(folder):
            return folder
    return here
