"""Chapter 4's computation: power spectra, patch PCA, the linear autoencoder, frequency
responses, patch-wise linear codecs and the distribution-shift measurements (cached)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...cache import config_key
from ...corruptions import group_of
from ...engines.scheduler import sweep
from ...errors import DataError, UsageError
from ...io import atomic_save_npz, atomic_write_json
from ...spectral import LUMA, radial_profile
from .settings import CUTOFF_LEVEL, SCHEMA, TRAIN_DATASETS, _folder


def _cached_arrays(
    kind: str,
    config: Mapping[str, Any],
    compute: Callable[[], dict[str, np.ndarray]],
    out: str | Path | None,
) -> dict[str, np.ndarray]:
    """Arrays stored at ``<results>/lowpass/<kind>-<key>.npz``; computed and stored if missing."""
    from ...store import served_file

    full = {"kind": kind, "schema": SCHEMA, **config}
    key = config_key(full)
    path = _folder(out) / f"{kind}-{key}.npz"
    readable = served_file(path, datasets_in(full))
    if readable.exists():
        try:
            with np.load(readable) as z:
                return {k: np.asarray(z[k]) for k in z.files}
        except (OSError, ValueError):
            pass  # unreadable: recompute
    arrays = compute()
    atomic_save_npz(path, **arrays)
    atomic_write_json(path.with_suffix(".json"), {"key": key, "config": full})
    return arrays


def _cached_record(
    kind: str, config: Mapping[str, Any], compute: Callable[[], Any], out: str | Path | None
) -> Any:
    from ...store import served_json

    full = {"kind": kind, "schema": SCHEMA, **config}
    return served_json(_folder(out) / f"{kind}-{config_key(full)}.json", compute, datasets_in(full))


def datasets_in(config: Any) -> str:
    """The registered dataset names a configuration mentions, comma-separated (what a cached
    result rests on, for the uses log)."""
    from ...data import DATASETS

    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str) and value in DATASETS:
            found.add(value)
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(config)
    return ",".join(sorted(found))


# --- images and patches -------------------------------------------------------------------------


def luma(img: np.ndarray) -> np.ndarray:
    """Luma (``spectral.LUMA`` weights) of an HxWx3 image, float64 in [0, 1]."""
    x = np.asarray(img)
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise DataError(f"expected an HxWx3 image, got shape {x.shape}")
    return x @ np.asarray(LUMA)


@dataclass(frozen=True)
class TrainingSet:
    """A seeded selection of training images: ``images_per_dataset`` of each dataset (None: all)."""

    datasets: tuple[str, ...] = TRAIN_DATASETS
    images_per_dataset: int | None = 20
    seed: int = 0

    def config(self) -> dict[str, Any]:
        """What identifies the selection (for cache keys)."""
        return {"datasets": list(self.datasets), "n": self.images_per_dataset, "seed": self.seed}

    def refs(self) -> list[tuple[str, str]]:
        """``(dataset, image id)`` of the selected images, dataset by dataset."""
        from ...data import get_dataset

        if self.images_per_dataset is not None and self.images_per_dataset < 1:
            n = self.images_per_dataset
            raise UsageError(f"images per dataset must be at least 1, got {n}")
        out = []
        for i, name in enumerate(self.datasets):
            ids = sorted(get_dataset(name).image_ids)
            order = np.random.default_rng([self.seed, i]).permutation(len(ids))
            n = len(ids) if self.images_per_dataset is None else self.images_per_dataset
            out += [(name, ids[j]) for j in sorted(order[:n])]
        return out

    def lumas(self) -> list[np.ndarray]:
        """The selected images as luma arrays (kept in memory for the session)."""
        key = config_key(self.config())
        if key not in _LUMAS:
            from ...data import get_dataset

            cache: dict[str, Any] = {}
            imgs = []
            for name, image_id in self.refs():
                ds = cache.setdefault(name, get_dataset(name))
                imgs.append(luma(ds.load(image_id)))
            _LUMAS[key] = imgs
        return _LUMAS[key]


_LUMAS: dict[str, list[np.ndarray]] = {}


def sample_patches(
    images: Sequence[np.ndarray], size: int, per_image: int, seed: int = 0
) -> np.ndarray:
    """``per_image`` random ``size`` x ``size`` patches of each 2-D image: (N, size**2) float64.

    Positions are drawn uniformly with a generator seeded by ``(seed, size)``.
    """
    if size < 2 or per_image < 1:
        raise UsageError(f"need a patch size >= 2 and >= 1 patch per image: {size}, {per_image}")
    rng = np.random.default_rng([seed, size])
    ar = np.arange(size)
    out = []
    for img in images:
        h, w = img.shape[:2]
        if h < size or w < size:
            raise DataError(f"a {w}x{h} image is smaller than a {size}x{size} patch")
        ys = rng.integers(0, h - size + 1, per_image)
        xs = rng.integers(0, w - size + 1, per_image)
        block = img[ys[:, None, None] + ar[None, :, None], xs[:, None, None] + ar[None, None, :]]
        out.append(block.reshape(per_image, size * size))
    return np.concatenate(out).astype(np.float64)


def powerlaw_noise(shape: tuple[int, int], alpha: float, rng: np.random.Generator) -> np.ndarray:
    """A periodic Gaussian field with power spectrum ``rho**-alpha`` (DC 0), unit variance."""
    h, w = shape
    rho = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    amp = np.zeros_like(rho)
    amp[rho > 0] = rho[rho > 0] ** (-alpha / 2.0)
    field_ = np.fft.ifft2(amp * np.fft.fft2(rng.standard_normal((h, w)))).real
    return field_ / field_.std()


# --- PCA ----------------------------------------------------------------------------------------


@dataclass
class PCA:
    """Principal components of ``size`` x ``size`` patches (rows of ``components``, descending)."""

    size: int
    mean: np.ndarray
    eigenvalues: np.ndarray
    components: np.ndarray
    n_patches: int
    config: dict[str, Any] = field(default_factory=dict, repr=False)  # what it was computed from

    def projection(self, k: int) -> np.ndarray:
        """The orthogonal projection onto the top-k components (d x d)."""
        u = self.components[:k]
        return u.T @ u

    def images(self, n: int) -> np.ndarray:
        """The first ``n`` components as (n, size, size) images."""
        return self.components[:n].reshape(n, self.size, self.size)

    def optimum_mse(self, k: int) -> float:
        """Per-pixel MSE of the best rank-k linear reconstruction (trailing eigenvalues)."""
        return float(self.eigenvalues[k:].sum() / self.eigenvalues.size)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "size": np.asarray(self.size),
            "mean": self.mean,
            "eigenvalues": self.eigenvalues,
            "components": self.components,
            "n_patches": np.asarray(self.n_patches),
        }

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> PCA:
        return cls(
            int(a["size"]), a["mean"], a["eigenvalues"], a["components"], int(a["n_patches"])
        )


def pca_from_moments(total: np.ndarray, outer: np.ndarray, n: int, size: int) -> PCA:
    """PCA from the sum and the sum of outer products of ``n`` flattened patches."""
    mean = total / n
    cov = (outer - n * np.outer(mean, mean)) / max(n - 1, 1)
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    order = np.argsort(vals)[::-1]
    vals, comps = np.maximum(vals[order], 0.0), vecs[:, order].T
    # a fixed sign: the entry of largest magnitude is positive
    idx = np.argmax(np.abs(comps), axis=1)
    comps = comps * np.sign(comps[np.arange(len(comps)), idx])[:, None]
    return PCA(size, mean, vals, np.ascontiguousarray(comps), n)


def patch_pca(patches: np.ndarray, size: int) -> PCA:
    """PCA of (N, size**2) patches."""
    x = np.asarray(patches, dtype=np.float64)
    return pca_from_moments(x.sum(0), x.T @ x, len(x), size)


def pca_study(
    training: TrainingSet,
    sizes: Sequence[int],
    per_image: int,
    out: str | Path | None = None,
) -> dict[int, PCA]:
    """PCA of the training set's patches for each patch size (cached per size)."""
    result = {}
    for size in sizes:
        cfg = {"training": training.config(), "size": int(size), "per_image": int(per_image)}

        def compute(size: int = int(size)) -> dict[str, np.ndarray]:
            p = sample_patches(training.lumas(), size, per_image, training.seed)
            return patch_pca(p, size).arrays()

        p = PCA.from_arrays(_cached_arrays("pca", cfg, compute, out))
        p.config = cfg
        result[int(size)] = p
    return result


