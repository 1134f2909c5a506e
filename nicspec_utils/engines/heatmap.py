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
  of the reconstruction is taken against the perturbed input and against the clean crop, with
  the bpp and the payload bpp (:func:`payload_bits`: no container or header bytes) of each
  image; a lossless image gives ``inf`` (``null`` in JSON). :class:`HeatmapResult` holds the
  means over images (inf if any image is lossless) and the per-image tables.
- A classic codec takes one rate setting for every image (``quality`` / ``bpp``) or one per
  image (``settings``: image id -> knob value, e.g. the JPEG2000 compression ratio that gives an
  image a target PSNR on its clean crop); each image is then coded at its own setting under
  every perturbation, and the per-image list enters the configuration.
- A *draw* is one seed of the random signs; :func:`heatmap_draws` runs several independent draws
  (a :class:`DrawSet`), each its own cached heat map. The chapter's analysis (clean baselines,
  rate matching, bands, standard errors, claims, figures) is :mod:`..chapters.fourier_heatmaps`.

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

SCHEMA = 2  # 2: records hold bpp_payload
RECORD_KEYS = ("psnr_perturbed", "psnr_clean", "bpp", "bpp_payload")
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


J2K_SOC_SIZ = b"\xff\x4f\xff\x51"  # a raw J2K codestream starts with SOC then SIZ


def payload_bits(res: Any) -> float:
    """Entropy-coded bits of one coded image, without container or header bytes: a NIC's
    strings (or their likelihood estimate; ``CodecResult.bits`` already leaves its container
    out), a JPEG2000 codestream less its main and tile-part headers
    (:func:`codecs.classic.j2k_header_bytes`), any other codec's whole file."""
    data = bytes(getattr(res, "bitstream", b"") or b"")
    if data[:4] == J2K_SOC_SIZ:
        from ..codecs.classic import j2k_header_bytes

        return float(8 * (len(data) - j2k_header_bytes(data)))
    return float(res.bits)


def _record(
    cleans: np.ndarray, inputs: np.ndarray, results: Sequence[Any]
) -> dict[str, list[float | None]]:
    """Per-image PSNRs (None for inf), bpp and payload bpp (:func:`payload_bits`) of one basis."""
    rec: dict[str, list[float | None]] = {k: [] for k in RECORD_KEYS}
    for clean, inp, res in zip(cleans, inputs, results, strict=True):
        out = np.asarray(res.reconstruction)
        if out.shape != inp.shape:
            raise DataError(f"codec returned a {out.shape} reconstruction for {inp.shape}")
        for key, ref in (("psnr_perturbed", inp), ("psnr_clean", clean)):
            v = _psnr_or_inf(out, ref)
            rec[key].append(v if math.isfinite(v) else None)
        rec["bpp"].append(float(res.bpp))
        rec["bpp_payload"].append(payload_bits(res) / float(out.shape[0] * out.shape[1]))
    return rec


def perturbed_inputs(
    cleans: np.ndarray, r: int, c: int, grid: int, eps: float, seed: int
) -> np.ndarray:
    """The perturbed crops of table entry (r, c) (deterministic in seed, r, c)."""
    crop = cleans.shape[1]
    basis = fourier_basis(crop, *spectrum_index(r, c, grid, crop))
    return perturb(cleans, basis, eps, _basis_rng(seed, r, c))


# Centre crops of this process, by the files they come from (a chapter asks for the same
# crops in every heat map it draws; decoding the full images each time cost it more than the
# codecs).
_CROPS: dict[tuple[Any, ...], np.ndarray] = {}
_CROPS_KEEP = 4


def _clean_crops(ds: Any, crop: int) -> np.ndarray:
    """images x crop x crop x 3 centre crops of a dataset's images (read-only, cached by the
    files' paths, sizes and modification times and the dataset's transform)."""
    stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in ds.files]
    key = (ds.transform, int(crop), tuple(stats))
    if key not in _CROPS:
        while len(_CROPS) >= _CROPS_KEEP:
            del _CROPS[next(iter(_CROPS))]
        arr = np.stack([centre_crop(ds.load(i), crop) for i in ds.image_ids])
        arr.setflags(write=False)
        _CROPS[key] = arr
    return _CROPS[key]


