"""Fourier heat maps (Yin et al. 2019): a codec's PSNR under single-frequency perturbations.

Definitions (``grid`` = G, even; ``crop`` = S; h = G // 2):

- Frequencies are offsets (u, v) from the centre of the fftshifted S x S spectrum (row u, column
  v, in cycles per S pixels). :func:`fourier_basis` is the real image of one frequency: the
  inverse FFT of a spectrum holding ones at (u, v) and at its mirror (-u, -v), real part,
  scaled to L2 norm 1 (a cosine; the mirror gives the same image).
- The *one-sided table* has G x (h + 1) entries: rows u = -h .. h-1 (index r = u + h) and
  columns v = -h .. 0 (index c = v + h); 64 x 33 = 2,112 bases for G = 64.
- The *map* is (G-1) x (G-1): rows and columns u, v = -(h-1) .. h-1. Entries with v <= 0 come
  from the table (its first row u = -h and first column v = -h, which have no mirror inside the
  window, are dropped); entries with v > 0 are the table at (-u, -v) (point reflection through
  the origin, the same basis image). On the column v = 0 the table measures both (u, 0) and
  (-u, 0), the same basis with different random signs; the map holds their mean at both places
  (or the one that was computed). The map is therefore point-symmetric by construction.
- Each basis is added as ``eps * basis`` to every RGB channel of the centre S x S crop (values in
  [0, 1]) with an independent random sign per channel and image (a per-basis generator seeded
  with ``(seed, r, c)``, so results do not depend on order or batching), clipped to [0, 1] and
  rounded to 8 bits (codecs take uint8 images). PSNR (RGB, 8-bit rounded, :func:`metrics.psnr`)
  of the reconstruction is taken against the perturbed input and against the clean crop and
  averaged over images; a lossless image gives ``inf`` (``null`` in JSON) and so does any mean
  that includes one.

Each basis is cached as one small JSON file ``<cache_dir>/<config key>/bases/r<r>_c<c>.json``
(per-image PSNRs and bpp), so an interrupted run resumes where it stopped. The bases still
missing are Dask tasks (:mod:`.scheduler`), a chunk of bases each, and each chunk writes its
bases' files when it finishes; with the ``serial`` setting they run here. NIC codecs run in
estimate mode by default with many perturbed images per forward pass (the same passes in a
task as in-process, so the records are the same); a worker loads a codec once.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..cache import canonical_json, config_key, json_safe, read_json, results_dir
from ..errors import DataError, UsageError
from ..io import atomic_save_npz, atomic_write_bytes, atomic_write_json

SCHEMA = 1
MEASURE = "psnr rgb 8-bit rounded; input clipped to [0,1] and rounded to uint8"


# --- bases and perturbations -------------------------------------------------------------------
def fourier_basis(size: int, i: int, j: int) -> np.ndarray:
    """Real Fourier basis image (size x size, float64, L2 norm 1) of shifted-spectrum entry (i, j).

    ``(i, j)`` index the fftshifted spectrum (the centre, DC, is ``(size // 2, size // 2)``).
    """
    if size < 1 or not (0 <= i < size and 0 <= j < size):
        raise UsageError(f"frequency ({i}, {j}) is outside a {size}x{size} spectrum")
    c = size // 2
    spec = np.zeros((size, size), dtype=np.complex128)
    spec[i, j] = 1.0
    spec[(2 * c - i) % size, (2 * c - j) % size] = 1.0
    img = np.fft.ifft2(np.fft.ifftshift(spec)).real
    return img / np.linalg.norm(img)


def perturb(
    images: np.ndarray | Sequence[np.ndarray],
    basis: np.ndarray,
    eps: float = 4.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Add ``eps * basis`` with a random sign per channel and image; clip; round to uint8.

    ``images`` is N x H x W x 3 uint8 (or a list of such images); returns the same shape, uint8.
    """
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise UsageError(f"perturb expects N x H x W x 3 uint8 images, got {arr.shape} {arr.dtype}")
    if basis.shape != arr.shape[1:3]:
        raise UsageError(f"basis {basis.shape} does not match images {arr.shape[1:3]}")
    rng = rng if rng is not None else np.random.default_rng()
    signs = rng.choice(np.array([-1.0, 1.0]), size=(arr.shape[0], 1, 1, 3))
    x = arr.astype(np.float64) / 255.0 + float(eps) * signs * basis[None, :, :, None]
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The central size x size crop of an HxWx3 image (DataError if it is smaller)."""
    h, w = img.shape[:2]
    if h < size or w < size:
        raise DataError(f"image is {w}x{h}; a {size}x{size} crop needs a larger image")
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[top : top + size, left : left + size])


def table_shape(grid: int) -> tuple[int, int]:
    """Shape of the one-sided table: grid x (grid // 2 + 1)."""
    return grid, grid // 2 + 1


def table_bases(grid: int) -> list[tuple[int, int]]:
    """All (r, c) indices of the one-sided table, row-major."""
    rows, cols = table_shape(grid)
    return [(r, c) for r in range(rows) for c in range(cols)]


def spectrum_index(r: int, c: int, grid: int, crop: int) -> tuple[int, int]:
    """Shifted-spectrum index (i, j) in the crop x crop plane of table entry (r, c)."""
    return crop // 2 - grid // 2 + r, crop // 2 - grid // 2 + c


def mirror_table(table: np.ndarray) -> np.ndarray:
    """grid x (grid//2+1) table -> point-symmetric (grid-1) x (grid-1) map (see module doc)."""
    g, half1 = table.shape
    h = g // 2
    if g % 2 or half1 != h + 1 or g < 2:
        raise UsageError(f"expected a G x (G/2+1) table with G even, got {table.shape}")
    left = np.array(table[1:, 1:], dtype=np.float64)  # u = -(h-1)..h-1, v = -(h-1)..0
    col, flip = left[:, -1].copy(), left[::-1, -1].copy()  # v = 0: (u, 0) and (-u, 0)
    with np.errstate(invalid="ignore"):
        left[:, -1] = np.where(np.isnan(flip), col, np.where(np.isnan(col), flip, (col + flip) / 2))
    right = left[::-1, :-1][:, ::-1]  # v = 1..h-1 from (-u, -v)
    return np.concatenate([left, right], axis=1)


def map_axis(grid: int) -> np.ndarray:
    """Frequency offsets (cycles per crop) of the map's rows and columns: -(g/2-1)..g/2-1."""
    h = grid // 2
    return np.arange(-(h - 1), h)


# --- per-basis work ------------------------------------------------------------------------------
def _basis_rng(seed: int, r: int, c: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(r), int(c)])


def _psnr_or_inf(a: np.ndarray, b: np.ndarray) -> float:
    from ..metrics import psnr

    return psnr(a, b)


def _record(
    cleans: np.ndarray, inputs: np.ndarray, results: Sequence[Any]
) -> dict[str, list[float | None]]:
    """Per-image PSNRs (None for inf) and bpp of one basis."""
    rec: dict[str, list[float | None]] = {"psnr_perturbed": [], "psnr_clean": [], "bpp": []}
    for clean, inp, res in zip(cleans, inputs, results, strict=True):
        out = np.asarray(res.reconstruction)
        if out.shape != inp.shape:
            raise DataError(f"codec returned a {out.shape} reconstruction for {inp.shape}")
        for key, ref in (("psnr_perturbed", inp), ("psnr_clean", clean)):
            v = _psnr_or_inf(out, ref)
            rec[key].append(v if math.isfinite(v) else None)
        rec["bpp"].append(float(res.bpp))
    return rec


def perturbed_inputs(
    cleans: np.ndarray, r: int, c: int, grid: int, eps: float, seed: int
) -> np.ndarray:
    """The perturbed crops of table entry (r, c) (deterministic in seed, r, c)."""
    crop = cleans.shape[1]
    basis = fourier_basis(crop, *spectrum_index(r, c, grid, crop))
    return perturb(cleans, basis, eps, _basis_rng(seed, r, c))


# Codecs of this process (a worker's), by their arguments: a NIC model is loaded once.
_CODECS: dict[str, Any] = {}
_CODECS_KEEP = 2


def _task_codec(codec_args: tuple[str, Any, Any, dict[str, Any]]) -> Any:
    from .evaluate import get_codec

    key = canonical_json({"codec": list(codec_args)})
    if key not in _CODECS:
        while len(_CODECS) >= _CODECS_KEEP:
            del _CODECS[next(iter(_CODECS))]
        name, quality, bpp, options = codec_args
        _CODECS[key] = get_codec(name, quality=quality, bpp=bpp, **options)
    return _CODECS[key]


def _bases_task(
    chunk: dict[str, Any], cleans: np.ndarray
) -> list[tuple[tuple[int, int], dict[str, list[float | None]]]]:
    """A Dask task: the records of a chunk of bases, each written to its file when computed."""
    import warnings

    warnings.filterwarnings("ignore", message=".*torch.jit.script.*")  # compressai's, on load
    folder = Path(chunk["folder"])
    done = []
    for rc, rec in _compute(
        _task_codec(chunk["codec_args"]), cleans, chunk["bases"], chunk["grid"], chunk["eps"],
        chunk["seed"], chunk["neural"], chunk["batch_size"],
    ):  # fmt: skip
        atomic_write_json(_basis_path(folder, *rc), rec)
        done.append((rc, rec))
    return done


def _chunks(todo: list[tuple[int, int]], per_call: int, workers: int) -> list[list[Any]]:
    """``todo`` in order, in chunks of a multiple of ``per_call`` bases: about 4 per worker (so
    the workers stay busy to the end), at most 64 bases each (so progress and resume stay fine)."""
    size = min(64, max(1, math.ceil(len(todo) / (4 * max(1, workers)))))
    size = per_call * max(1, math.ceil(size / per_call))
    return [todo[i : i + size] for i in range(0, len(todo), size)]


# --- the heat map ---------------------------------------------------------------------------------
@dataclass
class HeatmapResult:
    """Tables (one-sided, NaN where not computed), mirrored maps, axes, config and timing."""

    table_perturbed: np.ndarray
    table_clean: np.ndarray
    table_bpp: np.ndarray
    config: dict[str, Any]
    key: str
    timing: dict[str, float | int] = field(default_factory=dict)

    @property
    def grid(self) -> int:
        """The grid size G."""
        return int(self.table_perturbed.shape[0])

    @property
    def map_perturbed(self) -> np.ndarray:
        """(G-1) x (G-1) map of mean PSNR vs the perturbed input."""
        return mirror_table(self.table_perturbed)

    @property
    def map_clean(self) -> np.ndarray:
        """(G-1) x (G-1) map of mean PSNR vs the clean crop."""
        return mirror_table(self.table_clean)

    @property
    def map_bpp(self) -> np.ndarray:
        """(G-1) x (G-1) map of mean bpp."""
        return mirror_table(self.table_bpp)

    def save(self, out: str | os.PathLike[str], figure: bool = True) -> Path:
        """Write heatmap.npz, heatmap.json (and heatmap.png) to ``out``; return the folder."""
        folder = Path(out)
        axis = map_axis(self.grid)
        atomic_save_npz(
            folder / "heatmap.npz",
            map_perturbed=self.map_perturbed,
            map_clean=self.map_clean,
            map_bpp=self.map_bpp,
            table_perturbed=self.table_perturbed,
            table_clean=self.table_clean,
            table_bpp=self.table_bpp,
            freq_u=axis,
            freq_v=axis,
        )
        if figure:
            atomic_write_bytes(folder / "heatmap.png", self.figure_png())
        atomic_write_json(
            folder / "heatmap.json",
            json_safe(
                {
                    "nicspec": __version__,
                    "key": self.key,
                    "config": self.config,
                    "timing": self.timing,
                    "mean_psnr_perturbed": _nanmean(self.table_perturbed),
                    "mean_psnr_clean": _nanmean(self.table_clean),
                    "npz": "heatmap.npz",
                }
            ),
        )
        return folder

    def figure_png(self) -> bytes:
        """PNG bytes of the two maps side by side (non-finite cells blank)."""
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = self.grid // 2 - 1
        ext = (-h - 0.5, h + 0.5, h + 0.5, -h - 0.5)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
        for ax, data, title in (
            (axes[0], self.map_perturbed, "PSNR vs perturbed input (dB)"),
            (axes[1], self.map_clean, "PSNR vs clean input (dB)"),
        ):
            shown = np.ma.masked_invalid(data)
            im = ax.imshow(shown, extent=ext, cmap="viridis")
            ax.set_title(title)
            ax.set_xlabel("v (cycles / crop)")
            ax.set_ylabel("u (cycles / crop)")
            fig.colorbar(im, ax=ax)
        fig.suptitle(f"{self.config['codec'].get('codec', '')} on {self.config['dataset']}")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        return buf.getvalue()


def _nanmean(a: np.ndarray) -> float | None:
    finite = a[np.isfinite(a)]
    return float(finite.mean()) if finite.size else None


def _mean(values: list[float | None]) -> float:
    if any(v is None for v in values):
        return math.inf
    return float(np.mean([float(v) for v in values if v is not None])) if values else math.nan


def _check_sizes(grid: int, crop: int, eps: float, batch_size: int, jobs: int) -> None:
    if grid < 2 or grid % 2:
        raise UsageError(f"grid must be an even number >= 2, got {grid}")
    if crop < grid:
        raise UsageError(f"crop ({crop}) must be at least the grid ({grid})")
    if not (math.isfinite(eps) and eps >= 0):
        raise UsageError(f"eps must be a non-negative number, got {eps}")
    if batch_size < 1 or jobs < 1:
        raise UsageError("batch size and jobs must be at least 1")


def heatmap(
    codec_name: str,
    dataset: Any,
    grid: int = 64,
    crop: int = 512,
    images: Sequence[str] | None = None,
    limit: int | None = None,
    eps: float = 4.0,
    seed: int = 0,
    quality: float | None = None,
    bpp: float | None = None,
    codec_options: dict[str, Any] | None = None,
    estimate: bool = True,
    batch_size: int = 16,
    jobs: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    bases: Sequence[tuple[int, int]] | None = None,
    progress: bool = True,
    scheduler: str | None = None,
) -> HeatmapResult:
    """Fourier heat map of one codec setting on a dataset (see module doc for definitions).

    ``estimate`` applies to NIC codecs only (likelihood bpp, batched forward passes of
    ``batch_size`` images). The missing bases are Dask tasks: ``scheduler`` (or
    ``$NICSPEC_SCHEDULER``) names a cluster or ``serial``; else a local cluster of ``jobs``
    workers (default ``$NICSPEC_WORKERS`` or every core). ``bases`` restricts the run to some
    (r, c) table entries (others stay NaN). Results are cached per basis under ``cache_dir``
    (default ``results_dir()/fourier_heatmap``).
    """
    from ..data import Dataset, get_dataset
    from . import scheduler as engine
    from .evaluate import _codec_config, get_codec, is_neural_codec

    started = time.perf_counter()
    grid, crop, eps = int(grid), int(crop), float(eps)
    _check_sizes(grid, crop, eps, int(batch_size), 1 if jobs is None else int(jobs))
    neural = is_neural_codec(codec_name)
    options = dict(codec_options or {})
    if neural:
        options.setdefault("estimate", bool(estimate))
        if options["estimate"]:
            options.setdefault("batch_size", int(batch_size))
    codec = get_codec(codec_name, quality=quality, bpp=bpp, **options)
    getattr(codec, "_require_setting", lambda: None)()  # fail before any work
    ds = dataset if isinstance(dataset, Dataset) else get_dataset(str(dataset))
    ds = ds.select(list(images) if images else None, limit)
    ids = ds.image_ids
    if not ids:
        raise DataError(f"dataset {ds.name!r} has no images")
    cleans = np.stack([centre_crop(ds.load(i), crop) for i in ids])

    codec_cfg = _codec_config(codec)
    codec_cfg.pop("batch_size", None)
    config: dict[str, Any] = {
        "schema": SCHEMA,
        "codec": codec_cfg,
        "dataset": ds.name,
        "image_ids": ids,
        "grid": grid,
        "crop": crop,
        "eps": eps,
        "seed": int(seed),
        "measure": MEASURE,
    }
    config = json.loads(canonical_json(config))
    key = config_key(config)
    folder = Path(cache_dir) if cache_dir is not None else results_dir() / "fourier_heatmap"
    folder = folder / key
    atomic_write_json(folder / "config.json", config)

    wanted = list(table_bases(grid) if bases is None else bases)
    rows, cols = table_shape(grid)
    for r, c in wanted:
        if not (0 <= r < rows and 0 <= c < cols):
            raise UsageError(f"basis ({r}, {c}) is outside the {rows}x{cols} table")
    records: dict[tuple[int, int], dict[str, Any]] = {}
    todo = []
    for rc in wanted:
        hit = read_json(_basis_path(folder, *rc))
        if isinstance(hit, dict) and len(hit.get("psnr_perturbed", [])) == len(ids):
            records[rc] = hit
        else:
            todo.append(rc)

    t0 = time.perf_counter()
    client = engine.get_client(scheduler, workers=jobs) if todo else None
    if client is None:
        bar = _bar(len(todo), progress, f"fhm {codec.name}")
        try:
            for (r, c), rec in _compute(
                codec, cleans, todo, grid, eps, int(seed), neural, int(batch_size)
            ):
                atomic_write_json(_basis_path(folder, r, c), rec)
                records[(r, c)] = rec
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    else:
        workers = len(client.scheduler_info().get("workers", {}))
        common = {
            "codec_args": (codec_name, quality, bpp, options), "grid": grid, "eps": eps,
            "seed": int(seed), "neural": neural, "batch_size": int(batch_size),
            "folder": str(folder),
        }  # fmt: skip
        chunks = [
            {**common, "bases": b}
            for b in _chunks(todo, _per_call(neural, batch_size, len(ids)), workers)
        ]
        for _, done in engine.map_tasks(
            _bases_task, chunks, f"fhm {codec.name}", client=client, progress=progress,
            broadcast={"cleans": cleans},
        ):  # fmt: skip
            records.update({tuple(rc): rec for rc, rec in done})  # type: ignore[misc]
    compute_s = time.perf_counter() - t0

    tables = {k: np.full((rows, cols), np.nan) for k in ("psnr_perturbed", "psnr_clean", "bpp")}
    for (r, c), rec in records.items():
        for k, t in tables.items():
            t[r, c] = _mean(rec[k])
    return HeatmapResult(
        tables["psnr_perturbed"],
        tables["psnr_clean"],
        tables["bpp"],
        config,
        key,
        {
            "wall_s": time.perf_counter() - started,
            "compute_s": compute_s,
            "computed": len(todo),
            "cached": len(wanted) - len(todo),
            "n_images": len(ids),
        },
    )


def _basis_path(folder: Path, r: int, c: int) -> Path:
    return folder / "bases" / f"r{r:03d}_c{c:03d}.json"


def _bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="basis", file=sys.stderr, leave=False)


def _per_call(neural: bool, batch_size: int, n_images: int) -> int:
    """Bases per codec call: NIC forward passes of about ``batch_size`` images, else one."""
    return max(1, int(batch_size) // n_images) if neural else 1


def _compute(
    codec: Any,
    cleans: np.ndarray,
    todo: list[tuple[int, int]],
    grid: int,
    eps: float,
    seed: int,
    neural: bool,
    batch_size: int,
) -> Any:
    """Yield ((r, c), record) for each basis in ``todo``, in order."""
    n = len(cleans)
    per_call = _per_call(neural, batch_size, n)
    for start in range(0, len(todo), per_call):
        group = [tuple(rc) for rc in todo[start : start + per_call]]
        inputs = [perturbed_inputs(cleans, r, c, grid, eps, seed) for r, c in group]
        results = codec.compress_batch([im for batch in inputs for im in batch])
        for k, rc in enumerate(group):
            yield rc, _record(cleans, inputs[k], results[k * n : (k + 1) * n])


# --- analysis: clean baselines, radial bands, profiles, checks, figures ---------------------------
PAPER_CROP = 512
PAPER_EPS = 4.0
J2K = "jpeg2000"


def scaled_eps(crop: int, eps: float = PAPER_EPS, ref_crop: int = PAPER_CROP) -> float:
    """The L2 norm on a crop x crop plane that gives the per-pixel amplitude of ``eps`` on
    ``ref_crop`` (a unit-norm basis has amplitude ~ 1 / crop, so the norm scales with the crop)."""
    if crop < 1 or ref_crop < 1:
        raise UsageError(f"crop sizes must be positive, got {crop} and {ref_crop}")
    return float(eps) * int(crop) / int(ref_crop)


def full_drop(baseline_psnr: float, eps: float, crop: int) -> float:
    """PSNR drop (dB) from adding an error of L2 norm ``eps`` per channel on a crop x crop plane
    (MSE eps^2 / crop^2, uncorrelated) to an error of PSNR ``baseline_psnr``: what G loses if a
    codec removes the perturbation entirely, and R if it passes it on unchanged."""
    base_mse = 10.0 ** (-float(baseline_psnr) / 10.0)
    return 10.0 * math.log10(1.0 + (float(eps) / int(crop)) ** 2 / base_mse)


def excess_share(
    psnr: float | np.ndarray, baseline_psnr: float, eps: float, crop: int
) -> float | np.ndarray:
    """(MSE - clean MSE) / perturbation MSE, from PSNRs (MSE = 10^(-PSNR/10)): how much of the
    perturbation's energy an error gained. For an output that passes a fraction ``a`` of the
    perturbation on top of its clean error, about (1 - a)^2 against the perturbed input (G: the
    share removed) and a^2 against the clean input (R: the share passed); 0 in both for a codec
    whose error does not change. Independent of the clean PSNR, unlike a drop in dB."""
    q = (float(eps) / int(crop)) ** 2
    if q <= 0:
        raise UsageError("the excess share needs a perturbation (eps > 0)")
    return (10.0 ** (-np.asarray(psnr, dtype=np.float64) / 10.0)
            - 10.0 ** (-float(baseline_psnr) / 10.0)) / q  # fmt: skip


def map_frequency(grid: int, crop: int) -> np.ndarray:
    """Radial frequency (cycles/px) of each map entry (u, v): sqrt(u^2 + v^2) / crop."""
    a = map_axis(grid).astype(np.float64)
    return np.hypot(a[:, None], a[None, :]) / float(crop)


@dataclass(frozen=True)
class Baseline:
    """A codec's mean PSNR (dB) and bpp on the unperturbed crops."""

    psnr: float
    bpp: float


def clean_baseline(
    codec_name: str,
    dataset: Any,
    crop: int,
    images: Sequence[str] | None = None,
    limit: int | None = None,
    **kwargs: Any,
) -> Baseline:
    """Mean PSNR and bpp of a codec on the clean centre crops, through the engine (eps 0, the DC
    entry of a 2 x 2 grid: the input is the clean crop), so it is cached like any heat map."""
    r = heatmap(
        codec_name, dataset, grid=2, crop=crop, images=images, limit=limit, eps=0.0,
        bases=[(1, 1)], **kwargs,
    )  # fmt: skip
    return Baseline(psnr=float(r.table_perturbed[1, 1]), bpp=float(r.table_bpp[1, 1]))


@dataclass
class CodecMaps:
    """One codec setting's heat map with its clean baseline and a display label."""

    label: str
    result: HeatmapResult
    baseline: Baseline

    def share_map(self, which: str = "perturbed") -> np.ndarray:
        """:func:`excess_share` of each map entry (``which``: perturbed for G, clean for R)."""
        maps = {"perturbed": self.result.map_perturbed, "clean": self.result.map_clean}
        if which not in maps:
            raise UsageError(f"which must be perturbed or clean, got {which!r}")
        cfg = self.result.config
        return np.asarray(excess_share(maps[which], self.baseline.psnr, cfg["eps"], cfg["crop"]))

    def bands(self, edges: Sequence[float] | None = None) -> dict[str, dict[str, float]]:
        """:func:`band_summary` of the map against the clean baseline."""
        return band_summary(self.result, self.baseline, edges)


def run_maps(
    codec_name: str,
    dataset: Any,
    images: Sequence[str] | None,
    grid: int,
    crop: int,
    eps: float,
    label: str | None = None,
    **kwargs: Any,
) -> CodecMaps:
    """Heat map and clean baseline of one codec setting (``kwargs`` go to :func:`heatmap`)."""
    kwargs.setdefault("progress", False)
    base_kw = {k: v for k, v in kwargs.items() if k not in ("bases", "seed")}
    baseline = clean_baseline(codec_name, dataset, crop, images=images, **base_kw)
    result = heatmap(codec_name, dataset, grid=grid, crop=crop, images=images, eps=eps, **kwargs)
    return CodecMaps(label or codec_name, result, baseline)


def rate_matched_pair(
    model: str, dataset: Any, images: Sequence[str] | None, grid: int, crop: int, eps: float,
    **kwargs: Any,
) -> tuple[CodecMaps, CodecMaps]:  # fmt: skip
    """(NIC, JPEG2000) maps: the shipped NIC ``model`` and JPEG2000 at the NIC model's mean bpp
    on the clean crops (rounded to 4 decimals; JPEG2000 sets the ratio 24 / bpp per image)."""
    nic = run_maps(f"nic:{model}", dataset, images, grid, crop, eps, label="NIC", **kwargs)
    j2k_kw = {k: v for k, v in kwargs.items() if k not in ("estimate", "batch_size")}
    j2k = run_maps(
        J2K, dataset, images, grid, crop, eps, label="JPEG2000",
        bpp=round(nic.baseline.bpp, 4), **j2k_kw,
    )  # fmt: skip
    return nic, j2k


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    sel = values[mask]
    sel = sel[~np.isnan(sel)]
    return float(sel.mean()) if sel.size else math.nan


def band_summary(
    result: HeatmapResult, baseline: Baseline | None = None, edges: Sequence[float] | None = None
) -> dict[str, dict[str, float]]:
    """Per radial band (low / medium / high, cycles/px): number of map entries, their frequency
    range, mean PSNR vs the perturbed and vs the clean input, mean bpp and, with a baseline,
    the PSNR drops ``baseline.psnr - mean`` and the mean :func:`excess_share` of the entries
    (NaN for a band with no entry in the window)."""
    crop = int(result.config["crop"])
    rho = map_frequency(result.grid, crop)
    maps = {"perturbed": result.map_perturbed, "clean": result.map_clean, "bpp": result.map_bpp}
    eps = float(result.config.get("eps", 0.0))
    shares = {}
    if baseline is not None and eps > 0:
        for k in ("perturbed", "clean"):
            shares[k] = np.asarray(excess_share(maps[k], baseline.psnr, eps, crop))
    out: dict[str, dict[str, float]] = {}
    from ..spectral import BAND_EDGES, band_masks

    lo_hi = (float(edges[0]), float(edges[1])) if edges is not None else BAND_EDGES
    bands = band_masks(rho, lo_hi)
    for band, mask in bands.items():
        rec: dict[str, float] = {"n": int(mask.sum())}
        rec["rho_min"] = float(rho[mask].min()) if mask.any() else math.nan
        rec["rho_max"] = float(rho[mask].max()) if mask.any() else math.nan
        rec["psnr_perturbed"] = _masked_mean(maps["perturbed"], mask)
        rec["psnr_clean"] = _masked_mean(maps["clean"], mask)
        rec["bpp"] = _masked_mean(maps["bpp"], mask)
        if baseline is not None:
            rec["drop_perturbed"] = baseline.psnr - rec["psnr_perturbed"]
            rec["drop_clean"] = baseline.psnr - rec["psnr_clean"]
        for k, share in shares.items():
            rec[f"share_{k}"] = _masked_mean(share, mask)
        out[band] = rec
    return out


def top_band(summary: dict[str, dict[str, float]]) -> str:
    """The highest-frequency band of a :func:`band_summary` with at least one map entry."""
    filled = [b for b, rec in summary.items() if rec["n"] > 0]
    if not filled:
        raise DataError("the heat map has no entry in any band")
    return filled[-1]


def radial_psnr_profile(
    result: HeatmapResult, which: str = "perturbed", baseline: Baseline | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of a map over rings of radius round(sqrt(u^2 + v^2)) cycles/crop: (frequency in
    cycles/px, mean, entries per ring). ``which``: perturbed / clean / bpp; with ``baseline``
    (PSNR maps only) the mean is the drop ``baseline.psnr - PSNR``. Rings past the window's
    half-width are partial (only the corners)."""
    maps = {"perturbed": result.map_perturbed, "clean": result.map_clean, "bpp": result.map_bpp}
    if which not in maps:
        raise UsageError(f"which must be one of {', '.join(maps)}, got {which!r}")
    crop = int(result.config["crop"])
    ring = np.rint(map_frequency(result.grid, crop) * crop).astype(int)
    values = maps[which]
    radii = np.unique(ring)
    means = np.array([_masked_mean(values, ring == k) for k in radii])
    counts = np.array([int((ring == k).sum()) for k in radii])
    if baseline is not None:
        if which == "bpp":
            raise UsageError("a baseline applies to the PSNR maps only")
        means = baseline.psnr - means
    return radii / float(crop), means, counts


def summary_row(maps: CodecMaps, **labels: Any) -> dict[str, Any]:
    """One table row: ``labels``, codec, clean bpp and PSNR, :func:`full_drop`, the G / R drops
    (dB) and excess shares per band, and the mean bpp of the perturbed inputs."""
    row: dict[str, Any] = {**labels, "codec": maps.label, "bpp": maps.baseline.bpp}
    row["PSNR clean"] = maps.baseline.psnr
    cfg = maps.result.config
    row["full drop"] = full_drop(maps.baseline.psnr, cfg["eps"], cfg["crop"])
    bands = maps.bands()
    for metric in ("drop", "share"):
        for measure, which in (("G", "perturbed"), ("R", "clean")):
            for band, rec in bands.items():
                row[f"{measure} {metric} {band}"] = rec.get(f"{metric}_{which}", math.nan)
    row["bpp perturbed"] = _nanmean(maps.result.map_bpp)
    return row


def band_table(rows: Sequence[dict[str, Any]]) -> Any:
    """A DataFrame of :func:`summary_row` rows, without the band columns that are empty."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    empty = [c for c in df.columns if (" drop " in c or " share " in c) and df[c].isna().all()]
    return df.drop(columns=empty)


def _val(row: Any, measure: str, metric: str, band: str) -> float:
    return float(row.get(f"{measure} {metric} {band}", math.nan))


def table_bands(table: Any) -> list[str]:
    """Bands with a G drop column in a :func:`band_table`, low to high."""
    from ..spectral import BAND_NAMES

    return [b for b in BAND_NAMES if f"G drop {b}" in table.columns]


def heatmap_checks(table: Any, metric: str = "share") -> dict[str, list[bool]]:
    """The paper's heat-map claims, one check per model (rows ``model`` x ``codec`` NIC /
    JPEG2000 of a :func:`band_table`; ``top`` is the highest band in the window; ``metric``:
    ``share`` (:func:`excess_share`, fair across clean PSNRs) or ``drop`` (dB)):

    - ``g_nic``: NIC's G loss is larger in the top band than in the low band;
    - ``g_vs_j2k``: NIC's G loss grows more from the low to the top band than JPEG2000's;
    - ``r_vs_j2k``: NIC's R loss in the top band is below JPEG2000's (it passes less of the
      high-frequency perturbation on).
    """
    bands = table_bands(table)
    checks: dict[str, list[bool]] = {"g_nic": [], "g_vs_j2k": [], "r_vs_j2k": []}
    if len(bands) < 2:
        return checks
    low, top = bands[0], bands[-1]
    for _, g in table.groupby("model", sort=False):
        nic, j2k = g[g["codec"] == "NIC"], g[g["codec"] == "JPEG2000"]
        if nic.empty:
            continue
        n = nic.iloc[0]
        checks["g_nic"].append(bool(_val(n, "G", metric, top) > _val(n, "G", metric, low)))
        if j2k.empty:
            continue
        j = j2k.iloc[0]
        n_rise = _val(n, "G", metric, top) - _val(n, "G", metric, low)
        j_rise = _val(j, "G", metric, top) - _val(j, "G", metric, low)
        checks["g_vs_j2k"].append(bool(n_rise > j_rise))
        checks["r_vs_j2k"].append(bool(_val(n, "R", metric, top) < _val(j, "R", metric, top)))
    return checks


def variant_checks(table: Any, base: str, metric: str = "share") -> dict[str, bool]:
    """Per pruned variant (``pruned`` in its model name): its R loss (``metric``) in the top
    band is below the dense ``base`` model's (it removes high-frequency perturbations more)."""
    bands = table_bands(table)
    rows = {r["model"]: r for _, r in table[table["codec"] == "NIC"].iterrows()}
    if not bands or base not in rows:
        return {}
    top = bands[-1]
    ref = _val(rows[base], "R", metric, top)
    return {m: bool(_val(r, "R", metric, top) < ref) for m, r in rows.items() if "pruned" in m}


def plot_maps(
    rows: Mapping[str, Mapping[str, np.ndarray]],
    crop: int,
    unit: str = "dB",
    title: str = "",
    cmap: str = "viridis",
) -> Any:
    """A figure of (G-1) x (G-1) maps: one row per entry of ``rows`` (row label -> column label
    -> map; the row label heads the row's first panel), axes in cycles/px for a ``crop``-px crop,
    one colour scale (and colour bar) shared within each row; non-finite entries blank."""
    import matplotlib.pyplot as plt

    if not rows or not any(rows.values()):
        raise UsageError("nothing to plot")
    ncols = max(len(r) for r in rows.values())
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(3.1 * ncols + 0.9, 2.9 * len(rows)), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for axrow, (row_label, cols) in zip(axes, rows.items(), strict=True):
        data = {k: np.ma.masked_invalid(np.asarray(m, dtype=np.float64)) for k, m in cols.items()}
        finite = [d.compressed() for d in data.values() if d.count()]
        both = np.concatenate(finite) if finite else np.array([0.0, 1.0])
        vmin, vmax = float(both.min()), float(both.max())
        im = None
        for k, (ax, (col_label, shown)) in enumerate(zip(axrow, data.items(), strict=False)):
            h = (shown.shape[0] // 2) / float(crop)
            step = 0.5 / float(crop)
            ext = (-h - step, h + step, h + step, -h - step)
            im = ax.imshow(shown, extent=ext, cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_title(col_label, fontsize=9)
            ax.set_xlabel("horizontal (cycles/px)", fontsize=8)
            ylabel = "vertical (cycles/px)"
            ax.set_ylabel(f"{row_label}\n{ylabel}" if k == 0 else ylabel, fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in axrow[len(data) :]:
            ax.axis("off")
        if im is not None:
            fig.colorbar(im, ax=list(axrow), shrink=0.9, label=unit)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_heatmaps(
    rows: Mapping[str, Mapping[str, HeatmapResult]], which: str = "perturbed", title: str = ""
) -> Any:
    """:func:`plot_maps` of the results' PSNR (``which``: perturbed / clean) or bpp maps, one
    colour scale per row."""
    attr = {"perturbed": "map_perturbed", "clean": "map_clean", "bpp": "map_bpp"}
    if which not in attr:
        raise UsageError(f"which must be one of {', '.join(attr)}, got {which!r}")
    crops = {int(r.config["crop"]) for cols in rows.values() for r in cols.values()}
    if len(crops) > 1:
        raise UsageError(f"maps of different crops in one figure: {sorted(crops)}")
    arrays = {k: {c: getattr(r, attr[which]) for c, r in cols.items()} for k, cols in rows.items()}
    unit = "bpp" if which == "bpp" else "dB"
    return plot_maps(arrays, crops.pop() if crops else 1, unit, title)


def plot_radial_profiles(
    curves: Mapping[str, tuple[HeatmapResult, Baseline]], title: str = ""
) -> Any:
    """Radial profiles of the G and R PSNR drops (dB) against frequency (cycles/px), one line per
    entry of ``curves`` (label -> (result, clean baseline)); labels ``"group: kind"`` share a
    colour per group and a line style per kind. The band edges inside the window are marked."""
    import matplotlib.pyplot as plt

    from ..spectral import BAND_EDGES

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, layout="constrained")
    styles = ["-", "--", ":", "-."]
    groups: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for label, (res, base) in curves.items():
        group, _, kind = label.partition(": ")
        colour = f"C{groups.setdefault(group, len(groups)) % 10}"
        style = styles[kinds.setdefault(kind, len(kinds)) % len(styles)]
        for ax, which in zip(axes, ("perturbed", "clean"), strict=True):
            f, drop, _ = radial_psnr_profile(res, which, base)
            ax.plot(f, drop, marker="o", ms=3, color=colour, ls=style, label=label)
    xmax = max(radial_psnr_profile(r)[0].max() for r, _ in curves.values()) if curves else 0.1
    for ax, name in zip(axes, ("G: PSNR drop vs perturbed input", "R: PSNR drop vs clean input"),
                        strict=True):  # fmt: skip
        for edge in BAND_EDGES:
            if edge <= xmax:
                ax.axvline(edge, color="grey", lw=0.8, ls="--")
        ax.axhline(0.0, color="black", lw=0.5)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("radial frequency (cycles/px)")
    axes[0].set_ylabel("clean PSNR − PSNR (dB)")
    axes[1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