# --- power laws ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLaw:
    """``y = amplitude * x**-exponent`` fitted by least squares in log-log over [lo, hi]."""

    exponent: float
    amplitude: float
    r2: float
    lo: float
    hi: float
    n_points: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.amplitude * np.asarray(x, dtype=np.float64) ** -self.exponent


def fit_power_law(
    x: np.ndarray, y: np.ndarray, lo: float | None = None, hi: float | None = None
) -> PowerLaw:
    """Fit ``y ~ A x**-b`` on the points with ``lo <= x <= hi`` and positive finite values.

    R^2 is that of the straight line in log-log coordinates.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if lo is not None:
        keep &= x >= lo
    if hi is not None:
        keep &= x <= hi
    if keep.sum() < 3:
        raise DataError(f"a power-law fit needs 3 points in range, got {int(keep.sum())}")
    lx, ly = np.log(x[keep]), np.log(y[keep])
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + intercept)
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return PowerLaw(
        float(-slope), float(np.exp(intercept)), r2, float(x[keep].min()), float(x[keep].max()),
        int(keep.sum()),
    )  # fmt: skip


def eigen_power_law(eigenvalues: np.ndarray, first: int = 2, last: float = 0.25) -> PowerLaw:
    """Power law of eigenvalue vs rank over ranks ``first`` .. ``last * d`` (rank 1 is the
    patch mean, which also carries the power of frequencies below the patch's own)."""
    vals = np.asarray(eigenvalues, dtype=np.float64)
    ranks = np.arange(1, vals.size + 1)
    return fit_power_law(ranks, vals, lo=first, hi=max(first + 2, int(last * vals.size)))


# --- how Fourier-like are the components --------------------------------------------------------


def _sinusoid_grid(size: int, oversample: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies (half plane, step 1/(oversample*size)) and their cos / sin patches (F x d)."""
    m = oversample * size
    f = np.arange(-(m // 2), m - m // 2) / m
    fy, fx = np.meshgrid(f, f[f >= 0], indexing="ij")
    fy, fx = fy.ravel(), fx.ravel()
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    phase = 2 * np.pi * (fy[:, None] * yy.ravel()[None] + fx[:, None] * xx.ravel()[None])
    return np.stack([fy, fx], 1), np.cos(phase), np.sin(phase)


def fourier_closeness(components: np.ndarray, oversample: int = 2) -> pd.DataFrame:
    """How close each (size x size) component is to one Fourier frequency.

    Columns: ``pair_fraction`` (share of its DFT energy in its strongest +/- frequency pair,
    on the size x size DFT grid), ``radius`` (that frequency's radius, cycles/px),
    ``sinusoid_fraction`` (share of its energy captured by the best single 2-D sinusoid when
    frequencies between the grid's are allowed, step ``1 / (oversample * size)``: a DCT-like
    half cycle counts), ``sinusoid_radius``, ``ring_fraction`` (share of its DFT energy within
    half a grid step, ``0.5 / size``, of the peak's radius: frequencies of one magnitude, which
    a reflection-symmetric spectrum cannot tell apart, so a component may mix them) and
    ``centroid_radius`` (the energy-weighted mean radius of its DFT).
    """
    comps = np.asarray(components, dtype=np.float64)
    n, s = comps.shape[0], comps.shape[1]
    power = np.abs(np.fft.fft2(comps)) ** 2
    total = power.reshape(n, -1).sum(1)
    f = np.fft.fftfreq(s)
    rho = np.hypot(f[:, None], f[None, :])
    flat = power.reshape(n, -1).argmax(1)
    iy, ix = np.unravel_index(flat, (s, s))
    my, mx = (-iy) % s, (-ix) % s
    pair = power[np.arange(n), iy, ix] + np.where(
        (my == iy) & (mx == ix), 0.0, power[np.arange(n), my, mx]
    )
    peak_rho = rho[iy, ix]
    in_ring = np.abs(rho[None] - peak_rho[:, None, None]) < 0.5 / s
    ring = (power * in_ring).reshape(n, -1).sum(1)
    freqs, cos, sin = _sinusoid_grid(s, oversample)
    x = comps.reshape(n, -1)
    bc, bs = x @ cos.T, x @ sin.T
    cc, ss_, cs = (cos**2).sum(1), (sin**2).sum(1), (cos * sin).sum(1)
    det = cc * ss_ - cs**2
    two_d = (ss_ > 1e-6 * cc) & (det > 1e-6 * cc * np.maximum(ss_, 1e-300))
    with np.errstate(divide="ignore", invalid="ignore"):
        proj2 = (ss_ * bc**2 - 2 * cs * bc * bs + cc * bs**2) / det
    proj = np.where(two_d, proj2, bc**2 / cc)
    best = proj.argmax(1)
    norm2 = (x**2).sum(1)
    return pd.DataFrame({
        "rank": np.arange(1, n + 1),
        "pair_fraction": pair / total,
        "radius": rho[iy, ix],
        "sinusoid_fraction": proj[np.arange(n), best] / norm2,
        "sinusoid_radius": np.hypot(freqs[best, 0], freqs[best, 1]),
        "ring_fraction": ring / total,
        "centroid_radius": (power * rho).reshape(n, -1).sum(1) / total,
    })  # fmt: skip


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    ra = pd.Series(np.asarray(a, dtype=np.float64)).rank().to_numpy()
    rb = pd.Series(np.asarray(b, dtype=np.float64)).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def closeness_summary(pcas: Mapping[int, PCA], n_components: int = 32) -> pd.DataFrame:
    """Per patch size: medians of the closeness measures over the leading components and the
    rank correlation between component rank and radius."""
    rows = []
    for size, p in pcas.items():
        n = min(n_components, p.components.shape[0])
        c = fourier_closeness(p.images(n))
        rows.append({
            "patch": size, "components": n,
            "median pair fraction": float(c["pair_fraction"].median()),
            "median sinusoid fraction": float(c["sinusoid_fraction"].median()),
            "median ring fraction": float(c["ring_fraction"].median()),
            "rank-radius correlation": spearman(c["rank"], c["centroid_radius"]),
            "radius of first 4": float(c["centroid_radius"][:4].mean()),
            "radius of last 4": float(c["centroid_radius"][-4:].mean()),
        })  # fmt: skip
    return pd.DataFrame(rows)


# --- power spectra of images --------------------------------------------------------------------


def image_power_profile(img: np.ndarray, crop: int = 512, n_bins: int = 128) -> np.ndarray:
    """Radially averaged power spectrum of an image's luma (central ``crop`` square, mean removed,
    Hann window): mean ``|F|**2 / sum(window**2)`` in ``n_bins`` rings over [0, 0.5] cycles/px."""
    y = luma(img)
    h, w = y.shape
    c = min(crop, h, w)
    top, left = (h - c) // 2, (w - c) // 2
    y = y[top : top + c, left : left + c]
    win = np.outer(np.hanning(c), np.hanning(c))
    y = (y - y.mean()) * win
    power = np.abs(np.fft.fftshift(np.fft.fft2(y))) ** 2 / float((win**2).sum())
    return radial_profile(power, n_bins)[1]


def radial_power_spectrum(
    dataset: str,
    ids: Sequence[str],
    crop: int = 512,
    n_bins: int = 128,
    out: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean radial power profile of a dataset's images (cached): ``(radius, power)``."""
    cfg = {"dataset": dataset, "ids": list(ids), "crop": crop, "n_bins": n_bins}

    def compute() -> dict[str, np.ndarray]:
        from ...data import get_dataset

        ds = get_dataset(dataset)
        profiles = [image_power_profile(ds.load(i), crop, n_bins) for i in ids]
        radius = (np.arange(n_bins) + 0.5) * 0.5 / n_bins
        return {"radius": radius, "power": np.nanmean(profiles, axis=0)}

    a = _cached_arrays("power", cfg, compute, out)
    return a["radius"], a["power"]


def power_spectrum_table(
    spectra: Mapping[str, tuple[np.ndarray, np.ndarray]], lo: float = 0.01, hi: float = 0.25
) -> tuple[pd.DataFrame, dict[str, PowerLaw]]:
    """Power-law fit ``S ~ rho**-alpha`` of each radial spectrum over [lo, hi] cycles/px."""
    fits = {name: fit_power_law(r, p, lo, hi) for name, (r, p) in spectra.items()}
    table = pd.DataFrame([
        {"images": name, "alpha": f.exponent, "R^2": f.r2, "fit from": f.lo, "fit to": f.hi}
        for name, f in fits.items()
    ])  # fmt: skip
    return table, fits


# --- linear autoencoder -------------------------------------------------------------------------


@dataclass
class LinearAE:
    """A rank-k linear autoencoder of flattened patches: ``x_hat = mean + D E (x - mean)``."""

    size: int
    k: int
    mean: np.ndarray
    encoder: np.ndarray  # k x d
    decoder: np.ndarray  # d x k
    losses: np.ndarray = field(repr=False)  # per-pixel training MSE, logged every `log_every`
    log_every: int = 50
    final_mse: float = float("nan")  # per-pixel MSE on all training patches after training
    config: dict[str, Any] = field(default_factory=dict, repr=False)  # how it was trained

    def projection(self) -> np.ndarray:
        """The learned linear map ``D E`` (d x d)."""
        return self.decoder @ self.encoder

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "size": np.asarray(self.size), "k": np.asarray(self.k), "mean": self.mean,
            "encoder": self.encoder, "decoder": self.decoder, "losses": self.losses,
            "log_every": np.asarray(self.log_every), "final_mse": np.asarray(self.final_mse),
        }  # fmt: skip

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> LinearAE:
        return cls(
            int(a["size"]), int(a["k"]), a["mean"], a["encoder"], a["decoder"], a["losses"],
            int(a["log_every"]), float(a["final_mse"]),
        )  # fmt: skip


def train_linear_ae(
    patches: np.ndarray,
    size: int,
    k: int,
    steps: int = 3000,
    batch: int = 256,
    lr: float = 1e-2,
    seed: int = 0,
    log_every: int = 50,
    init: float = 1e-3,
    weight_decay: float = 0.0,
) -> LinearAE:
    """Train ``x -> D E x`` (E: k x d, D: d x k) on centred patches with Adam on minibatch MSE,
    the learning rate decaying on a cosine to 0. No closed form is used.

    Weights start Gaussian with standard deviation ``init / sqrt(fan_in)``; ``weight_decay``
    adds ``weight_decay * (|E|^2 + |D|^2) / 2`` per weight to the loss (data at unit scale).
    """
    import torch

    x = np.asarray(patches, dtype=np.float64)
    n, d = x.shape
    if not 1 <= k <= d:
        raise UsageError(f"rank k must be in 1..{d}, got {k}")
    mean = x.mean(0)
    scale = float(np.sqrt(((x - mean) ** 2).mean()))  # train at unit scale, report in data units
    data = torch.from_numpy((x - mean) / scale).float()
    gen = torch.Generator().manual_seed(int(seed))
    enc = torch.nn.Parameter(torch.randn(k, d, generator=gen) * (init / math.sqrt(d)))
    dec = torch.nn.Parameter(torch.randn(d, k, generator=gen) * (init / math.sqrt(k)))
    opt = torch.optim.Adam([enc, dec], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))
    )
    losses, running = [], 0.0
    for step in range(1, steps + 1):
        xb = data[torch.randint(0, n, (batch,), generator=gen)]
        with torch.enable_grad():  # also when a caller has switched gradients off
            loss = ((xb @ enc.T @ dec.T - xb) ** 2).mean()
            total = loss
            if weight_decay:
                total = loss + 0.5 * weight_decay * ((enc**2).mean() + (dec**2).mean())
        opt.zero_grad()
        total.backward()
        opt.step()
        sched.step()
        running += float(loss.detach())
        if step % log_every == 0:
            losses.append(running / log_every * scale**2)
            running = 0.0
    e, dd = enc.detach().double().numpy(), dec.detach().double().numpy()
    return LinearAE(
        size, k, mean, e, dd, np.asarray(losses), log_every,
        reconstruction_mse(x, mean, dd @ e),
    )  # fmt: skip


