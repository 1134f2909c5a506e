"""JPEG2000 as the paper ran it: OpenJPEG through the ffmpeg command line (``jpeg2000-ffmpeg``).

The paper, like CompressAI's published JPEG2000 curve (``compressai.utils.bench``), codes each PNG
with::

    ffmpeg -i in.png -vcodec jpeg2000 -pix_fmt yuv444p -c:v libopenjpeg -compression_level L out.jp2
    ffmpeg -i out.jp2 rec.png

so ffmpeg converts RGB to 8-bit limited-range BT.601 YCbCr 4:4:4 before OpenJPEG sees it, OpenJPEG
codes the three planes with its defaults (reversible 5/3 wavelet, no colour transform of its own,
one quality layer, JP2 file), and ffmpeg's own decoder plus the inverse matrix give back RGB. ffmpeg
hands OpenJPEG the compression ratio ``2 * L``; the rate is the size of the whole ``.jp2`` file.

Starting ffmpeg costs more than coding a 256x256 image, so a batch
(:meth:`Jpeg2000FfmpegCodec.compress_batch`, :func:`.base.compress_each`) codes all its images
in one encode and one decode process, as numbered sequences of one shape and setting each
(JPEG2000 is intra-only: every frame is a whole file), with the same flags and the same files
and reconstructions as one image at a time (``scripts/bench_jpeg2000_ffmpeg.py``).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DataError, UsageError
from .base import Codec, CodecResult, Knob, check_image, to_float

FFMPEG_ENV = "NICSPEC_FFMPEG"
RAW_BPP = 24.0
# PSNR matching's tolerance on this path (dB): the ratio moves in steps of 2, about 0.1-0.4 dB
# at 0.25-1 bpp on Kodak, so the nearest ratio is often more than Pillow's 0.05 dB away
PSNR_TOL = 0.25
PIX_FMTS = ("yuv444p", "rgb24")
FORMATS = ("jp2", "j2k")
JP2_MAGIC = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
J2K_MAGIC = b"\xff\x4f\xff\x51"
_INSTALL = f"apt-get install ffmpeg, or set {FFMPEG_ENV}"
_OPJ_COMMENT = re.compile(rb"Created by OpenJPEG version ([0-9][0-9A-Za-z.\-]*)")
_QUIET = ["-nostdin", "-loglevel", "error", "-y"]
# a batch's ffmpeg call codes at most this many sequences (one per shape and setting) and is
# given timeout_s for each BATCH_FRAMES images it codes
MAX_GROUPS = 32
BATCH_FRAMES = 8


def find_ffmpeg(path: str | None = None) -> str | None:
    """The ffmpeg executable: ``path``, else ``$NICSPEC_FFMPEG``, else ``ffmpeg`` on PATH."""
    cand = path or os.environ.get(FFMPEG_ENV) or "ffmpeg"
    return shutil.which(cand)


def _run(
    cmd: list[str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        raise DataError(f"{Path(cmd[0]).name} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise UsageError(f"jpeg2000-ffmpeg: cannot run {cmd[0]}: {exc}") from None


def _check(out: subprocess.CompletedProcess[str], what: str) -> None:
    if out.returncode != 0:
        tail = " ".join((out.stderr or out.stdout).split())[-300:]
        raise DataError(f"jpeg2000-ffmpeg: ffmpeg {what} failed (exit {out.returncode}): {tail}")


@functools.lru_cache(maxsize=8)
def probe(ffmpeg: str) -> str:
    """``"ffmpeg X, OpenJPEG Y"`` for this ffmpeg; UsageError when it lacks libopenjpeg.

    ffmpeg does not print the OpenJPEG version, so a 32x32 image is coded once and the version
    read from the comment OpenJPEG writes into every codestream.
    """
    out = _run([ffmpeg, "-hide_banner", "-version"], 30)
    m = re.search(r"ffmpeg version (\S+)", out.stdout)
    if out.returncode != 0 or m is None:
        raise UsageError(f"jpeg2000-ffmpeg: {ffmpeg} -version did not print an ffmpeg version")
    encoders = _run([ffmpeg, "-hide_banner", "-encoders"], 30).stdout
    if not re.search(r"^\s*\S+\s+libopenjpeg\s", encoders, re.M):
        raise UsageError(
            f"jpeg2000-ffmpeg: ffmpeg {m.group(1)} at {ffmpeg} has no libopenjpeg encoder"
        )
    tmp = Path(tempfile.mkdtemp(prefix="nicspec-j2kff-"))
    try:
        Image.new("RGB", (32, 32), (128, 64, 32)).save(tmp / "in.png")
        cmd = [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(tmp / "in.png")]
        cmd += ["-c:v", "libopenjpeg", "-format", "j2k", "-f", "image2", str(tmp / "out.j2k")]
        _check(_run(cmd, 60), "probe encode")
        c = _OPJ_COMMENT.search((tmp / "out.j2k").read_bytes())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f"ffmpeg {m.group(1)}, OpenJPEG {c.group(1).decode() if c else '(unknown version)'}"


def ffmpeg_unavailable() -> str | None:
    """Why ``jpeg2000-ffmpeg`` cannot run here (one line), or None when it can."""
    exe = find_ffmpeg()
    if exe is None:
        return f"jpeg2000-ffmpeg: ffmpeg not found ({_INSTALL})"
    try:
        probe(exe)
    except (UsageError, DataError) as exc:
        return str(exc)
    return None


class Jpeg2000FfmpegCodec(Codec):
    """JPEG2000 the paper's way: OpenJPEG through ffmpeg (``yuv444p``), see the module docstring.

    ``quality`` is the compression ratio against 24-bit RGB, as for ``jpeg2000`` (bpp ~= 24 /
    ratio whatever the content, plus the JP2 boxes); ffmpeg's integer ``-compression_level`` is
    half the ratio, so the ratio is rounded to an even integer. ``bpp=`` sets it to 24 / bpp.
    Options: ``pix_fmt`` ("yuv444p", the paper's; "rgb24" hands OpenJPEG RGB), ``irreversible``
    (False: ffmpeg's default 5/3 wavelet; True: 9/7), ``format`` ("jp2", the paper's file; "j2k":
    the bare codestream), ``ffmpeg`` (the executable; default ``$NICSPEC_FFMPEG`` or PATH),
    ``timeout_s`` (per ffmpeg call; a batch's call gets it per :data:`BATCH_FRAMES` images);
    ``target_psnr`` ((image id, dB) pairs) and ``psnr_tol``: per-image PSNR
    matching as for ``jpeg2000`` (:class:`ratematch.PsnrTargets`: the even ratio whose PSNR is
    nearest each target; with steps of 2 in the ratio a target often lies between two ratios,
    so :data:`PSNR_TOL` is wider than Pillow's 0.05 dB).
    """

    name = "jpeg2000-ffmpeg"
    knob = Knob(
        "quality",
        2.0,
        4800.0,
        integer=False,
        increasing=False,
        log=True,
        search=(4.0, 2400.0),
        meaning="compression ratio, an even integer (bpp = 24 / ratio; ffmpeg level = ratio / 2)",
    )
    # PSNR matching searches the even ratios (ratematch.search_psnr_grid), from 0.5 bpp
    psnr_grid = {"lo": 2, "hi": 4800, "step": 2, "start": 48}
    OPTIONS = {
        "pix_fmt": "yuv444p",
        "irreversible": False,
        "format": "jp2",
        "ffmpeg": None,
        "timeout_s": 120,
    }

    def __init__(self, **options: Any) -> None:
        target, tol = options.pop("target_psnr", None), options.pop("psnr_tol", None)
        super().__init__(**options)
        self.psnr_targets: Any = None
        if target is not None:
            from .ratematch import PsnrTargets

            self.psnr_targets = PsnrTargets(target, PSNR_TOL if tol is None else tol)
        elif tol is not None:
            raise UsageError(f"{self.name}: psnr_tol needs target_psnr")
        if self.options["pix_fmt"] not in PIX_FMTS:
            raise UsageError(
                f"jpeg2000-ffmpeg: pix_fmt must be one of {', '.join(PIX_FMTS)}, "
                f"got {self.options['pix_fmt']!r}"
            )
        if self.options["format"] not in FORMATS:
            raise UsageError(
                f"jpeg2000-ffmpeg: format must be jp2 or j2k, got {self.options['format']!r}"
            )
        exe = find_ffmpeg(self.options["ffmpeg"])
        if exe is None:
            where = self.options["ffmpeg"] or os.environ.get(FFMPEG_ENV) or "ffmpeg on PATH"
            raise UsageError(f"jpeg2000-ffmpeg: ffmpeg not found ({where}; {_INSTALL})")
        self.exe = exe
        self.version = probe(exe)

    def at(self, value: float) -> Codec:
        """A copy at compression ratio ``value``, rounded to an even integer (at least 2),
        without PSNR targets."""
        new = super().at(value)
        new.setting = max(2, 2 * int(round(float(new.setting) / 2.0)))  # type: ignore[arg-type]
        new.psnr_targets = None  # type: ignore[attr-defined]
        return new

    def compress(self, image: np.ndarray) -> CodecResult:
        """Code ``image``; with PSNR targets, the next image at its target (ratematch)."""
        if self.psnr_targets is not None:
            return self.psnr_targets.compress(self, image)
        return super().compress(image)

    def compress_batch(self, images: Sequence[np.ndarray]) -> list[CodecResult]:
        """Code several images, bit-identical to :meth:`compress` one by one, in one encode and
        one decode process (:meth:`compress_pairs`); with PSNR targets, the images' searches in
        lockstep, each round one such batch (:meth:`ratematch.PsnrTargets.compress_batch`)."""
        if self.psnr_targets is not None:
            return self.psnr_targets.compress_batch(self, images)
        return self.compress_pairs([self] * len(images), images)

    @classmethod
    def compress_pairs(
        cls, codecs: Sequence[Codec], images: Sequence[np.ndarray]
    ) -> list[CodecResult]:
        """Code ``images[k]`` with ``codecs[k]`` (each its own ratio): the images of one shape
        and setting form a numbered PNG sequence, and ONE ffmpeg call encodes every sequence
        (one input and one output, with :meth:`encode_args`, each), ONE decodes them (to raw
        RGB); same files and reconstructions as :meth:`compress` (tests/test_jpeg2000_ffmpeg).
        Codecs with PSNR targets code theirs one by one."""
        if len(codecs) != len(images):
            raise UsageError(f"jpeg2000-ffmpeg: {len(codecs)} codecs for {len(images)} images")
        coders = [c for c in codecs if isinstance(c, Jpeg2000FfmpegCodec)]
        if len(coders) != len(codecs):
            raise UsageError("jpeg2000-ffmpeg: compress_pairs takes jpeg2000-ffmpeg codecs only")
        images = [check_image(im) for im in images]
        for c in coders:
            c._require_setting()
        out: list[CodecResult | None] = [None] * len(images)
        groups: dict[tuple[Any, ...], list[int]] = {}  # (exe, timeout, options, shape): images
        for k, c in enumerate(coders):
            if c.psnr_targets is not None:
                out[k] = c.compress(images[k])
                continue
            key = (c.exe, float(c.options["timeout_s"]), tuple(c.encode_args("")))
            groups.setdefault((*key, images[k].shape), []).append(k)
        by_run: dict[tuple[Any, ...], list[list[int]]] = {}  # one process per exe and timeout
        for key, ks in groups.items():
            by_run.setdefault(key[:2], []).append(ks)
        for runs in by_run.values():
            for start in range(0, len(runs), MAX_GROUPS):
                chunk = runs[start : start + MAX_GROUPS]
                coded = _code_sequences([(coders[ks[0]], [images[k] for k in ks]) for ks in chunk])
                for ks, results in zip(chunk, coded, strict=True):
                    for k, (data, rec) in zip(ks, results, strict=True):
                        res = CodecResult(data, to_float(rec), float(len(data) * 8))
                        res.setting = coders[k].setting
                        out[k] = res
        return [r for r in out if r is not None]

    def for_bpp(self, bpp: float) -> Codec:
        """The codec at compression ratio 24 / bpp (rounded to an even integer)."""
        try:
            b = float(bpp)
        except (TypeError, ValueError):
            raise UsageError(f"{self.name}: bpp must be a number, got {bpp!r}") from None
        lo = RAW_BPP / self.knob.hi
        if not lo <= b <= RAW_BPP / self.knob.lo:
            raise UsageError(f"{self.name}: bpp must be in {lo:g}..12, got {b:g}")
        return self.at(RAW_BPP / b)

    def config(self) -> dict[str, Any]:
        """Options minus the executable's path and the timeout (the version stands for them);
        with PSNR targets, these instead of a compression ratio."""
        cfg = super().config()
        cfg.pop("ffmpeg", None)
        cfg.pop("timeout_s", None)
        if self.psnr_targets is not None:
            cfg.pop(self.knob.param, None)
            cfg.update(self.psnr_targets.config())
        return cfg

    def encode_command(self, src: str, dst: str) -> list[str]:
        """The ffmpeg encode command (CompressAI's bench, plus quiet, overwrite and options)."""
        return [self.exe, *_QUIET, "-i", src, *self.encode_args(dst)]

    def encode_args(self, dst: str) -> list[str]:
        """The encoder's options and output of :meth:`encode_command` (one output of a batch)."""
        cmd = ["-vcodec", "jpeg2000", "-pix_fmt", str(self.options["pix_fmt"])]
        cmd += ["-c:v", "libopenjpeg", "-compression_level", str(int(self.setting) // 2)]  # type: ignore[arg-type]
        if self.options["irreversible"]:
            cmd += ["-irreversible", "1"]
        cmd += ["-format", str(self.options["format"]), "-f", "image2", dst]
        return cmd

    def _decode_file(self, path: Path, tmp: Path) -> np.ndarray:
        rec = tmp / "rec.png"
        cmd = [
            self.exe,
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-c:v",
            "jpeg2000",
            "-i",
            str(path),
        ]
        cmd += ["-pix_fmt", "rgb24", "-f", "image2", "-vcodec", "png", str(rec)]
        _check(_run(cmd, float(self.options["timeout_s"])), "decode")
        with Image.open(rec) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()

    def _compress(self, image: np.ndarray) -> CodecResult:
        tmp = Path(tempfile.mkdtemp(prefix="nicspec-j2kff-"))
        try:
            src, out = tmp / "in.png", tmp / f"out.{self.options['format']}"
            Image.fromarray(image).save(src, compress_level=1)
            _check(
                _run(self.encode_command(str(src), str(out)), float(self.options["timeout_s"])),
                "encode",
            )
            data = out.read_bytes()
            rec = self._decode_file(out, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if rec.shape != image.shape:
            raise DataError(f"{self.name} decoded {rec.shape}, expected {image.shape}")
        return CodecResult(data, to_float(rec), float(len(data) * 8))

    def decode(self, bitstream: bytes) -> np.ndarray:
        """Decode a file written by this codec (with ffmpeg's own JPEG2000 decoder)."""
        tmp = Path(tempfile.mkdtemp(prefix="nicspec-j2kff-"))
        try:
            path = tmp / f"in.{'jp2' if bitstream.startswith(JP2_MAGIC) else 'j2k'}"
            path.write_bytes(bitstream)
            return to_float(self._decode_file(path, tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _code_sequences(
    groups: Sequence[tuple[Jpeg2000FfmpegCodec, Sequence[np.ndarray]]],
) -> list[list[tuple[bytes, np.ndarray]]]:
    """Code each group (a codec and images of one shape) as one numbered sequence: one ffmpeg
    call encodes all groups (input ``g``: ``in{g}_%05d.png``, output ``g``: that group's
    :meth:`~Jpeg2000FfmpegCodec.encode_args` to ``out{g}_%05d.<format>``; JPEG2000 is intra-only,
    so each frame is a whole file), one decodes them (rawvideo rgb24, ``rec{g}.rgb``).
    Returns (file bytes, HxWx3 uint8 reconstruction) per image, per group."""
    first = groups[0][0]
    n = sum(len(ims) for _, ims in groups)
    timeout = float(first.options["timeout_s"]) * -(-n // BATCH_FRAMES)
    tmp = Path(tempfile.mkdtemp(prefix="nicspec-j2kff-"))
    try:
        enc, dec = [first.exe, *_QUIET], [first.exe, *_QUIET]
        for g, (_, ims) in enumerate(groups):
            for j, im in enumerate(ims):
                Image.fromarray(im).save(tmp / f"in{g}_{j:05d}.png", compress_level=1)
            enc += ["-i", f"in{g}_%05d.png"]
        for g, (codec, _) in enumerate(groups):
            fmt = codec.options["format"]
            enc += ["-map", f"{g}:v:0", *codec.encode_args(f"out{g}_%05d.{fmt}")]
            dec += ["-c:v", "jpeg2000", "-i", f"out{g}_%05d.{fmt}"]
        for g in range(len(groups)):
            dec += ["-map", f"{g}:v:0", "-pix_fmt", "rgb24", "-f", "rawvideo"]
            dec += ["-vcodec", "rawvideo", f"rec{g}.rgb"]
        _check(_run(enc, timeout, cwd=tmp), "encode")
        files = []
        for g, (codec, ims) in enumerate(groups):
            # the image2 muxer numbers from 1
            fmt = codec.options["format"]
            names = [tmp / f"out{g}_{j:05d}.{fmt}" for j in range(1, len(ims) + 1)]
            extra = tmp / f"out{g}_{len(ims) + 1:05d}.{fmt}"
            if extra.exists() or not all(p.is_file() for p in names):
                raise DataError(f"jpeg2000-ffmpeg: ffmpeg did not write {len(ims)} files")
            files.append([p.read_bytes() for p in names])
        _check(_run(dec, timeout, cwd=tmp), "decode")
        out = []
        for g, (_, ims) in enumerate(groups):
            h, w, _c = ims[0].shape
            raw = np.fromfile(tmp / f"rec{g}.rgb", dtype=np.uint8)
            if raw.size != len(ims) * h * w * 3:
                raise DataError(
                    f"jpeg2000-ffmpeg decoded {raw.size} bytes, expected {len(ims)} {w}x{h} images"
                )
            recs = raw.reshape(len(ims), h, w, 3)
            out.append([(data, recs[j].copy()) for j, data in enumerate(files[g])])
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