# Codecs of this process (a worker's), by their arguments: a NIC model is loaded once.
_CODECS: dict[str, Any] = {}
_CODECS_KEEP = 4


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
        chunk["seed"], chunk["neural"], chunk["batch_size"], chunk.get("settings"),
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
    # per-image one-sided tables (images x G x (G/2+1)) of each RECORD_KEYS entry; inf: lossless
    images: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def grid(self) -> int:
        """The grid size G."""
        return int(self.table_perturbed.shape[0])

    @property
    def seed(self) -> int:
        """The seed of the random signs (one draw)."""
        return int(self.config["seed"])

    def select(self, ids: Sequence[str]) -> HeatmapResult:
        """The same heat map on some of its images (``ids``, in that order): per-image tables
        kept, mean tables recomputed over them (inf where one is lossless)."""
        have = [str(i) for i in self.config["image_ids"]]
        missing = [str(i) for i in ids if str(i) not in have]
        if missing or not ids:
            raise UsageError(f"cannot select image(s) {', '.join(missing) or '(none)'} of this map")
        idx = [have.index(str(i)) for i in ids]
        per = {k: np.asarray(v)[idx] for k, v in self.images.items()}
        old = {"psnr_perturbed": self.table_perturbed, "psnr_clean": self.table_clean,
               "bpp": self.table_bpp}  # fmt: skip
        means = {k: per[k].mean(axis=0) if k in per else t for k, t in old.items()}
        config = {**self.config, "image_ids": [str(i) for i in ids]}
        timing = {**self.timing, "n_images": len(idx)}
        return HeatmapResult(means["psnr_perturbed"], means["psnr_clean"], means["bpp"], config,
                             self.key, timing, per)  # fmt: skip

    def image_maps(self, key: str) -> np.ndarray:
        """Per-image (G-1) x (G-1) maps of ``key`` (one of :data:`RECORD_KEYS`): images x M x M."""
        if key not in self.images:
            raise UsageError(f"no per-image {key!r}; recorded: {', '.join(self.images) or 'none'}")
        return np.stack([mirror_table(t) for t in self.images[key]])

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
    settings: Mapping[str, float] | None = None,
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
    (r, c) table entries (others stay NaN). ``settings`` (image id -> rate setting; a classic
    codec, instead of ``quality`` / ``bpp``) codes each image at its own setting. Results are
    cached per basis under ``cache_dir`` (default ``results_dir()/fourier_heatmap``).
    """
    from ..data import Dataset, get_dataset
    from . import scheduler as engine
    from .evaluate import _codec_config, is_neural_codec

    started = time.perf_counter()
    grid, crop, eps = int(grid), int(crop), float(eps)
    _check_sizes(grid, crop, eps, int(batch_size), 1 if jobs is None else int(jobs))
    neural = is_neural_codec(codec_name)
    options = dict(codec_options or {})
    if neural:
        options.setdefault("estimate", bool(estimate))
        if options["estimate"]:
            options.setdefault("batch_size", int(batch_size))
    ds = dataset if isinstance(dataset, Dataset) else get_dataset(str(dataset))
    ds = ds.select(list(images) if images else None, limit)
    ids = ds.image_ids
    if not ids:
        raise DataError(f"dataset {ds.name!r} has no images")
    image_settings = _per_image_settings(settings, ids, neural, quality, bpp)
    if image_settings is not None:
        quality = image_settings[0]  # the codec's setting; _compute codes each image at its own
    codec = _task_codec((codec_name, quality, bpp, options))  # loaded once per process
    getattr(codec, "_require_setting", lambda: None)()  # fail before any work
    cleans = _clean_crops(ds, crop)

    codec_cfg = _codec_config(codec)
    codec_cfg.pop("batch_size", None)
    if image_settings is not None:
        for s in image_settings:  # a setting out of the knob's range fails before any work
            codec.at(s)
        codec_cfg[codec.knob.param] = image_settings
        codec_cfg["rate_control"] = "per-image setting"
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
    from ..store import served_file

    records: dict[tuple[int, int], dict[str, Any]] = {}
    todo = []
    # every finished basis in one file (what a results bundle carries), else one file each
    packed_path = folder / PACKED_NAME
    packed = read_json(served_file(packed_path, ds.name))
    packed = packed if isinstance(packed, dict) else {}
    for rc in wanted:
        hit = packed.get(_basis_name(*rc)) or read_json(_basis_path(folder, *rc))
        if isinstance(hit, dict) and all(len(hit.get(k, [])) == len(ids) for k in RECORD_KEYS):
            records[rc] = hit
        else:
            todo.append(rc)

    t0 = time.perf_counter()
    client = engine.get_client(scheduler, workers=jobs) if todo else None
    if client is None:
        bar = _bar(len(todo), progress, f"fhm {codec.name}")
        try:
            for (r, c), rec in _compute(
                codec, cleans, todo, grid, eps, int(seed), neural, int(batch_size), image_settings
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
            "folder": str(folder), "settings": image_settings,
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
    if any(_basis_name(*rc) not in packed for rc in records):
        atomic_write_json(
            packed_path, {**packed, **{_basis_name(*rc): rec for rc, rec in records.items()}}
        )

    tables = {k: np.full((rows, cols), np.nan) for k in RECORD_KEYS}
    per_image = {k: np.full((len(ids), rows, cols), np.nan) for k in RECORD_KEYS}
    for (r, c), rec in records.items():
        for k, t in tables.items():
            t[r, c] = _mean(rec[k])
            per_image[k][:, r, c] = [math.inf if v is None else float(v) for v in rec[k]]
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
        per_image,
    )


def _per_image_settings(
    settings: Mapping[str, float] | None,
    ids: Sequence[str],
    neural: bool,
    quality: float | None,
    bpp: float | None,
) -> list[float] | None:
    """``settings`` in the order of ``ids`` (None when not given), checked."""
    if settings is None:
        return None
    if neural or quality is not None or bpp is not None:
        raise UsageError("per-image settings are for a classic codec, without quality or bpp")
    missing = [str(i) for i in ids if str(i) not in settings]
    if missing:
        raise UsageError(f"per-image settings lack image(s) {', '.join(missing)}")
    try:
        return [float(settings[str(i)]) for i in ids]
    except (TypeError, ValueError):
        raise UsageError(f"per-image settings must be numbers, got {dict(settings)!r}") from None


def draw_seeds(seed: int, draws: int) -> list[int]:
    """The sign seeds of ``draws`` independent draws: seed, seed + 1, ... (each basis draws its
    signs from ``default_rng([seed, r, c])``, so different seeds give independent signs)."""
    if int(draws) < 1:
        raise UsageError(f"draws must be at least 1, got {draws}")
    return [int(seed) + k for k in range(int(draws))]


@dataclass
class DrawSet:
    """Heat maps of one codec setting under several independent draws of the random signs."""

    results: list[HeatmapResult]

    def __post_init__(self) -> None:
        if not self.results:
            raise UsageError("a draw set needs at least one heat map")
        keys = {json.dumps({k: v for k, v in r.config.items() if k != "seed"}, sort_keys=True)
                for r in self.results}  # fmt: skip
        if len(keys) > 1:
            raise UsageError("the draws of a set must differ in their seed only")

    @property
    def config(self) -> dict[str, Any]:
        """The shared configuration, with ``seeds`` instead of ``seed``."""
        cfg = {k: v for k, v in self.results[0].config.items() if k != "seed"}
        return {**cfg, "seeds": self.seeds}

    @property
    def seeds(self) -> list[int]:
        """The draws' seeds."""
        return [r.seed for r in self.results]

    @property
    def grid(self) -> int:
        """The grid size G."""
        return self.results[0].grid

    def select(self, ids: Sequence[str]) -> DrawSet:
        """Every draw on some of its images (:meth:`HeatmapResult.select`)."""
        return DrawSet([r.select(ids) for r in self.results])

    def image_maps(self, key: str) -> np.ndarray:
        """images x draws x M x M per-image maps of ``key`` (:data:`RECORD_KEYS`)."""
        return np.stack([r.image_maps(key) for r in self.results], axis=1)

    def mean_map(self, key: str) -> np.ndarray:
        """M x M mean of ``key`` over images and draws (inf where an image is lossless)."""
        with np.errstate(invalid="ignore"):
            return np.asarray(self.image_maps(key).mean(axis=(0, 1)))

    @property
    def timing(self) -> dict[str, float]:
        """Summed timing of the draws."""
        keys = ("wall_s", "compute_s", "computed", "cached")
        return {k: float(sum(r.timing.get(k, 0) for r in self.results)) for k in keys}

    def save(self, out: str | os.PathLike[str], figure: bool = True) -> Path:
        """Each draw in ``out/draw_<seed>/``; with several, ``out/heatmap.npz`` and
        ``heatmap.json`` hold the means over images and draws and their per-cell standard errors
        (:func:`stats.cell_estimate`), else the one draw's files."""
        from ..stats import cell_estimate

        folder = Path(out)
        if len(self.results) == 1:
            return self.results[0].save(folder, figure)
        for r in self.results:
            r.save(folder / f"draw_{r.seed}", figure)
        axis = map_axis(self.grid)
        arrays: dict[str, np.ndarray] = {"freq_u": axis, "freq_v": axis}
        for key in ("psnr_perturbed", "psnr_clean", "bpp"):
            est = cell_estimate(self.image_maps(key))
            name = key.replace("psnr_", "")
            arrays.update({f"map_{name}": est.mean, f"se_{name}": est.se,
                           f"se_draws_{name}": est.se_draws})  # fmt: skip
        atomic_save_npz(folder / "heatmap.npz", **arrays)
        atomic_write_json(
            folder / "heatmap.json",
            json_safe({"nicspec": __version__, "keys": [r.key for r in self.results],
                       "config": self.config, "timing": self.timing,
                       "mean_psnr_perturbed": _nanmean(arrays["map_perturbed"]),
                       "mean_psnr_clean": _nanmean(arrays["map_clean"]),
                       "median_se_perturbed": _nanmedian(arrays["se_perturbed"]),
                       "median_se_clean": _nanmedian(arrays["se_clean"]),
                       "npz": "heatmap.npz"}),
        )  # fmt: skip
        return folder