def ae_study(
    training: TrainingSet,
    size: int,
    ks: Sequence[int],
    per_image: int,
    steps: int = 3000,
    batch: int = 256,
    lr: float = 1e-2,
    init: float = 1e-3,
    out: str | Path | None = None,
) -> dict[int, LinearAE]:
    """Train one linear AE per rank on the patches that :func:`pca_study` uses (cached); each
    model's ``config`` records how it was trained."""
    result = {}
    for k in ks:
        cfg = {
            "training": training.config(), "size": int(size), "per_image": int(per_image),
            "k": int(k), "steps": int(steps), "batch": int(batch), "lr": float(lr),
            "init": float(init),
        }  # fmt: skip

        def compute(k: int = int(k)) -> dict[str, np.ndarray]:
            p = sample_patches(training.lumas(), size, per_image, training.seed)
            ae = train_linear_ae(p, size, k, steps, batch, lr, training.seed, init=init)
            return ae.arrays()

        ae = LinearAE.from_arrays(_cached_arrays("linear-ae", cfg, compute, out))
        ae.config = cfg
        result[int(k)] = ae
    return result


def subspace_overlap(basis: np.ndarray, components: np.ndarray) -> dict[str, float]:
    """Compare the column span of ``basis`` (d x k) with the rows of ``components`` (k x d).

    ``overlap`` = mean squared cosine of the principal angles (1: same subspace; k/d: chance),
    ``max_angle`` the largest principal angle in degrees.
    """
    q, _ = np.linalg.qr(np.asarray(basis, dtype=np.float64))
    u = np.asarray(components, dtype=np.float64)
    u, _ = np.linalg.qr(u.T)
    cos = np.clip(np.linalg.svd(u.T @ q, compute_uv=False), 0.0, 1.0)
    return {"overlap": float((cos**2).mean()), "max_angle": float(np.degrees(np.arccos(cos.min())))}


