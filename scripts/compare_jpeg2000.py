"""Our two JPEG2000 paths on Kodak against CompressAI's published JPEG2000 curve (issue #18).

``jpeg2000`` (Pillow's OpenJPEG: RGB in, 9/7 wavelet + OpenJPEG's colour transform) and
``jpeg2000-ffmpeg`` (the paper's: ffmpeg converts to yuv444p, OpenJPEG's default 5/3 wavelet, JP2
file) at compression ratios 24 / bpp; mean bpp and mean RGB PSNR (8-bit) over the images, and the
published curve interpolated (log-bpp) at each path's own mean bpp. ``--variants`` adds the
diagnostic runs that split the gap: ffmpeg with the 9/7 wavelet, ffmpeg on rgb24 (no colour
conversion), Pillow with the 5/3 wavelet, and ffmpeg's RGB -> yuv444p -> RGB round trip alone.

    OMP_NUM_THREADS=1 python scripts/compare_jpeg2000.py [--images 24] [--variants]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nicspec_utils.codecs import ffmpeg_unavailable, get_codec  # noqa: E402
from nicspec_utils.codecs.jpeg2000_ffmpeg import find_ffmpeg  # noqa: E402
from nicspec_utils.metrics import psnr  # noqa: E402
from nicspec_utils.nic.reference import published_curve  # noqa: E402

KODAK = REPO / "data" / "kodak"
Coder = Callable[[np.ndarray, float], tuple[float, np.ndarray]]


def load_kodak(n: int) -> list[np.ndarray]:
    """The first ``n`` Kodak images (kodim01..) as HxWx3 uint8."""
    paths = sorted(KODAK.glob("kodim*.png"))[:n]
    if not paths:
        sys.exit(f"compare_jpeg2000: no Kodak images in {KODAK}")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def registry_coder(name: str, **options: object) -> Coder:
    """A coder from the codec registry: (image, bpp) -> (bpp, uint8 reconstruction)."""

    def run(image: np.ndarray, bpp: float) -> tuple[float, np.ndarray]:
        r = get_codec(name, bpp=bpp, **options).compress(image)
        return r.bpp, np.round(r.reconstruction * 255.0).astype(np.uint8)

    return run


def pillow_53(image: np.ndarray, bpp: float) -> tuple[float, np.ndarray]:
    """Pillow's OpenJPEG with the reversible 5/3 wavelet (and its reversible colour transform)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(
        buf,
        format="JPEG2000",
        no_jp2=True,
        irreversible=False,
        mct=1,
        quality_mode="rates",
        quality_layers=[24.0 / bpp],
    )
    data = buf.getvalue()
    rec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return len(data) * 8 / (image.shape[0] * image.shape[1]), rec


def yuv_roundtrip(image: np.ndarray, _bpp: float) -> tuple[float, np.ndarray]:
    """ffmpeg's RGB -> yuv444p -> RGB conversion alone (no coding): the colour path's ceiling."""
    exe = find_ffmpeg()
    assert exe is not None
    h, w = image.shape[:2]
    with tempfile.TemporaryDirectory(prefix="nicspec-j2kcmp-") as tmp:
        src, yuv, rec = Path(tmp, "in.png"), Path(tmp, "x.yuv"), Path(tmp, "rec.png")
        Image.fromarray(image).save(src, compress_level=1)
        q = [exe, "-nostdin", "-loglevel", "error", "-y"]
        subprocess.run(
            [*q, "-i", str(src), "-pix_fmt", "yuv444p", "-f", "rawvideo", str(yuv)], check=True
        )
        raw = ["-f", "rawvideo", "-pix_fmt", "yuv444p", "-s", f"{w}x{h}", "-i", str(yuv)]
        subprocess.run([*q, *raw, "-pix_fmt", "rgb24", str(rec)], check=True)
        out = np.asarray(Image.open(rec).convert("RGB"))
    return 24.0, out


