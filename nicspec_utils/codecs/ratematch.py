"""Rate matching: find the codec setting that hits a target bpp.

* :func:`match_rate` finds one setting for a *set* of images: the one whose *mean* bpp is nearest
  the target (bisection on the codec's monotone rate knob: quality, compression ratio, QP or
  lambda; integer knobs are searched over integers; bpp may grow or fall with the knob).
* ``get_codec(name, bpp=...)`` for a quality-based codec gives a :class:`RateTargetCodec`: each
  image gets its *own* setting, the one whose bpp is nearest the target for that image
  (per-image matching; the setting used is in ``CodecResult.setting``). JPEG2000 is the
  exception: its ``bpp=`` sets the compression ratio 24 / bpp directly, for every image.
* :class:`PsnrTargets` (JPEG2000's codec option ``target_psnr``) matches the *quality* instead:
  image by image, the compression ratio whose PSNR w.r.t. the codec's input (8-bit RGB, as
  :mod:`nicspec_utils.evaluate` measures it) lies within ``psnr_tol`` dB (0.05) of that image's
  target. A target out of reach is not an error: the image is coded at the nearest reachable
  ratio and stays *unmatched*, which :func:`psnr_misses` reports in one line per image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import UsageError
from .base import Codec, CodecResult, Knob, check_image, compress_each

SIDES = ("nearest", "below", "above")


def _check_target(target_bpp: float, tol: float, side: str) -> float:
    try:
        t = float(target_bpp)
    except (TypeError, ValueError):
        raise UsageError(f"target bpp must be a number, got {target_bpp!r}") from None
    if not math.isfinite(t) or t <= 0:
        raise UsageError(f"target bpp must be positive, got {target_bpp}")
    if not 0 < tol < 1:
        raise UsageError(f"tol must be in (0, 1), got {tol}")
    if side not in SIDES:
        raise UsageError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    return t


def search_knob(
    knob: Knob,
    evaluate: Callable[[float | int], float],
    target: float,
    *,
    name: str,
    tol: float = 0.01,
    side: str = "nearest",
    max_iter: int = 40,
) -> tuple[float | int, float]:
    """Find the knob value whose ``evaluate`` (a bpp, monotone in the value) is nearest ``target``.

    Returns (value, bpp). Continuous knobs stop when within ``tol`` (relative); integer knobs
    return the best integer. ``side`` = "below"/"above" keeps to values at or below/above the
    target. UsageError when the target lies outside what the search range reaches (beyond ``tol``).
    """
    seen: dict[float | int, float] = {}

    def f(v: float | int) -> float:
        if v not in seen:
            seen[v] = float(evaluate(v))
        return seen[v]

    lo, hi = knob.search_range
    if knob.integer:
        n = int(hi) - int(lo) + 1

        def value(t: float) -> float | int:
            k = int(t)
            return int(lo) + k if knob.increasing else int(hi) - k

        t_lo, t_hi = 0.0, float(n - 1)
    else:
        a, b = (math.log(lo), math.log(hi)) if knob.log else (lo, hi)
        if not knob.increasing:
            a, b = b, a

        def value(t: float) -> float | int:
            u = a + (b - a) * t
            return math.exp(u) if knob.log else u

        t_lo, t_hi = 0.0, 1.0
    f_min, f_max = f(value(t_lo)), f(value(t_hi))
    if target < f_min * (1 - tol) or target > f_max * (1 + tol):
        raise UsageError(
            f"target {target} bpp is outside the range {f_min:.4g}..{f_max:.4g} bpp "
            f"reachable with {name}"
        )
    if f_min < target < f_max:
        for _ in range(max_iter):
            if knob.integer and t_hi - t_lo <= 1:
                break
            mid = (t_lo + t_hi) // 2 if knob.integer else (t_lo + t_hi) / 2
            fm = f(value(mid))
            if not knob.integer and abs(fm - target) <= tol * target:
                break
            if fm >= target:
                t_hi = mid
            else:
                t_lo = mid
    candidates = list(seen.items())
    if side == "below":
        candidates = [c for c in candidates if c[1] <= target] or candidates
    elif side == "above":
        candidates = [c for c in candidates if c[1] >= target] or candidates
    best = min(candidates, key=lambda c: (abs(c[1] - target), c[1]))
    return best


def match_rate(
    codec_name: str | Codec,
    images: Sequence[np.ndarray],
    target_bpp: float,
    tol: float = 0.01,
    *,
    side: str = "nearest",
    max_iter: int = 40,
    **options: Any,
) -> tuple[float | int, float]:
    """The setting of ``codec_name`` whose MEAN bpp over ``images`` is nearest ``target_bpp``.

    ``codec_name`` is a registry name (with ``options``) or a :class:`Codec`. Returns
    (setting, mean bpp): a quality, compression ratio (jpeg2000), QP (vtm) or lambda (variable-rate
    NIC). Per-image bpps are cached per setting within the call. ``tol`` is relative.
    """
    from . import get_codec

    target = _check_target(target_bpp, tol, side)
    if not images:
        raise UsageError("rate matching needs at least one image")
    images = [check_image(im) for im in images]
    codec = get_codec(codec_name, **options) if isinstance(codec_name, str) else codec_name
    if codec.knob is None:
        raise UsageError(f"codec {codec.name} has a fixed rate; there is nothing to match")
    knob = codec.knob
    per_image: dict[float | int, list[float]] = {}

    def mean_bpp(v: float | int) -> float:
        if v not in per_image:
            per_image[v] = [r.bpp for r in codec.at(v).compress_batch(images)]
        return float(np.mean(per_image[v]))

    return search_knob(
        knob, mean_bpp, target, name=codec.name, tol=tol, side=side, max_iter=max_iter
    )


class RateTargetCodec(Codec):
    """A quality-based codec aiming at ``target_bpp`` image by image (per-image rate matching)."""

    def __init__(self, base: Codec, target_bpp: float, tol: float = 0.01, side: str = "nearest"):
        self.name = base.name
        super().__init__()
        self.base = base
        self.version = base.version
        self.knob = None
        self.target_bpp = _check_target(target_bpp, tol, side)
        self.tol, self.side = tol, side

    def config(self) -> dict[str, Any]:
        """The base codec's configuration with the setting replaced by the bpp target."""
        cfg = self.base.config()
        if self.base.knob is not None:
            cfg.pop(self.base.knob.param, None)
        cfg.update(target_bpp=self.target_bpp, rate_control="per-image", rate_tol=self.tol)
        if self.side != "nearest":
            cfg["rate_side"] = self.side
        return cfg

    def compress(self, image: np.ndarray) -> CodecResult:
        """Code ``image`` at the setting whose bpp is nearest the target for this image."""
        image = check_image(image)
        results: dict[float | int, CodecResult] = {}

        def bpp(v: float | int) -> float:
            results[v] = self.base.at(v).compress(image)
            return results[v].bpp

        assert self.base.knob is not None
        setting, _ = search_knob(
            self.base.knob, bpp, self.target_bpp, name=self.name, tol=self.tol, side=self.side
        )
        return results[setting]

    def decode(self, bitstream: bytes) -> np.ndarray:
        """Decode with the base codec."""
        return self.base.decode(bitstream)


