"""Build the book: jupytext (text notebooks -> .ipynb) -> papermill (a profile's parameters) ->
jupyter-book (static HTML). ``nicspec book --profile NAME [--chapters ...]`` (smoke, quick,
paper or protocol: ``book/profiles.yaml``).

Chapters are ``notebooks/NN_name.md`` (MyST notebooks paired with ``.ipynb`` by jupytext; the
``.ipynb`` files are generated, never edited). Executed notebooks land in ``book/chapters/``,
which ``_toc.yml`` lists; run times go to ``book/chapters/timings.json``.

When the repository's public URL is known (``$NICSPEC_REPOSITORY_URL``, else a GitHub remote
``origin``), the site is built from a generated copy of ``_config.yml`` that adds the Binder
launch buttons and the repository / issues buttons (:func:`write_build_config`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .errors import DataError, NicspecError, UsageError

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
EXECUTED = REPO / "book" / "chapters"
PROFILES_FILE = REPO / "book" / "profiles.yaml"
CONFIG_FILE = REPO / "_config.yml"
# The committed _config.yml plus the repository overlay (see :func:`write_build_config`).
GENERATED_CONFIG = REPO / "_build" / "_config.generated.yml"
REPOSITORY_ENV = "NICSPEC_REPOSITORY_URL"
BRANCH_ENV = "NICSPEC_REPOSITORY_BRANCH"
BINDERHUB_URL = "https://mybinder.org"
# Binder opens the text notebooks paired to .ipynb by the repository's postBuild (the executed
# chapters under book/chapters/ are generated, not committed); book/_ext rewrites the links.
BINDER_NOTEBOOKS = "notebooks"


class ChapterFailed(NicspecError):
    """A chapter raised while executing (exit code 1)."""


def load_profiles(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Profile name -> {"description": ..., "chapters": {chapter: parameters}}; DataError in
    one line for a file that is unreadable or not of that shape."""
    path = PROFILES_FILE if path is None else path
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read profiles {path}: {first}") from None

    def wrong(where: str, value: Any, want: str) -> DataError:
        return DataError(
            f"profiles {path}: {where} must be {want}, not {type(value).__name__} "
            f"({str(value)[:40]!r})"
        )

    if not isinstance(raw, dict):
        raise wrong("the file", raw, "a mapping with the key 'profiles'")
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise wrong("'profiles'", profiles, "a mapping of profile names")
    for name, profile in profiles.items():
        if not isinstance(profile, dict):
            raise wrong(f"profile {name!r}", profile, "a mapping (description, chapters)")
        chapters = profile.get("chapters") or {}
        if not isinstance(chapters, dict):
            raise wrong(f"{name}.chapters", chapters, "a mapping of chapter names")
        for chapter, params in chapters.items():
            if params is not None and not isinstance(params, dict):
                raise wrong(f"{name}.chapters.{chapter}", params, "a mapping of parameters")
    return profiles


def chapter_names() -> list[str]:
    """Chapters in reading order: the stems of ``notebooks/NN_*.md`` and ``NNx_*.md`` (a
    section of chapter NN, e.g. ``03b_fourier_heatmaps``)."""
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]*_*.md"))


def chapter_parameters(profile: str, chapter: str) -> dict[str, Any]:
    """The papermill parameters of one chapter under a profile."""
    profiles = load_profiles()
    if profile not in profiles:
        raise UsageError(f"unknown profile {profile!r}; choose from {', '.join(profiles)}")
    return dict((profiles[profile].get("chapters") or {}).get(chapter) or {})