def reconstruction_mse(patches: np.ndarray, mean: np.ndarray, projection: np.ndarray) -> float:
    """Per-pixel MSE of ``mean + P (x - mean)`` on (N, d) patches."""
    x = np.asarray(patches, dtype=np.float64) - mean
    return float(((x @ projection.T - x) ** 2).mean())


def ae_table(aes: Mapping[int, LinearAE], pca: PCA) -> pd.DataFrame:
    """Per rank: subspace overlap with the top-k PCs, largest angle, the relative eigen-gap at k,
    the variance of the data in the decoder's span over that in the top-k PCs, and the trained
    model's MSE on all its training patches over the PCA optimum."""
    rows = []
    for k, ae in aes.items():
        o = subspace_overlap(ae.decoder, pca.components[:k])
        lam = pca.eigenvalues
        gap = (lam[k - 1] - lam[k]) / lam[k - 1] if k < lam.size else float("nan")
        q, _ = np.linalg.qr(ae.decoder)
        captured = float((((q.T @ pca.components.T) ** 2) * lam).sum()) / float(lam[:k].sum())
        rows.append({
            "k": k, "k/d": k / lam.size, "overlap": o["overlap"], "max angle (deg)": o["max_angle"],
            "eigen-gap at k": gap, "variance captured / PCA": captured,
            "MSE / PCA optimum": ae.final_mse / pca.optimum_mse(k),
        })  # fmt: skip
    return pd.DataFrame(rows)


# --- frequency response -------------------------------------------------------------------------