# --- matching a PSNR, image by image ------------------------------------------------------------

PSNR_TOL = 0.05


def config_psnr_tol(config: Mapping[str, Any] | None) -> float:
    """The PSNR tolerance (dB) a stored configuration's codec was matched to (its codec
    configuration's ``psnr_tol``; :data:`PSNR_TOL` for a configuration without one)."""
    codec = ((config or {}).get("codec")) or {}
    return float(codec.get("psnr_tol", PSNR_TOL))


def _psnr_8bit(reconstruction: np.ndarray, image: np.ndarray) -> float:
    """PSNR w.r.t. the codec's input exactly as :mod:`evaluate` records it (8-bit levels)."""
    from ..metrics import levels_8bit, psnr

    return float(psnr(levels_8bit(reconstruction), image))


def search_psnr(
    knob: Knob,
    evaluate: Callable[[float | int], float],
    target: float,
    *,
    tol: float = PSNR_TOL,
    max_iter: int = 40,
) -> tuple[float | int, float, bool]:
    """The knob value whose ``evaluate`` (a PSNR, falling as the knob's bpp falls) is nearest
    ``target`` dB: bisection over the knob's accepted range (log scale for a log knob) until
    within ``tol`` dB. Returns (value, PSNR, matched); matched is False when no value tried came
    within ``tol`` (a target beyond the range's end points, or a jump in the curve)."""
    seen: dict[float | int, float] = {}

    def f(v: float | int) -> float:
        if v not in seen:
            seen[v] = float(evaluate(v))
        return seen[v]

    lo, hi = (knob.lo, knob.hi)
    a, b = (math.log(lo), math.log(hi)) if knob.log else (lo, hi)
    if not knob.increasing:  # t = 0: fewest bits, t = 1: most bits
        a, b = b, a

    def value(t: float) -> float | int:
        u = a + (b - a) * t
        v = min(max(math.exp(u) if knob.log else u, lo), hi)
        return int(round(v)) if knob.integer else v

    t_lo, t_hi = 0.0, 1.0
    p_lo, p_hi = f(value(t_lo)), f(value(t_hi))
    if p_lo - tol <= target <= p_hi + tol:
        for _ in range(max_iter):
            if any(abs(p - target) <= tol for p in seen.values()):
                break
            mid = (t_lo + t_hi) / 2
            pm = f(value(mid))
            if pm >= target:
                t_hi = mid
            else:
                t_lo = mid
    best = min(seen.items(), key=lambda c: (abs(c[1] - target), c[0]))
    return best[0], best[1], abs(best[1] - target) <= tol