def parse_overrides(items: Sequence[str], chapters: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items (a value read as a YAML scalar: ``draws=1`` is the integer 1) ->
    parameters that replace the profile's in every one of ``chapters``; UsageError for an item
    that is not ``NAME=VALUE`` or names a parameter some chapter's parameters cell lacks."""
    overrides: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UsageError(f"--set {item!r}: expected NAME=VALUE (e.g. draws=1)")
        try:
            overrides[name] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            raise UsageError(f"--set {item!r}: {value!r} is not a YAML scalar") from None
        if isinstance(overrides[name], (dict, list)):
            raise UsageError(f"--set {item!r}: a parameter takes one value, not {value!r}")
    for chapter in chapters:
        lacking = sorted(set(overrides) - set(notebook_parameters(chapter)))
        if lacking:
            raise UsageError(f"--set: chapter {chapter} has no parameter {', '.join(lacking)}")
    return overrides


def notebook_parameters(chapter: str) -> list[str]:
    """The names the ``parameters`` cell of a chapter's text notebook assigns."""
    text = (NOTEBOOKS / f"{chapter}.md").read_text(encoding="utf-8")
    cell = re.search(r"```\{code-cell\}[^\n]*\n:tags: \[parameters\]\n(.*?)```", text, re.S)
    if cell is None:
        return []
    return re.findall(r"^([A-Za-z_]\w*)\s*=", cell.group(1), re.M)


def pair(chapter: str) -> Path:
    """Write ``notebooks/<chapter>.ipynb`` from its text twin (jupytext); return its path."""
    import jupytext

    source = NOTEBOOKS / f"{chapter}.md"
    target = NOTEBOOKS / f"{chapter}.ipynb"
    nb = jupytext.read(source)
    nb.metadata.setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
    )
    jupytext.write(nb, target, fmt="ipynb")
    return target


