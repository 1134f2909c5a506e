"""The execution engine: every sweep's cache misses computed as tasks on Dask.

A chapter (or any caller) wraps a study function: ``engine.parallel(rd.rd_sweep, settings, …)``.
The function runs in *rounds*. In a round, every evaluation it asks for that the results store
already holds is served at once; every one it lacks is submitted to the Dask cluster as a task
and answered with a placeholder (NaN numbers, maps of the right shape), so the function goes on
and submits every independent task of the sweep. The engine then waits for the tasks (a
progress bar counts them) and runs the function again: evaluations that depended on the
placeholders (JPEG2000 matched to a NIC's bpp) are submitted in the next round, and the round
that finds everything in the store returns the function's real result. Its printed output and
warnings are those of that last round only. Each task writes its entry to the store when it
finishes, so a killed worker, client or machine loses only unfinished tasks, and a rerun
submits only those.

The cluster: ``NICSPEC_SCHEDULER`` (or ``scheduler=``) names an existing Dask scheduler
(``tcp://host:8786``; its workers need this package and the same results folder); ``serial``
runs everything in-process; unset, a ``LocalCluster`` with one single-threaded worker process
per usable core is started on first use and kept for the process (``NICSPEC_WORKERS`` sets
the count).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import DataError, NicspecError

SCHEDULER_ENV = "NICSPEC_SCHEDULER"
WORKERS_ENV = "NICSPEC_WORKERS"
PROGRESS_ENV = "NICSPEC_PROGRESS"
SERIAL = "serial"
MAX_ROUNDS = 12

T = TypeVar("T")
# Dask's own monitoring on a local cluster, sampled less often: its defaults (20 ms event-loop
# ticks, stack sampling every 10 ms, a system monitor every 0.5 s) took ~10 % of the core of a
# single-threaded worker making corrupted sets (scripts/bench_corrupt.py).
LOCAL_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}

_client: Any = None
_client_address: str | None = None
_collector: Collector | None = None
# What the last :func:`parallel` call did: rounds run and tasks submitted (for tests, reports).
last_run: dict[str, int] = {"rounds": 0, "submitted": 0}


def usable_cores() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def scheduler_setting(scheduler: str | None = None) -> str | None:
    """The scheduler asked for: the argument, else ``$NICSPEC_SCHEDULER``, else None (local)."""
    value = scheduler if scheduler is not None else os.environ.get(SCHEDULER_ENV)
    value = (value or "").strip()
    return value or None


def worker_count(workers: int | None = None) -> int:
    """Workers of a local cluster: the argument, else ``$NICSPEC_WORKERS``, else every core."""
    if workers is None:
        text = os.environ.get(WORKERS_ENV, "").strip()
        if text:
            try:
                workers = int(text)
            except ValueError:
                raise DataError(f"{WORKERS_ENV}={text!r} is not a whole number") from None
    n = usable_cores() if workers is None else int(workers)
    if n < 1:
        raise DataError(f"the number of workers must be at least 1, got {n}")
    return n


def get_client(scheduler: str | None = None, workers: int | None = None) -> Any:
    """The Dask client for this process (None when the setting is ``serial``)."""
    global _client, _client_address
    setting = scheduler_setting(scheduler)
    if setting == SERIAL:
        return None
    running = _client is not None and _client.status == "running"
    if (
        running
        and not setting
        and workers is None
        and not os.environ.get(WORKERS_ENV, "").strip()
        and str(_client_address).startswith("local:")
    ):
        return _client  # the local cluster this process started, whatever its size
    wanted = setting or f"local:{worker_count(workers)}"
    if running and _client_address == wanted:
        return _client
    close()
    from distributed import Client, LocalCluster

    if setting:
        try:
            _client = Client(setting, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise DataError(
                f"cannot reach the Dask scheduler at {setting} ({type(exc).__name__}); start it, "
                f"or unset {SCHEDULER_ENV} to use a local cluster"
            ) from None
    else:
        # One single-threaded process per core: the codecs and torch are not thread-parallel
        # here, and processes keep the GIL out of the way. The workers inherit one BLAS thread.
        import dask

        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        with dask.config.set(LOCAL_CONFIG):  # the workers take the config they start with
            cluster = LocalCluster(
                n_workers=worker_count(workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: never a clash with another cluster
                worker_dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            _client = Client(cluster)
    _client_address = wanted
    return _client


def close() -> None:
    """Close this process's client (and its local cluster)."""
    global _client, _client_address
    if _client is not None:
        cluster = getattr(_client, "cluster", None)
        with contextlib.suppress(Exception):
            _client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
    _client, _client_address = None, None