def search_psnr_grid(
    evaluate: Callable[[int], float],
    target: float,
    *,
    lo: int,
    hi: int,
    step: int = 2,
    start: int = 48,
    slope: float = -6.0,
    tol: float = PSNR_TOL,
    max_evals: int = 24,
) -> tuple[int, float, bool]:
    """The setting on the grid ``lo, lo + step, ..., hi`` (a compression ratio: the PSNR
    ``evaluate`` gives falls as it grows) whose PSNR is nearest ``target``: secant steps in log
    setting from ``start`` (``slope``: the first guess, dB per doubling), then regula falsi in
    the bracket until its ends are neighbours on the grid or a PSNR lies within ``tol``. Usually
    3-5 evaluations where bisection over the whole range takes 9-10. Returns (setting, PSNR,
    matched). The steps are :func:`psnr_grid_steps`'s (which several searches can share)."""
    steps = psnr_grid_steps(
        target, lo=lo, hi=hi, step=step, start=start, slope=slope, tol=tol, max_evals=max_evals
    )
    try:
        v = next(steps)
        while True:
            v = steps.send(float(evaluate(v)))
    except StopIteration as done:
        return done.value


def psnr_grid_steps(
    target: float,
    *,
    lo: int,
    hi: int,
    step: int = 2,
    start: int = 48,
    slope: float = -6.0,
    tol: float = PSNR_TOL,
    max_evals: int = 24,
) -> Generator[int, float, tuple[int, float, bool]]:
    """:func:`search_psnr_grid` as steps: yields each setting to evaluate (each once), is sent
    its PSNR, and returns (setting, PSNR, matched). Lets :meth:`PsnrTargets.compress_batch` run
    one search per image in lockstep, coding each round's settings in one batch."""
    seen: dict[int, float] = {}

    def snap(v: float) -> int:
        return int(min(max(step * round(v / step), lo), hi))

    below: int | None = None  # highest PSNR still under the target: a ratio too large
    above: int | None = None  # lowest PSNR at or over it: a ratio small enough
    r, slope_est = snap(start), slope
    for _ in range(max_evals):
        if r not in seen:
            seen[r] = float((yield r))
        p = seen[r]
        if abs(p - target) <= tol:
            break
        if p >= target:
            above = r if above is None or r > above else above
        else:
            below = r if below is None or r < below else below
        if above is not None and below is not None:
            if below - above <= step:
                break
            pa, pb = seen[above], seen[below]
            la, lb = math.log(above), math.log(below)
            t = (pa - target) / (pa - pb) if pa != pb else 0.5
            nxt = snap(math.exp(la + t * (lb - la)))
            if nxt in seen:  # the guess fell on an end: step inside the bracket
                nxt = snap(above + step) if nxt <= above else snap(below - step)
            if nxt in seen or not above < nxt < below:
                break
        else:
            nxt = snap(r * 2.0 ** ((target - p) / slope_est))
            if nxt == r:
                nxt = snap(r + step if p > target else r - step)
            if nxt in seen:  # back where it was: one grid step on instead
                nxt = snap(r + step if p > target else r - step)
            if nxt == r or nxt in seen:  # at an end of the grid: the target is out of reach
                break
        if len(seen) >= 2:  # refine the slope from the two latest points
            (r0, p0), (r1, p1) = sorted(seen.items())[:1] + sorted(seen.items())[-1:]
            if r0 != r1 and p0 != p1:
                slope_est = min((p1 - p0) / math.log2(r1 / r0), -0.5)
        r = nxt
    best = min(seen.items(), key=lambda c: (abs(c[1] - target), c[0]))
    return best[0], best[1], abs(best[1] - target) <= tol