def execute(
    chapter: str,
    profile: str,
    log_output: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> float:
    """Execute one chapter with papermill under a profile (``overrides`` replacing some of its
    parameters: a part of the profile's run, which its run record and page say); return
    seconds taken."""
    import papermill as pm

    source = pair(chapter)
    EXECUTED.mkdir(parents=True, exist_ok=True)
    target = EXECUTED / f"{chapter}.ipynb"
    partial = EXECUTED / f".{chapter}.partial.ipynb"
    overrides = dict(overrides or {})
    params = {**chapter_parameters(profile, chapter), **overrides}
    start = time.perf_counter()
    log_uses(profile, chapter)
    # the chapter's kernel publishes its verdicts under this profile (nicspec_utils.ledger)
    previous = os.environ.get("NICSPEC_PROFILE")
    os.environ["NICSPEC_PROFILE"] = profile
    try:
        pm.execute_notebook(
            str(source),
            str(partial),
            parameters=params,
            kernel_name="python3",
            cwd=str(REPO),
            log_output=log_output,
            progress_bar=False,
        )
    except pm.PapermillExecutionError as exc:
        raise ChapterFailed(
            f"chapter {chapter} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
            f"the partly executed notebook is {partial}"
        ) from None
    finally:
        if previous is None:
            os.environ.pop("NICSPEC_PROFILE", None)
        else:
            os.environ["NICSPEC_PROFILE"] = previous
    finish_uses(profile, chapter, time.perf_counter() - start, overrides)
    add_provenance(partial, provenance(profile, chapter, overrides))
    os.replace(partial, target)
    return time.perf_counter() - start


def log_uses(profile: str, chapter: str) -> Path:
    """Point ``$NICSPEC_USES_LOG`` at a fresh log of the store keys that ``chapter`` uses under
    ``profile`` (its kernel inherits it): ``nicspec results bundle --profile`` exports those.
    The log is ``<chapter>.keys.partial`` until :func:`finish_uses`, so a chapter killed or
    failed part-way leaves no log that a bundle would take."""
    from .bundle import run_record_path, uses_log
    from .store import USES_ENV

    log = uses_log(profile, chapter)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    run_record_path(log).unlink(missing_ok=True)
    live = log.with_name(log.name + ".partial")
    live.write_text("", encoding="utf-8")
    os.environ[USES_ENV] = str(live)
    return live


def finish_uses(
    profile: str, chapter: str, seconds: float, overrides: Mapping[str, Any] | None = None
) -> Path:
    """A chapter executed to its end: its uses log takes its final name, and its run record
    (seconds, commit, finish time, machine, the parameters that replaced the profile's) goes
    beside it, where the bundle reads them."""
    from datetime import datetime, timezone

    from .bundle import machine, run_record_path, uses_log
    from .io import atomic_write_json
    from .store import USES_ENV

    log = uses_log(profile, chapter)
    live = log.with_name(log.name + ".partial")
    if live.is_file():
        os.replace(live, log)
    elif not log.is_file():
        log.write_text("", encoding="utf-8")
    atomic_write_json(
        run_record_path(log),
        {
            "profile": profile, "chapter": chapter, "seconds": round(seconds, 1),
            "commit": _git("rev-parse", "HEAD"), "machine": machine(),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "overrides": dict(overrides or {}),
        },
    )  # fmt: skip
    os.environ[USES_ENV] = str(log)
    return log


PROVENANCE_TAG = "nicspec-provenance"


def provenance(
    profile: str, chapter: str | None = None, overrides: Mapping[str, Any] | None = None
) -> str:
    """One line for a chapter's top: the profile (and the parameters that replaced its own),
    the code version, the data, the machine (and the results bundles that served the
    chapter's entries, :func:`bundle.served_from`)."""
    import platform
    from datetime import datetime, timezone

    commit = _git("rev-parse", "--short", "HEAD") or "an unknown commit"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " with local changes"
    mirror = (os.environ.get("NICSPEC_DATA_MIRROR") or "").strip()
    data = "the data mirror" if mirror else "no data mirror (Kodak only where others are absent)"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    from .bundle import served_from

    bundled = served_from(profile, chapter) if chapter else None
    changed = ", ".join(f"{k} = {v!r}" for k, v in (overrides or {}).items())
    part = f" (a part of it: {changed} instead of the profile's)" if changed else ""
    return (
        f"*Computed with the **{profile}** profile{part}, code {commit}, {data}, on {when} "
        f"({machine}).{' ' + bundled if bundled else ''} Other profiles build into their own "
        "sites.*"
    )


def add_provenance(notebook: Path, text: str) -> None:
    """Put ``text`` in a markdown cell right after the notebook's first (title) cell."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [c for c in nb.cells if PROVENANCE_TAG not in c.get("metadata", {}).get("tags", [])]
    cell = nbformat.v4.new_markdown_cell(text, metadata={"tags": [PROVENANCE_TAG]})
    nb.cells.insert(1 if nb.cells else 0, cell)
    nbformat.write(nb, notebook)


# --- the repository's public URL: Binder and repository buttons ------------------------------

_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//)[^\s]+)$")
_GIT_HOSTS = ("github.com", "gitlab.com")


def normalise_repository_url(url: str, hosts: tuple[str, ...] | None = _GIT_HOSTS) -> str | None:
    """The browsable ``https://HOST/OWNER/REPO`` of a git remote URL, or None.

    Accepts ``https://`` (credentials dropped), ``ssh://git@HOST/...`` and scp-like
    ``git@HOST:OWNER/REPO.git``; a trailing ``.git`` or ``/`` goes. ``hosts`` limits the hosts
    (None: any host, for a URL given explicitly); ``OWNER/REPO`` must be there.
    """
    from urllib.parse import urlsplit

    url = (url or "").strip()
    if not url:
        return None
    m = _SCP_LIKE.match(url)
    if m and "://" not in url:
        host, path = m.group("host"), m.group("path")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git", "git+ssh") or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    host = host.lower()
    if host.startswith("www."):
        host = host[4:]
    if hosts is not None and host not in hosts:
        return None
    path = path.strip("/").removesuffix(".git").strip("/")
    if len([p for p in path.split("/") if p]) < 2:
        return None
    return f"https://{host}/{path}"


def _git(*args: str, cwd: Path = REPO) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, text=True, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def repository_url(environ: Any = None, cwd: Path = REPO) -> str | None:
    """The repository's public URL: ``$NICSPEC_REPOSITORY_URL`` (any host; the Pages workflow
    sets it), else ``git remote get-url origin`` when that is a GitHub or GitLab URL (ssh
    normalised to https), else None (the book then has no repository or launch buttons)."""
    env = os.environ if environ is None else environ
    given = (env.get(REPOSITORY_ENV) or "").strip()
    if given:
        url = normalise_repository_url(given, hosts=None)
        if url is None:
            raise UsageError(f"{REPOSITORY_ENV}={given!r} is not a repository URL")
        return url
    remote = _git("remote", "get-url", "origin", cwd=cwd)
    return normalise_repository_url(remote) if remote else None


def repository_branch(environ: Any = None, cwd: Path = REPO) -> str:
    """The branch launch links use: ``$NICSPEC_REPOSITORY_BRANCH``, else the checked-out
    branch, else ``main`` (a detached HEAD, or no git)."""
    env = os.environ if environ is None else environ
    given = (env.get(BRANCH_ENV) or "").strip()
    if given:
        return given
    branch = _git("rev-parse", "--abbrev-ref", "HEAD", cwd=cwd)
    return branch if branch and branch != "HEAD" else "main"


def repository_overlay(url: str | None, branch: str = "main") -> dict[str, Any]:
    """The jupyter-book settings that need the repository URL ({} without one): where the
    repository is, Binder launch buttons (classic notebook interface) and the repository and
    issues buttons."""
    if not url:
        return {}
    return {
        "repository": {"url": url, "branch": branch, "path_to_book": ""},
        "launch_buttons": {"binderhub_url": BINDERHUB_URL, "notebook_interface": "classic"},
        "html": {"use_repository_button": True, "use_issues_button": True},
    }


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def write_build_config(
    url: str | None,
    branch: str = "main",
    source: Path = CONFIG_FILE,
    target: Path = GENERATED_CONFIG,
) -> Path | None:
    """``source`` (the committed ``_config.yml``) with :func:`repository_overlay` merged in,
    written to ``target`` for ``jupyter-book build --config``; None (and no file) without a
    URL. Local-extension folders become absolute: jupyter-book resolves them against the
    config file's folder."""
    overlay = repository_overlay(url, branch)
    if not overlay:
        target.unlink(missing_ok=True)
        return None
    try:
        config = yaml.safe_load(source.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read the book configuration {source}: {exc}") from None
    config = _merge(config, overlay)
    local = (config.get("sphinx") or {}).get("local_extensions") or {}
    for name, folder in local.items():
        local[name] = str((source.parent / folder).resolve())
    target.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Generated by nicspec book from {source.name}: do not edit.\n"
    target.write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return target


def build_html(builder: str = "html") -> Path:
    """Run ``jupyter-book build`` on the repository root; return the output folder.

    With a known repository URL (:func:`repository_url`) the build reads a generated copy of
    ``_config.yml`` with the repository and Binder settings added; without one, the committed
    file (no launch buttons)."""
    script = Path(sys.executable).parent / "jupyter-book"
    if not script.exists():
        raise UsageError("jupyter-book is not installed: pip install -e '.[book]'")
    # Warnings are errors: a missing glue key or a broken cross-reference fails the build.
    cmd = [str(script), "build", str(REPO), "--builder", builder, "-W", "--keep-going"]
    url = repository_url()
    config = write_build_config(url, repository_branch()) if url else None
    if config is not None:
        cmd += ["--config", str(config)]
        print(f"book: repository {url}: Binder and repository buttons on", flush=True)
    else:
        write_build_config(None)  # no stale generated config
        print(
            f"book: no repository URL (set {REPOSITORY_ENV}, or a GitHub remote 'origin'): "
            "no Binder or repository buttons",
            flush=True,
        )
    done = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        print(tail, file=sys.stderr)
        raise DataError("jupyter-book build failed (its last lines are above)")
    return REPO / "_build" / "html"


PROGRESS_LOG = REPO / "_build" / "progress.log"


@contextlib.contextmanager
def _book_cluster() -> Iterator[str]:
    """One Dask cluster for the whole book: the chapters' kernels submit to it (through
    ``NICSPEC_SCHEDULER``), so its workers stay warm across chapters. An address already in
    ``NICSPEC_SCHEDULER`` (or ``serial``) is used as it is. Progress bars go to
    ``_build/progress.log`` rather than into the pages."""
    from .engines import scheduler as engine

    saved = {k: os.environ.get(k) for k in (engine.SCHEDULER_ENV, engine.PROGRESS_ENV)}
    setting = engine.scheduler_setting()
    try:
        if setting is None:
            client = engine.get_client()
            os.environ[engine.SCHEDULER_ENV] = client.scheduler.address
            where = f"a local cluster of {len(client.scheduler_info()['workers'])} workers"
        else:
            where = "this process (serial)" if setting == engine.SERIAL else setting
        if saved[engine.PROGRESS_ENV] is None:
            PROGRESS_LOG.parent.mkdir(parents=True, exist_ok=True)
            os.environ[engine.PROGRESS_ENV] = str(PROGRESS_LOG)
            print(f"book: task progress in {PROGRESS_LOG}", flush=True)
        yield where
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if setting is None:
            engine.close()


def default_profile() -> str:
    """The profile a newcomer's ``make book`` builds and the site publishes: ``paper`` once
    its committed results bundle (``data/results/paper``) holds every chapter (its manifest
    says ``"complete": true``; a bundle assembled chapter by chapter is not, until its last
    chapter is in), else ``quick``."""
    from .store import BUNDLE_MANIFEST, bundles_root

    try:
        manifest = json.loads((bundles_root() / "paper" / BUNDLE_MANIFEST).read_text())
    except (OSError, ValueError):
        return "quick"
    return "paper" if isinstance(manifest, dict) and manifest.get("complete") is True else "quick"


def site_dir(profile: str) -> Path:
    """Where a profile's site goes: ``_build/html`` for the default profile (the one
    published), ``_build/html-<profile>`` for the others, so one URL never mixes the verdicts
    of two profiles."""
    return REPO / "_build" / ("html" if profile == default_profile() else f"html-{profile}")


def build(
    profile: str,
    chapters: list[str] | None = None,
    html: bool = True,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Execute the chapters under a profile, record their times, then build the site.
    ``overrides``: ``NAME=VALUE`` parameters replacing the profile's (:func:`parse_overrides`)."""
    load_profiles()  # fail early on a broken profiles file
    chapter_parameters(profile, "")  # validates the profile name
    names = chapters or chapter_names()
    unknown = sorted(set(names) - set(chapter_names()))
    if unknown:
        raise UsageError(f"unknown chapter(s) {unknown}; chapters: {', '.join(chapter_names())}")
    replaced = parse_overrides(overrides, names)
    from datetime import datetime, timezone

    from .io import atomic_write_json

    timings_path = EXECUTED / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    commit = _git("rev-parse", "HEAD")
    with _book_cluster() as where:
        for name in names:
            print(f"book: executing {name} ({profile}; tasks on {where})", flush=True)
            seconds = execute(name, profile, overrides=replaced)
            timings[name] = {
                "profile": profile, "seconds": round(seconds, 1), "cpus": os.cpu_count(),
                "scheduler": where, "commit": commit, "overrides": replaced,
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }  # fmt: skip
            atomic_write_json(timings_path, timings)  # a kill keeps the chapters done
            print(f"book: {name} done in {seconds:.0f} s", flush=True)
    atomic_write_json(timings_path, timings)
    write_downloads(profile)
    out = _place_site(build_html(), profile) if html else EXECUTED
    return {"timings": timings, "output": str(out)}


DOWNLOADS = REPO / "book" / "_static" / "downloads"


def write_downloads(profile: str, folder: Path = DOWNLOADS) -> dict[str, int]:
    """The site's downloads (``_static/downloads/``, linked from the summary page): the
    per-image records of every store entry the profile's chapters used (``records.csv``) and
    every check of the ledger (``claims.csv``). Returns the rows of each."""
    import pandas as pd

    from .bundle import profile_keys
    from .io import atomic_write_bytes
    from .ledger import collect
    from .store import load_records

    try:
        keys: list[str] | None = profile_keys(profile)
    except DataError:  # no chapter logged its entries under this profile yet
        keys = None
    records = load_records(keys=keys) if keys else pd.DataFrame(columns=["key", "image_id"])
    claims = collect(profile)
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in (("records.csv", records), ("claims.csv", claims)):
        atomic_write_bytes(folder / name, table.to_csv(index=False).encode())
    return {"records.csv": len(records), "claims.csv": len(claims)}


def _place_site(built: Path, profile: str) -> Path:
    """Move jupyter-book's ``_build/html`` to the profile's own folder (:func:`site_dir`)."""
    import shutil

    target = site_dir(profile)
    if target != built:
        shutil.rmtree(target, ignore_errors=True)
        os.replace(built, target)
    return target