# --- rounds -----------------------------------------------------------------------------------


@dataclass
class Collector:
    """What one round submitted (by store key) and where its placeholders live."""

    client: Any
    pending: dict[str, Any] = field(default_factory=dict)
    blocked: int = 0
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nicspec-round-")))

    def submit(self, key: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Submit ``fn(*args, **kwargs)`` once per key (the scheduler dedups across clients)."""
        if key not in self.pending:
            self.pending[key] = self.client.submit(
                in_context(fn), *args, key=f"nicspec-{key}", **kwargs
            )

    def wait(self, desc: str = "tasks") -> None:
        """Wait for this round's tasks; the first failed task's error is raised here."""
        for _ in finished(list(self.pending.values()), desc):
            pass

    def cleanup(self) -> None:
        """Remove the placeholders of this round."""
        shutil.rmtree(self.scratch, ignore_errors=True)


def task_error(exc: BaseException) -> NicspecError:
    """A task's exception as the one-line error the CLI prints (ours pass through)."""
    if isinstance(exc, NicspecError):
        return exc
    return DataError(f"a task failed: {type(exc).__name__}: {exc}")


def finished(futures: list[Any], desc: str = "tasks", progress: bool = True) -> Iterator[Any]:
    """Yield each future as it finishes, counting them on a progress bar
    (:func:`progress_stream`); the first failed task's error is raised (:func:`task_error`)
    and the futures not yet finished are cancelled."""
    from distributed import as_completed

    bar, stream = None, progress_stream() if progress else None
    if stream is not None and futures:
        from tqdm import tqdm

        bar = tqdm(total=len(futures), desc=desc, unit="task", file=stream)
    done = 0
    try:
        for future in as_completed(futures):
            if future.status == "error":
                raise task_error(future.exception())
            done += 1
            yield future
            if bar is not None:
                bar.update(1)
    finally:
        if done < len(futures) and futures:
            with contextlib.suppress(Exception):
                futures[0].client.cancel([f for f in futures if not f.done()])
        if bar is not None:
            bar.close()
        if stream not in (None, sys.stderr):
            stream.close()


# What a task must see of the chapter that submitted it: the profile being built and the
# chapter's uses log (store.covers, store.note_use), and whether bundles are ignored. Workers
# start once per book, so these are sent with every task, not inherited.
CONTEXT_ENV = ("NICSPEC_PROFILE", "NICSPEC_USES_LOG", "NICSPEC_FRESH")


@dataclass(frozen=True)
class InContext:
    """``fn`` run with the submitting process's :data:`CONTEXT_ENV` (restored afterwards)."""

    fn: Callable[..., Any]
    env: tuple[tuple[str, str | None], ...]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        saved = {name: os.environ.get(name) for name, _ in self.env}
        try:
            for name, value in self.env:
                _set_env(name, value)
            return self.fn(*args, **kwargs)
        finally:
            for name, value in saved.items():
                _set_env(name, value)


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def in_context(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` wrapped to run in this process's chapter context (:class:`InContext`)."""
    return InContext(fn, tuple((name, os.environ.get(name)) for name in CONTEXT_ENV))


def map_tasks(
    fn: Callable[..., T],
    items: list[Any],
    desc: str = "tasks",
    *,
    client: Any = None,
    progress: bool = True,
    broadcast: dict[str, Any] | None = None,
) -> Iterator[tuple[int, T]]:
    """``(index, fn(item, **broadcast))`` for each item, in the order they finish.

    With ``client`` None the items run here, one after another, in order; else each item is a
    task on the client (``broadcast`` values are scattered to every worker once) and the
    results come back as the tasks finish (:func:`finished`: progress bar, first error).
    """
    extra = dict(broadcast or {})
    if client is None:
        for index, item in enumerate(items):
            yield index, fn(item, **extra)
        return
    if extra:
        # hash=False: a random key per call. With content keys, scattering the same values again
        # while the previous call's futures are being released cancels the new tasks ("lost
        # dependencies": dask/distributed#4612).
        scattered = client.scatter(list(extra.values()), broadcast=True, hash=False)
        extra = dict(zip(extra, scattered, strict=True))
    task = in_context(fn)
    futures = [client.submit(task, item, pure=False, **extra) for item in items]
    position = {f.key: i for i, f in enumerate(futures)}
    for future in finished(futures, desc, progress):
        yield position[future.key], future.result()


def collecting() -> Collector | None:
    """The round in progress, or None (evaluations then run in-process)."""
    return _collector


@contextlib.contextmanager
def _round(collector: Collector) -> Iterator[None]:
    global _collector
    previous, _collector = _collector, collector
    try:
        yield
    finally:
        _collector = previous


def progress_stream() -> Any:
    """Where rounds draw their progress bar: stderr; ``NICSPEC_PROGRESS=0`` hides it and
    ``NICSPEC_PROGRESS=FILE`` appends it to FILE (the book's ``_build/progress.log``)."""
    value = os.environ.get(PROGRESS_ENV, "").strip()
    if value.lower() in ("0", "false", "no"):
        return None
    if value and value.lower() not in ("1", "true", "yes"):
        try:
            return open(value, "a")  # noqa: SIM115 - closed by the caller
        except OSError:
            return None
    return sys.stderr


def sweep(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorate a study function so that every call runs through :func:`parallel`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return parallel(fn, *args, **kwargs)

    return wrapper


def parallel(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with its missing evaluations computed on Dask (module doc)."""
    if _collector is not None:  # nested: the outer round collects
        return fn(*args, **kwargs)
    client = get_client()
    if client is None:
        return fn(*args, **kwargs)
    name = getattr(fn, "__name__", "sweep")
    last_run.update(rounds=0, submitted=0)
    for round_number in range(1, MAX_ROUNDS + 1):
        last_run["rounds"] = round_number
        collector = Collector(client)
        out, err = io.StringIO(), io.StringIO()
        failure: BaseException | None = None
        result: Any = None
        try:
            with (
                _round(collector),
                warnings.catch_warnings(record=True) as caught,
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
            ):
                warnings.simplefilter("always")
                result = fn(*args, **kwargs)
        except Exception as exc:  # a placeholder's NaN may break a later step: retried below
            failure = exc
        try:
            if not collector.pending and not collector.blocked:
                if failure is not None:
                    raise failure
                sys.stdout.write(out.getvalue())
                sys.stderr.write(err.getvalue())
                for w in caught:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                return result
            if not collector.pending:
                raise DataError(
                    f"{name}: {collector.blocked} evaluation(s) wait on results that "
                    "no task computes"
                )
            last_run["submitted"] += len(collector.pending)
            collector.wait(desc=f"{name} (round {round_number})")
        finally:
            collector.cleanup()
    raise DataError(f"{name}: still submitting tasks after {MAX_ROUNDS} rounds")


# --- placeholders -----------------------------------------------------------------------------


def placeholder_entry(
    collector: Collector, key: str, metrics: dict[str, Any], shape: tuple[int, int], maps: list[str]
) -> Path:
    """A metrics.json (NaN numbers) and a spectra.npz (NaN maps of ``shape``) standing in for
    an evaluation still running; return the metrics path."""
    from ..spectral import radial_profile

    folder = collector.scratch / key
    folder.mkdir(parents=True, exist_ok=True)
    nan_map = np.full(shape, np.nan, dtype=np.float32)
    radius, profile = radial_profile(np.zeros(shape))
    arrays: dict[str, np.ndarray] = {"n_images": np.asarray(metrics.get("n_images", 0))}
    for m in maps:
        arrays[m] = nan_map
        arrays[f"radial_{m}"] = np.full(profile.shape, np.nan)
    arrays["radius"] = radius
    from ..store import save_maps

    save_maps(folder / "spectra.npz", arrays)
    (folder / "metrics.json").write_text(json.dumps(metrics))  # NaN is valid for json.loads
    return folder / "metrics.json"


def is_missing(value: Any) -> bool:
    """A NaN from a placeholder (or None)."""
    return value is None or (isinstance(value, float) and math.isnan(value))