def measure(coder: Coder, images: list[np.ndarray], bpp: float) -> tuple[float, float]:
    """Mean bpp and mean PSNR (dB, RGB 8-bit) of ``coder`` at ``bpp`` over ``images``."""
    bpps, psnrs = [], []
    for im in images:
        b, rec = coder(im, bpp)
        bpps.append(b)
        psnrs.append(psnr(im, rec))
    return float(np.mean(bpps)), float(np.mean(psnrs))


def main(argv: list[str] | None = None) -> int:
    """Measure, print the Markdown tables, optionally write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=24, help="first N Kodak images (default 24)")
    ap.add_argument("--bpps", default="0.25,0.5,1.0", help="target bpps (ratio = 24 / bpp)")
    ap.add_argument("--variants", action="store_true", help="also run the diagnostic variants")
    ap.add_argument("--json", type=Path, help="write the measurements here")
    args = ap.parse_args(argv)
    if (why := ffmpeg_unavailable()) is not None:
        print(f"compare_jpeg2000: {why}", file=sys.stderr)
        return 1
    images = load_kodak(args.images)
    targets = [float(b) for b in args.bpps.split(",")]
    pub = published_curve("jpeg2000")
    coders: dict[str, Coder] = {
        "pillow": registry_coder("jpeg2000"),
        "ffmpeg": registry_coder("jpeg2000-ffmpeg"),
    }
    if args.variants:
        coders |= {
            "ffmpeg, 9/7 wavelet": registry_coder("jpeg2000-ffmpeg", irreversible=True),
            "ffmpeg, rgb24 (no colour conversion)": registry_coder(
                "jpeg2000-ffmpeg", pix_fmt="rgb24"
            ),
            "ffmpeg, rgb24 + 9/7": registry_coder(
                "jpeg2000-ffmpeg", pix_fmt="rgb24", irreversible=True
            ),
            "pillow, 5/3 wavelet": pillow_53,
        }
    t0 = time.time()
    res: dict[str, dict[float, tuple[float, float]]] = {
        k: {t: measure(c, images, t) for t in targets} for k, c in coders.items()
    }
    ceiling = measure(yuv_roundtrip, images, 1.0)[1] if args.variants else None
    n = len(images)
    print(f"JPEG2000 on Kodak ({n} images), mean over images; published = CompressAI's curve")
    print("interpolated in log-bpp at the same bpp.\n")
    print(
        "| target bpp | Pillow bpp | Pillow PSNR | ffmpeg bpp | ffmpeg PSNR | published "
        "@ ffmpeg bpp | ffmpeg − published | Pillow − published | Pillow − ffmpeg |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for t in targets:
        (pb, pp), (fb, fp) = res["pillow"][t], res["ffmpeg"][t]
        print(
            f"| {t:g} | {pb:.3f} | {pp:.2f} | {fb:.3f} | {fp:.2f} | {pub.at(fb):.2f} | "
            f"{fp - pub.at(fb):+.2f} dB | {pp - pub.at(pb):+.2f} dB | {pp - fp:+.2f} dB |"
        )
    if args.variants:
        print("\nDiagnostics (PSNR in dB, difference from the paper's ffmpeg path):\n")
        print("| variant | " + " | ".join(f"{t:g} bpp" for t in targets) + " |")
        print("|---|" + "---|" * len(targets))
        for k in coders:
            cells = [
                f"{res[k][t][1]:.2f} ({res[k][t][1] - res['ffmpeg'][t][1]:+.2f})" for t in targets
            ]
            print(f"| {k} | " + " | ".join(cells) + " |")
        print(f"\nffmpeg RGB -> yuv444p -> RGB alone, no coding: {ceiling:.2f} dB")
    print(
        f"\n({time.time() - t0:.0f} s; {get_codec('jpeg2000').version}; "
        f"{get_codec('jpeg2000-ffmpeg').version})"
    )
    if args.json:
        out = {
            k: {str(t): {"bpp": v[0], "psnr": v[1]} for t, v in d.items()} for k, d in res.items()
        }
        out["published"] = {str(t): pub.at(res["ffmpeg"][t][0]) for t in targets}
        if ceiling is not None:
            out["yuv444p_roundtrip_psnr"] = ceiling  # type: ignore[assignment]
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