def heatmap_draws(codec_name: str, dataset: Any, draws: int = 3, seed: int = 0,
                  **kwargs: Any) -> DrawSet:  # fmt: skip
    """:func:`heatmap` under ``draws`` independent sign draws (seeds :func:`draw_seeds`), each
    cached as its own heat map; ``kwargs`` go to :func:`heatmap`."""
    return DrawSet(
        [heatmap(codec_name, dataset, seed=s, **kwargs) for s in draw_seeds(seed, draws)]
    )


def _nanmedian(a: np.ndarray) -> float | None:
    finite = a[np.isfinite(a)]
    return float(np.median(finite)) if finite.size else None


PACKED_NAME = "bases.json"


def _basis_name(r: int, c: int) -> str:
    return f"r{r:03d}_c{c:03d}"


def _basis_path(folder: Path, r: int, c: int) -> Path:
    return folder / "bases" / f"{_basis_name(r, c)}.json"


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
    settings: Sequence[float] | None = None,
) -> Any:
    """Yield ((r, c), record) for each basis in ``todo``, in order (``settings``: image k
    coded at its own rate setting ``settings[k]``)."""
    n = len(cleans)
    per_call = _per_call(neural, batch_size, n)
    coders = [codec.at(s) for s in settings] if settings is not None else None
    for start in range(0, len(todo), per_call):
        group = [tuple(rc) for rc in todo[start : start + per_call]]
        inputs = [perturbed_inputs(cleans, r, c, grid, eps, seed) for r, c in group]
        flat = [im for batch in inputs for im in batch]
        if coders is None:
            results = codec.compress_batch(flat)
        else:
            results = [coders[k % n].compress(im) for k, im in enumerate(flat)]
        for k, rc in enumerate(group):
            yield rc, _record(cleans, inputs[k], results[k * n : (k + 1) * n])