class PsnrTargets:
    """Per-image PSNR targets of one evaluation, in the order its images are coded.

    ``targets``: ``(image id, PSNR dB)`` pairs in the order of the evaluation's image ids (the
    NIC entry's records, see ``spectral_analysis.psnr_matched_j2k``); the ids only label the
    configuration and the messages, the order assigns the targets. Each :meth:`compress` codes
    the next image at the setting whose PSNR is nearest its target (:func:`search_psnr`, or
    :func:`search_psnr_grid` for a codec with a ``psnr_grid``); :meth:`compress_batch` the next
    several, with the same results.
    """

    def __init__(self, targets: Any, tol: float = PSNR_TOL) -> None:
        try:
            pairs = [(str(i), float(p)) for i, p in targets]
        except (TypeError, ValueError):
            raise UsageError(
                f"target_psnr must be (image id, PSNR) pairs, got {targets!r}"
            ) from None
        if not pairs:
            raise UsageError("target_psnr needs at least one (image id, PSNR) pair")
        bad = [f"{i}: {p}" for i, p in pairs if not math.isfinite(p) or p <= 0]
        if bad:
            raise UsageError(f"target_psnr must be positive finite dB, got {', '.join(bad)}")
        if not 0 < float(tol) < 10:
            raise UsageError(f"psnr_tol must be in (0, 10) dB, got {tol}")
        self.targets = [(i, round(p, 6)) for i, p in pairs]
        self.tol = float(tol)
        self.cursor = 0

    def config(self) -> dict[str, Any]:
        """What enters the codec's configuration (and so the results store's key)."""
        return {
            "target_psnr": [[i, p] for i, p in self.targets],
            "psnr_tol": self.tol,
            "rate_control": "per-image PSNR",
        }

    def compress(self, codec: Codec, image: np.ndarray) -> CodecResult:
        """Code ``image`` (the next one of the evaluation) with ``codec`` at its target PSNR."""
        if self.cursor >= len(self.targets):
            raise UsageError(f"{codec.name}: more images than PSNR targets ({len(self.targets)})")
        _, target = self.targets[self.cursor]
        self.cursor += 1
        image = check_image(image)
        results: dict[float | int, CodecResult] = {}
        coded: dict[Any, CodecResult] = {}  # by the setting the codec really uses

        def psnr_at(v: float | int) -> float:
            c = codec.at(v)  # a codec may round the setting (jpeg2000-ffmpeg: an even ratio)
            if c.setting not in coded:
                coded[c.setting] = c.compress(image)
            results[v] = coded[c.setting]
            return _psnr_8bit(results[v].reconstruction, image)

        assert codec.knob is not None
        # search to Pillow's 0.05 dB even under a wider tolerance: the nearest setting wins
        grid = getattr(codec, "psnr_grid", None)  # a codec whose settings lie on a grid
        tol = min(self.tol, PSNR_TOL)
        setting: float | int
        if grid is not None:
            setting = search_psnr_grid(psnr_at, target, tol=tol, **grid)[0]
        else:
            setting = search_psnr(codec.knob, psnr_at, target, tol=tol)[0]
        return results[setting]

    def compress_batch(self, codec: Codec, images: Sequence[np.ndarray]) -> list[CodecResult]:
        """Code ``images`` (the evaluation's next ones) at their target PSNRs: the same settings
        and results as :meth:`compress` image by image. On a codec with a grid (``psnr_grid``)
        the searches (:func:`psnr_grid_steps`) run in lockstep and each round's codings are one
        :func:`~.base.compress_each` batch (``jpeg2000-ffmpeg``: one encode and one decode
        process); otherwise image by image."""
        grid = getattr(codec, "psnr_grid", None)
        if grid is None:
            return [self.compress(codec, im) for im in images]
        images = [check_image(im) for im in images]
        if self.cursor + len(images) > len(self.targets):
            raise UsageError(f"{codec.name}: more images than PSNR targets ({len(self.targets)})")
        targets = [t for _, t in self.targets[self.cursor : self.cursor + len(images)]]
        self.cursor += len(images)
        tol = min(self.tol, PSNR_TOL)  # as in compress
        searches = [psnr_grid_steps(t, tol=tol, **grid) for t in targets]
        coded: list[dict[Any, CodecResult]] = [{} for _ in images]  # by the setting really used
        by_value: list[dict[int, CodecResult]] = [{} for _ in images]
        chosen: dict[int, CodecResult] = {}
        asked = {k: next(s) for k, s in enumerate(searches)}
        while asked:
            todo = {k: codec.at(v) for k, v in asked.items()}
            todo = {k: c for k, c in todo.items() if c.setting not in coded[k]}
            ks = list(todo)
            batch = compress_each([todo[k] for k in ks], [images[k] for k in ks])
            for k, res in zip(ks, batch, strict=True):
                coded[k][todo[k].setting] = res
            for k, v in list(asked.items()):
                res = by_value[k][v] = coded[k][codec.at(v).setting]
                try:
                    asked[k] = searches[k].send(_psnr_8bit(res.reconstruction, images[k]))
                except StopIteration as done:
                    del asked[k]
                    chosen[k] = by_value[k][done.value[0]]
        return [chosen[k] for k in range(len(images))]