def frequency_response(projection: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Energy gain ``|P e_f|**2 / |e_f|**2`` of a linear map on flattened ``size`` x ``size``
    patches for every 2-D Fourier basis patch ``e_f`` (for real P: the mean gain of its cos and
    sin). Returns ``(rho, gain)``, both size x size in numpy's ``fftfreq`` layout."""
    f = np.fft.fftfreq(size)
    n = np.arange(size)
    e1 = np.exp(2j * np.pi * np.outer(n, f))  # size x size: position x frequency
    basis = np.einsum("ya,xb->yxab", e1, e1).reshape(size * size, size * size)
    gain = (np.abs(np.asarray(projection) @ basis) ** 2).sum(0) / (size * size)
    return np.hypot(f[:, None], f[None, :]), gain.reshape(size, size)


def radial_gain(rho: np.ndarray, gain: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean gain in rings of width ``1 / size`` centred on ``j / size`` (j = 0: DC)."""
    index = np.rint(rho * size).astype(int).ravel()
    sums = np.bincount(index, weights=gain.ravel())
    counts = np.bincount(index)
    keep = counts > 0
    return np.arange(sums.size)[keep] / size, sums[keep] / counts[keep]


def cutoff(radius: np.ndarray, gain: np.ndarray, level: float = CUTOFF_LEVEL) -> float:
    """The first radius where the radial gain falls below ``level`` (linear interpolation);
    NaN if it never does."""
    for i in range(1, len(gain)):
        if gain[i] < level <= gain[i - 1]:
            t = (gain[i - 1] - level) / (gain[i - 1] - gain[i])
            return float(radius[i - 1] + t * (radius[i] - radius[i - 1]))
    return float("nan")


def predicted_cutoff(k: int, size: int) -> float:
    """Isotropic spectrum guess: the top k modes fill a disc of area k on the 1/size grid."""
    return math.sqrt(k / math.pi) / size


def response_table(
    pca: PCA, aes: Mapping[int, LinearAE]
) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per rank: cut-off of the PCA projection and of the trained AE, the isotropic guess,
    and gains in the low (``rho < 1/32``... first non-DC ring) and high (``rho >= 1/3``) parts.
    Also returns the radial gain curves keyed ``"PCA k=.."`` / ``"AE k=.."``."""
    rows, curves = [], {}
    s = pca.size
    for k, ae in aes.items():
        row: dict[str, Any] = {"k": k, "k/d": k / s**2, "isotropic guess": predicted_cutoff(k, s)}
        for label, proj in (("PCA", pca.projection(k)), ("AE", ae.projection())):
            r, g = radial_gain(*frequency_response(proj, s), s)
            curves[f"{label} k={k}"] = (r, g)
            row[f"{label} cut-off"] = cutoff(r, g)
            row[f"{label} gain, first ring"] = float(g[1])
            row[f"{label} gain, rho>=1/3"] = float(g[r >= 1 / 3].mean())
        rows.append(row)
    return pd.DataFrame(rows), curves


# --- linear models as codecs --------------------------------------------------------------------


def apply_patchwise(
    img: np.ndarray, projection: np.ndarray, mean: np.ndarray, size: int
) -> np.ndarray:
    """Apply ``mean + P (x - mean)`` to every non-overlapping ``size`` x ``size`` block of each
    channel (edges reflected to whole blocks, then cropped). HxWx3 float32 in [0, 1]."""
    x = np.asarray(img)
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    h, w = x.shape[:2]
    ph, pw = -h % size, -w % size
    x = np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="reflect")
    hb, wb = x.shape[0] // size, x.shape[1] // size
    blocks = x.reshape(hb, size, wb, size, 3).transpose(0, 2, 4, 1, 3).reshape(-1, size * size)
    y = (blocks - mean) @ np.asarray(projection).T + mean
    y = y.reshape(hb, wb, 3, size, size).transpose(0, 3, 1, 4, 2).reshape(hb * size, wb * size, 3)
    return np.clip(y[:h, :w], 0.0, 1.0).astype(np.float32)


class PatchCodec:
    """A linear model applied patch-wise, behind the codec interface that :mod:`evaluate` uses.

    It has no bitstream: ``bits`` is NaN (stored as null); its "rate" is ``k / size**2``
    coefficients per pixel and channel.
    """

    version = "1"

    def __init__(
        self, name: str, projection: np.ndarray, mean: np.ndarray, size: int,
        config: Mapping[str, Any],
    ) -> None:  # fmt: skip
        self.name = name
        self.projection = np.asarray(projection, dtype=np.float64)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.size = int(size)
        self._config = dict(config)

    def config(self) -> dict[str, Any]:
        """What identifies the model (its training configuration, not its weights)."""
        return {"codec": self.name, "version": self.version, **self._config}

    def compress(self, img: np.ndarray) -> Any:
        """Reconstruct an image patch-wise."""
        from ...codecs.base import CodecResult

        rec = apply_patchwise(img, self.projection, self.mean, self.size)
        return CodecResult(b"", rec, float("nan"))


def ae_codec(ae: LinearAE) -> PatchCodec:
    """A trained linear AE (from :func:`ae_study`) as a :class:`PatchCodec`."""
    if not ae.config:
        raise UsageError("ae_codec needs a model from ae_study (its training configuration)")
    cfg = {"kind": "linear-ae", "training_config": ae.config}
    return PatchCodec(f"linear-ae-s{ae.size}-k{ae.k}", ae.projection(), ae.mean, ae.size, cfg)


def pca_codec(pca: PCA, k: int) -> PatchCodec:
    """The closed-form rank-k PCA projection as a :class:`PatchCodec`."""
    if not pca.config:
        raise UsageError("pca_codec needs a PCA from pca_study (its configuration)")
    cfg = {"kind": "pca", "k": int(k), "pca": pca.config}
    return PatchCodec(f"pca-s{pca.size}-k{k}", pca.projection(k), pca.mean, pca.size, cfg)


# --- distribution shifts ------------------------------------------------------------------------


def _pairs(dataset: str, ids: Sequence[str], corruption: str, severity: int, seed: int):
    from ...corruptions import corrupt
    from ...data import get_dataset

    ds = get_dataset(dataset)
    for i in ids:
        clean = ds.load(i)
        yield clean, corrupt(clean, corruption, severity, seed=int(seed))


def _channel_blocks(img: np.ndarray, size: int) -> np.ndarray:
    x = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    h, w = (x.shape[0] // size) * size, (x.shape[1] // size) * size
    x = x[:h, :w]
    return (
        x.reshape(h // size, size, w // size, size, 3)
        .transpose(0, 2, 4, 1, 3)
        .reshape(-1, size * size)
    )


def shift_prediction(
    projection: np.ndarray, mean: np.ndarray, clean: np.ndarray, delta: np.ndarray
) -> dict[str, float]:
    """The linear theory for one shift, on (N, d) blocks of clean images and of the shift.

    ``pi = |P delta|**2 / |delta|**2`` is the share of the shift's energy that ``P`` passes.
    Per-pixel MSEs: ``D = |(I - P)(x - m)|**2``, ``E = |delta|**2``, and the predictions
    ``G = D + (1 - pi) E``, ``R = D + pi E`` (cross terms dropped: exact in expectation when
    the shift is uncorrelated with the image). ``dG``/``dR`` are the added errors over ``E``;
    ``exact dG``/``exact dR`` the same from the exact errors of ``P`` on these blocks, cross
    terms included (they differ when the shift depends on the image, as blur and fog do).
    """
    p = np.asarray(projection, dtype=np.float64)
    xc = np.asarray(clean, dtype=np.float64) - mean
    dl = np.asarray(delta, dtype=np.float64)
    mse_d = float(((xc @ p.T - xc) ** 2).mean())
    energy = float((dl**2).mean())
    pi = float(((dl @ p.T) ** 2).mean()) / energy if energy > 0 else float("nan")
    shifted = xc + dl
    rec = shifted @ p.T
    exact_g = float(((rec - shifted) ** 2).mean())
    exact_r = float(((rec - xc) ** 2).mean())
    return {
        "mse_D": mse_d, "E_delta": energy, "mse_G": mse_d + (1 - pi) * energy,
        "mse_R": mse_d + pi * energy, "dG": 1 - pi, "dR": pi,
        "exact dG": (exact_g - mse_d) / energy, "exact dR": (exact_r - mse_d) / energy,
    }  # fmt: skip


def _shift_config(
    pca: PCA,
    ks: Sequence[int],
    dataset: str,
    ids: Sequence[str],
    corruptions: Sequence[str],
    severity: int,
    seed: int,
) -> dict[str, Any]:
    """What identifies a closed-form shift computation (for its cache key)."""
    pca_id = pca.config or {"size": pca.size, "n": pca.n_patches, "eig": pca.eigenvalues[:8]}
    return {
        "pca": pca_id, "ks": [int(k) for k in ks], "dataset": dataset, "ids": list(ids),
        "corruptions": list(corruptions), "severity": int(severity), "seed": int(seed),
    }  # fmt: skip


def closed_form_shift(
    pca: PCA,
    ks: Sequence[int],
    dataset: str,
    ids: Sequence[str],
    corruptions: Sequence[str],
    severity: int,
    seed: int = 0,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """:func:`shift_prediction` of the rank-k PCA projection for each corruption of the images
    (non-overlapping blocks of each RGB channel; cached). One row per (k, corruption)."""
    cfg = _shift_config(pca, ks, dataset, ids, corruptions, severity, seed)

    def compute() -> list[dict[str, Any]]:
        blocks: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {
            name: ([], []) for name in corruptions
        }
        for name in corruptions:
            for clean, bad in _pairs(dataset, ids, name, severity, seed):
                xb = _channel_blocks(clean, pca.size)
                blocks[name][0].append(xb)
                blocks[name][1].append(_channel_blocks(bad, pca.size) - xb)
        rows = []
        for k in ks:
            proj = pca.projection(k)
            for name, (xs, ds) in blocks.items():
                pred = shift_prediction(proj, pca.mean, np.concatenate(xs), np.concatenate(ds))
                rows.append(
                    {"model": f"PCA k={k}", "corruption": name, "group": group_of(name), **pred}
                )
        return rows

    cols = ["model", "corruption", "group", "mse_D", "E_delta", "mse_G", "mse_R", "dG", "dR",
            "exact dG", "exact dR"]  # fmt: skip
    return pd.DataFrame(_cached_record("closed-form", cfg, compute, out))[cols]


def corruption_energy(
    dataset: str,
    ids: Sequence[str],
    corruption: str,
    severity: int,
    seed: int = 0,
    out: str | Path | None = None,
) -> float:
    """Mean over images of the per-pixel RGB MSE of (corrupted - clean), [0, 1] units (cached)."""
    cfg = {"dataset": dataset, "ids": list(ids), "corruption": corruption,
           "severity": int(severity), "seed": int(seed)}  # fmt: skip

    def compute() -> dict[str, float]:
        vals = [
            float(((bad.astype(np.float64) - clean.astype(np.float64)) ** 2).mean()) / 255.0**2
            for clean, bad in _pairs(dataset, ids, corruption, severity, seed)
        ]
        return {"mse": float(np.mean(vals))}

    return float(_cached_record("corruption-energy", cfg, compute, out)["mse"])


def mean_mse(metrics: Mapping[str, Any], key: str) -> float:
    """Mean over images of the per-pixel MSE behind a per-image PSNR (``psnr`` or
    ``psnr_wrt_clean``) of an :mod:`evaluate` metrics record, [0, 1] units."""
    vals = [r[key] for r in metrics["per_image"]]
    if any(v is None for v in vals):
        return 0.0 if all(v is None for v in vals) else float("nan")
    return float(np.mean([10.0 ** (-v / 10.0) for v in vals]))


def _run(codec: str | PatchCodec, dataset: str, ids: Sequence[str], estimate: bool,
         seed: int, out: str | Path | None, **corr: Any) -> Any:  # fmt: skip
    from ...engines import evaluate as ev

    if isinstance(codec, str):
        return ev.run_point(codec, dataset, ids, estimate=estimate, seed=seed, out=out, **corr)
    path = ev.evaluate_with_codec(
        codec, dataset, image_ids=list(ids), seed=seed, out=out, progress=False, **corr
    )
    return ev.load_point(path)


@sweep
def shift_table(
    codecs: Mapping[str, str | PatchCodec],
    dataset: str,
    ids: Sequence[str],
    corruptions: Sequence[str],
    severity: int,
    seed: int = 0,
    estimate: bool = True,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Measured G and R per codec and corruption, through :mod:`evaluate` (cached runs).

    ``codecs`` maps a label to a codec name (``nic:<model>``) or a :class:`PatchCodec`. Columns:
    bpp (clean and corrupted input; NaN for linear models), PSNR w.r.t. the input (G) and the
    clean image (R), the per-pixel MSEs ``mse_D`` (clean input), ``mse_G``, ``mse_R``, the
    shift's energy ``E_delta``, the added errors as shares of it ``dG = (mse_G - mse_D) / E`` and
    ``dR = (mse_R - mse_D) / E``, and the band shares of the mean G and R spectra.
    """
    rows = []
    for label, codec in codecs.items():
        clean = _run(codec, dataset, ids, estimate, seed, out)
        mse_d = mean_mse(clean.metrics, "psnr")
        for name in corruptions:
            p = _run(codec, dataset, ids, estimate, seed, out, corruption=name, severity=severity)
            e = corruption_energy(dataset, ids, name, severity, seed, out)
            mse_g, mse_r = mean_mse(p.metrics, "psnr"), mean_mse(p.metrics, "psnr_wrt_clean")
            row: dict[str, Any] = {
                "model": label, "corruption": name, "group": group_of(name),
                "bpp clean": _num(clean.metrics.get("bpp")), "bpp": _num(p.metrics.get("bpp")),
                "PSNR G": p.metrics["psnr"], "PSNR R": p.metrics["psnr_wrt_clean"],
                "mse_D": mse_d, "mse_G": mse_g, "mse_R": mse_r, "E_delta": e,
                "dG": (mse_g - mse_d) / e, "dR": (mse_r - mse_d) / e,
            }  # fmt: skip
            for m in ("G", "R", "C"):
                for band, v in p.band_shares(m).items():
                    row[f"{m} {band}"] = v
            rows.append(row)
    return pd.DataFrame(rows)


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


# --- per-image measurements for the claims' intervals (#16) -------------------------------------


def image_patches(
    training: TrainingSet, size: int, per_image: int
) -> list[tuple[str, str, np.ndarray]]:
    """``(dataset, image id, patches)`` of each training image: the patches :func:`pca_study`
    and :func:`ae_study` draw (the same seeded positions), split by image."""
    p = sample_patches(training.lumas(), size, per_image, training.seed)
    return [
        (d, i, p[j * per_image : (j + 1) * per_image]) for j, (d, i) in enumerate(training.refs())
    ]


def image_power_fits(
    dataset: str,
    ids: Sequence[str],
    lo: float = 0.01,
    hi: float = 0.25,
    crop: int = 512,
    n_bins: int = 128,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Power law of each image's own radial power spectrum (profiles cached): one row per
    image with ``dataset``, ``image``, ``alpha`` and ``R^2`` (as :func:`power_spectrum_table`)."""
    cfg = {"dataset": dataset, "ids": list(ids), "crop": crop, "n_bins": n_bins}

    def compute() -> dict[str, np.ndarray]:
        from ...data import get_dataset

        ds = get_dataset(dataset)
        return {"profiles": np.stack([image_power_profile(ds.load(i), crop, n_bins) for i in ids])}

    profiles = _cached_arrays("power-images", cfg, compute, out)["profiles"]
    radius = (np.arange(n_bins) + 0.5) * 0.5 / n_bins
    rows = []
    for image_id, prof in zip(ids, profiles, strict=True):
        f = fit_power_law(radius, prof, lo, hi)
        rows.append({"dataset": dataset, "image": image_id, "alpha": f.exponent, "R^2": f.r2})
    return pd.DataFrame(rows, columns=["dataset", "image", "alpha", "R^2"])


def image_pca_fits(
    training: TrainingSet,
    sizes: Sequence[int],
    per_image: int,
    n_components: int = 32,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Each training image's own patch PCA, cached: one row per (image, patch size) with the
    eigenvalues' power-law ``exponent`` and ``R^2`` (:func:`eigen_power_law`) and the
    ``rank-radius correlation`` of its leading components (as :func:`closeness_summary`).

    An image gives its PCA at least twice as many patches as a patch has pixels (``per_image``
    or ``2 * size**2``, drawn as :func:`image_patches` draws them): with fewer, the sample
    covariance of one image has more dimensions than patches and its eigenvalue tail is noise."""
    patches = {int(s): max(int(per_image), 2 * int(s) ** 2) for s in sizes}
    cfg = {
        "training": training.config(),
        "patches": {str(s): n for s, n in patches.items()},
        "n_components": int(n_components),
    }

    def compute() -> list[dict[str, Any]]:
        rows = []
        for size, n in patches.items():
            for dataset, image_id, x in image_patches(training, size, n):
                p = patch_pca(x, size)
                fit = eigen_power_law(p.eigenvalues)
                c = fourier_closeness(p.images(min(n_components, p.components.shape[0])))
                rows.append(
                    {
                        "dataset": dataset,
                        "image": image_id,
                        "patch": int(size),
                        "exponent": fit.exponent,
                        "R^2": fit.r2,
                        "rank-radius correlation": spearman(c["rank"], c["centroid_radius"]),
                    }
                )
        return rows

    return pd.DataFrame(_cached_record("pca-images", cfg, compute, out))


def image_transfer(
    projection: np.ndarray, patches: np.ndarray, mean: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """What a linear map does to one image's (centred) patches, by frequency: each patch's
    part in a ring of radial frequency (width ``1 / size``, as :func:`radial_gain`; the patch's
    own periodic DFT, so no leakage from its edges) goes through the map, and the ratio of the
    energy that comes out to the energy that went in is the ring's gain *for this image* (the
    map's :func:`frequency_response` weighted by the image's spectrum). The same for the whole
    high band, ``rho >= 1/3``. Returns ``(radius, ring gains, high-band gain)``."""
    x = (np.asarray(patches, dtype=np.float64) - mean).reshape(-1, size, size)
    p = np.asarray(projection)
    spectrum = np.fft.fft2(x)
    f = np.fft.fftfreq(size)
    rho = np.hypot(f[:, None], f[None, :])
    ring = np.rint(rho * size).astype(int)

    def gain(mask: np.ndarray) -> float:
        part = np.fft.ifft2(spectrum * mask).real.reshape(len(x), -1)
        energy = float((part**2).sum())
        return float(((part @ p.T) ** 2).sum()) / energy if energy > 0 else float("nan")

    rings = np.unique(ring)
    gains = np.array([gain(ring == j) for j in rings])
    keep = np.isfinite(gains)
    return rings[keep] / size, gains[keep], gain(rho >= 1 / 3)


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 of named arrays (names, dtypes, shapes and bytes): a fitted model's identity."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def image_model_table(
    training: TrainingSet,
    pca: PCA,
    aes: Mapping[int, LinearAE],
    per_image: int,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Per training image and rank k, on the image's own patches (those the models were fitted
    on): the MSE of the trained AE and of the rank-k PCA projection, the variance each keeps
    (AE: in its decoder's span), the share of the high band (``rho >= 1/3``) each passes, and
    each map's cut-off on the image (:func:`cutoff` of its ring ratios). Cached, keyed by the
    training set and the fitted models' arrays (:func:`arrays_digest`)."""
    cfg = {
        "training": training.config(),
        "pca": arrays_digest(pca.arrays()),
        "aes": {str(k): arrays_digest(ae.arrays()) for k, ae in aes.items()},
        "per_image": int(per_image),
    }
    return pd.DataFrame(
        _cached_record("models-images", cfg, lambda: _image_model_rows(training, pca, aes,
                                                                      per_image), out)
    )  # fmt: skip


def _image_model_rows(
    training: TrainingSet, pca: PCA, aes: Mapping[int, LinearAE], per_image: int
) -> list[dict[str, Any]]:
    rows = []
    for dataset, image_id, x in image_patches(training, pca.size, per_image):
        xc = x - pca.mean
        total = float((xc**2).sum())
        for k, ae in aes.items():
            q, _ = np.linalg.qr(ae.decoder)
            u = pca.components[:k]
            row: dict[str, Any] = {
                "dataset": dataset,
                "image": image_id,
                "k": int(k),
                "AE MSE": reconstruction_mse(x, ae.mean, ae.projection()),
                "PCA MSE": reconstruction_mse(x, pca.mean, pca.projection(k)),
                "AE variance": float(((xc @ q) ** 2).sum()) / total,
                "PCA variance": float(((xc @ u.T) ** 2).sum()) / total,
            }
            for kind, proj, mean in (
                ("PCA", pca.projection(k), pca.mean),
                ("AE", ae.projection(), ae.mean),
            ):
                r, ratio, high = image_transfer(proj, x, mean, pca.size)
                row[f"{kind} high pass"] = high
                row[f"{kind} cut-off"] = cutoff(r, ratio)
            rows.append(row)
    return rows


def corruption_energies(
    dataset: str,
    ids: Sequence[str],
    corruption: str,
    severity: int,
    seed: int = 0,
    out: str | Path | None = None,
) -> dict[str, float]:
    """Per image: the per-pixel RGB MSE of (corrupted - clean), [0, 1] units (cached); the
    mean of these is :func:`corruption_energy`."""
    cfg = {
        "dataset": dataset,
        "ids": list(ids),
        "corruption": corruption,
        "severity": int(severity),
        "seed": int(seed),
    }

    def compute() -> dict[str, float]:
        return {
            i: float(((bad.astype(np.float64) - clean.astype(np.float64)) ** 2).mean()) / 255.0**2
            for i, (clean, bad) in zip(
                ids, _pairs(dataset, ids, corruption, severity, seed), strict=True
            )
        }

    return {
        str(k): float(v)
        for k, v in _cached_record("corruption-energies", cfg, compute, out).items()
    }


def _per_image_mse(metrics: Mapping[str, Any], key: str) -> dict[str, float]:
    """Per image id: the per-pixel MSE behind its PSNR ``key`` (NaN where not recorded)."""
    return {
        str(r["id"]): (float("nan") if r.get(key) is None else 10.0 ** (-float(r[key]) / 10.0))
        for r in metrics["per_image"]
    }


@sweep
def shift_images(
    codecs: Mapping[str, str | PatchCodec],
    dataset: str,
    ids: Sequence[str],
    corruptions: Sequence[str],
    severity: int,
    seed: int = 0,
    estimate: bool = True,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """:func:`shift_table`'s ``dG`` and ``dR`` per image (the same cached runs): one row per
    (model, corruption, image) with ``group``, ``dG`` and ``dR``."""
    rows = []
    for label, codec in codecs.items():
        clean = _per_image_mse(_run(codec, dataset, ids, estimate, seed, out).metrics, "psnr")
        for name in corruptions:
            p = _run(codec, dataset, ids, estimate, seed, out, corruption=name, severity=severity)
            e = corruption_energies(dataset, ids, name, severity, seed, out)
            g, r = _per_image_mse(p.metrics, "psnr"), _per_image_mse(p.metrics, "psnr_wrt_clean")
            for i in ids:
                rows.append(
                    {
                        "model": label,
                        "corruption": name,
                        "group": group_of(name),
                        "dataset": dataset,
                        "image": i,
                        "dG": (g[i] - clean[i]) / e[i],
                        "dR": (r[i] - clean[i]) / e[i],
                    }
                )
    return pd.DataFrame(rows)


def closed_form_images(
    pca: PCA,
    ks: Sequence[int],
    dataset: str,
    ids: Sequence[str],
    corruptions: Sequence[str],
    severity: int,
    seed: int = 0,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """:func:`closed_form_shift` per image (each image's own blocks; cached): one row per
    (k, corruption, image) with ``group``, ``dG`` and ``dR`` (the predictions 1 - pi, pi)."""
    cfg = _shift_config(pca, ks, dataset, ids, corruptions, severity, seed)

    def compute() -> list[dict[str, Any]]:
        rows = []
        for name in corruptions:
            for i, (clean, bad) in zip(
                ids, _pairs(dataset, ids, name, severity, seed), strict=True
            ):
                xb = _channel_blocks(clean, pca.size)
                delta = _channel_blocks(bad, pca.size) - xb
                for k in ks:
                    pred = shift_prediction(pca.projection(k), pca.mean, xb, delta)
                    rows.append(
                        {
                            "model": f"PCA k={k}",
                            "corruption": name,
                            "group": group_of(name),
                            "dataset": dataset,
                            "image": i,
                            "dG": pred["dG"],
                            "dR": pred["dR"],
                        }
                    )
        return rows

    return pd.DataFrame(_cached_record("closed-form-images", cfg, compute, out))