def psnr_misses(
    records: Sequence[dict[str, Any]],
    targets: Sequence[tuple[str, float]],
    tol: float = PSNR_TOL,
    codec: str = "JPEG2000",
) -> list[str]:
    """One line per image whose recorded PSNR is not within ``tol`` dB of its target (by id),
    saying which image, the target, what was reached and why (``records``: an evaluation's
    ``per_image``); empty when every image is matched."""
    want = {str(i): float(p) for i, p in targets}
    lines = []
    for rec in records:
        i = str(rec["id"])
        got = rec.get("psnr")
        if i not in want:
            lines.append(f"{i}: no PSNR target")
            continue
        t = want[i]
        if got is None:
            lines.append(f"{i}: {codec} was lossless (infinite PSNR) for a {t:.2f} dB target")
        elif abs(float(got) - t) > tol + 1e-6:
            bpp = float(rec.get("bpp") or 0.0)
            why = (
                f"no compression ratio gives it; the nearest is {float(got):.2f} dB at "
                f"{bpp:.3f} bpp (the PSNR jumps over the target between two neighbouring "
                f"ratios, or the target lies beyond the ratios {codec} takes)"
            )
            lines.append(f"{i}: target {t:.2f} dB, reached {float(got):.2f} dB: {why}")
    return lines
