"""Classic codecs: identity, JPEG, JPEG2000, WebP, AVIF (Pillow), HEVC (pillow-heif), VTM.

Every reconstruction is decoded from the real bitstream and is ``uint8 / 255`` (float32).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from PIL import Image, features

from ..errors import DataError, UsageError
from .base import Codec, CodecResult, Knob, pil_decode, to_float

RAW_BPP = 24.0
SUBS = "4:4:4, 4:2:2 or 4:2:0"


def _pil_version(feature: str, label: str) -> str:
    return f"Pillow {PIL.__version__}, {label} {features.version(feature)}"


class NoneCodec(Codec):
    """Identity: the raw RGB bytes; 24 bits per pixel."""

    name = "none"
    version = "raw RGB"
    knob = None

    def _compress(self, image: np.ndarray) -> CodecResult:
        data = image.tobytes()
        return CodecResult(data, to_float(image), float(len(data) * 8))


class _PillowCodec(Codec):
    """Codecs written and read back by Pillow."""

    FORMAT = ""

    def _save_kwargs(self) -> dict[str, Any]:
        return {"quality": int(self.setting)}  # type: ignore[arg-type]

    def _encode(self, image: np.ndarray) -> bytes:
        buf = io.BytesIO()
        try:
            Image.fromarray(image).save(buf, format=self.FORMAT, **self._save_kwargs())
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.name} encoder failed: {exc}") from None
        return buf.getvalue()

    def decode(self, bitstream: bytes) -> np.ndarray:
        """Decode a bitstream written by this codec."""
        return to_float(pil_decode(bitstream, self.name))

    def _compress(self, image: np.ndarray) -> CodecResult:
        data = self._encode(image)
        rec = pil_decode(data, self.name)
        if rec.shape != image.shape:
            raise DataError(f"{self.name} decoded {rec.shape}, expected {image.shape}")
        return CodecResult(data, to_float(rec), float(len(data) * 8))


class JpegCodec(_PillowCodec):
    """Baseline JPEG through Pillow/libjpeg; ``quality`` 1..95.

    Options: ``subsampling`` (Pillow's default "4:2:0", as in CompressAI's published JPEG curve;
    "4:4:4" or "4:2:2" also accepted), ``optimize`` (Huffman optimisation, default False).
    """

    name = "jpeg"
    FORMAT = "JPEG"
    knob = Knob("quality", 1, 95, integer=True, meaning="Pillow JPEG quality")
    OPTIONS = {"subsampling": "4:2:0", "optimize": False}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.options["subsampling"] not in ("4:4:4", "4:2:2", "4:2:0"):
            raise UsageError(f"jpeg: bad subsampling {self.options['subsampling']!r}; use {SUBS}")
        self.version = _pil_version("jpg", "libjpeg")

    def _save_kwargs(self) -> dict[str, Any]:
        return {
            "quality": int(self.setting),  # type: ignore[arg-type]
            "subsampling": self.options["subsampling"],
            "optimize": bool(self.options["optimize"]),
        }


class Jpeg2000Codec(_PillowCodec):
    """JPEG2000 (OpenJPEG through Pillow): 9/7 irreversible wavelet, colour transform (mct=1),
    one quality layer at a fixed compression ratio, raw J2K codestream (no JP2 boxes).

    ``quality`` is the compression ratio against 24-bit RGB (so bpp ~= 24 / quality, whatever the
    content; higher quality means *fewer* bits). ``bpp=`` sets the ratio to 24 / bpp directly.
    Same rate semantics as the paper's ffmpeg path (``jpeg2000-ffmpeg``), but not the same coder:
    the paper's codes ffmpeg's yuv444p planes with the 5/3 wavelet, 0.7-1.3 dB below this one.
    """

    name = "jpeg2000"
    FORMAT = "JPEG2000"
    knob = Knob(
        "quality",
        1.0,
        4800.0,
        integer=False,
        increasing=False,
        log=True,
        search=(3.0, 2400.0),
        meaning="compression ratio (bpp = 24 / ratio)",
    )
    OPTIONS = {"num_resolutions": 6}

    def __init__(self, **options: Any) -> None:
        # ``target_psnr`` ((id, dB) pairs) and ``psnr_tol``: per-image PSNR matching (ratematch)
        target, tol = options.pop("target_psnr", None), options.pop("psnr_tol", None)
        super().__init__(**options)
        self.version = _pil_version("jpg_2000", "OpenJPEG")
        self.psnr_targets: Any = None
        if target is not None:
            from .ratematch import PSNR_TOL, PsnrTargets

            self.psnr_targets = PsnrTargets(target, PSNR_TOL if tol is None else tol)
        elif tol is not None:
            raise UsageError("jpeg2000: psnr_tol needs target_psnr")

    def config(self) -> dict[str, Any]:
        """The options; with PSNR targets, these instead of a compression ratio."""
        cfg = super().config()
        if self.psnr_targets is not None:
            cfg.pop(self.knob.param, None)
            cfg.update(self.psnr_targets.config())
        return cfg

    def at(self, value: float) -> Codec:
        """A copy at compression ratio ``value`` (without PSNR targets)."""
        new = super().at(value)
        new.psnr_targets = None  # type: ignore[attr-defined]
        return new

    def compress(self, image: np.ndarray) -> CodecResult:
        """Code ``image``; with PSNR targets, the next image at its target (ratematch)."""
        if self.psnr_targets is not None:
            return self.psnr_targets.compress(self, image)
        return super().compress(image)

    def for_bpp(self, bpp: float) -> Codec:
        """The codec at compression ratio 24 / bpp (JPEG2000's own rate control)."""
        try:
            b = float(bpp)
        except (TypeError, ValueError):
            raise UsageError(f"jpeg2000: bpp must be a number, got {bpp!r}") from None
        if not 24.0 / self.knob.hi <= b <= RAW_BPP:
            raise UsageError(f"jpeg2000: bpp must be in {24.0 / self.knob.hi:g}..24, got {b:g}")
        return self.at(RAW_BPP / b)

    def _save_kwargs(self) -> dict[str, Any]:
        return {
            "no_jp2": True,
            "irreversible": True,
            "mct": 1,
            "quality_mode": "rates",
            "quality_layers": [float(self.setting)],  # type: ignore[arg-type]
            "num_resolutions": int(self.options["num_resolutions"]),
        }


def j2k_header_bytes(data: bytes) -> int:
    """Bytes of a raw J2K codestream that are not entropy-coded data: SOC, the main header's
    marker segments (SIZ, COD, QCD, COM, ...), every tile-part header (SOT .. SOD) and EOC.
    ``len(data) - j2k_header_bytes(data)`` is the payload (the coded packets). DataError for a
    stream that is not a J2K codestream."""

    def u16(pos: int) -> int:
        if pos + 2 > len(data):
            raise DataError("not a J2K codestream: truncated marker")
        return int.from_bytes(data[pos : pos + 2], "big")

    if u16(0) != 0xFF4F:
        raise DataError("not a J2K codestream: no SOC marker")
    pos, header = 2, 2
    while u16(pos) != 0xFF90:  # main header segments up to the first SOT
        if u16(pos) == 0xFFD9:
            return len(data)  # no tile at all: nothing but header
        seg = 2 + u16(pos + 2)
        pos, header = pos + seg, header + seg
    while u16(pos) == 0xFF90:  # tile parts: SOT, tile-part header, SOD, packets
        start, psot = pos, int.from_bytes(data[pos + 6 : pos + 10], "big")
        while u16(pos) != 0xFF93:
            seg = 2 + u16(pos + 2)
            pos, header = pos + seg, header + seg
        header += 2  # SOD
        pos = start + psot if psot else len(data) - 2
    if u16(pos) != 0xFFD9:
        raise DataError("not a J2K codestream: no EOC marker after the tile parts")
    return header + 2


class WebpCodec(_PillowCodec):
    """Lossy WebP (libwebp, always 4:2:0); ``quality`` 0..100; option ``method`` 0..6 (4)."""

    name = "webp"
    FORMAT = "WEBP"
    knob = Knob("quality", 0, 100, integer=True, meaning="libwebp quality")
    OPTIONS = {"method": 4}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.version = _pil_version("webp", "libwebp")

    def _save_kwargs(self) -> dict[str, Any]:
        return {"quality": int(self.setting), "method": int(self.options["method"])}  # type: ignore[arg-type]


class AvifCodec(_PillowCodec):
    """AVIF (libavif + aom through Pillow); ``quality`` 0..100.

    Options: ``subsampling`` (default "4:4:4", so chroma is not halved; Pillow's own default is
    "4:2:0"), ``speed`` 0..10 (default 6, Pillow's default).
    """

    name = "avif"
    FORMAT = "AVIF"
    knob = Knob("quality", 0, 100, integer=True, meaning="libavif quality")
    OPTIONS = {"subsampling": "4:4:4", "speed": 6}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.options["subsampling"] not in ("4:4:4", "4:2:2", "4:2:0"):
            raise UsageError(f"avif: bad subsampling {self.options['subsampling']!r}; use {SUBS}")
        from PIL import _avif

        self.version = f"{_pil_version('avif', 'libavif')}, {_avif.codec_versions()}"

    def _save_kwargs(self) -> dict[str, Any]:
        return {
            "quality": int(self.setting),  # type: ignore[arg-type]
            "subsampling": self.options["subsampling"],
            "speed": int(self.options["speed"]),
            "range": "full",
            "codec": "aom",
        }


class HevcCodec(Codec):
    """HEVC intra in HEIF (libheif + x265 through pillow-heif); ``quality`` 0..100.

    Option ``chroma``: 444 (default: 8-bit YCbCr 4:4:4, BT.601 matrix, full range, like the
    ``bpg_444_x265_ycbcr`` reference curve), 422 or 420 (x265's default). 8-bit in and out.
    Option ``preset``: an x265 preset name, or "" for libheif's default.
    """

    name = "hevc"
    knob = Knob("quality", 0, 100, integer=True, meaning="libheif/x265 quality")
    OPTIONS = {"chroma": 444, "preset": ""}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if int(self.options["chroma"]) not in (444, 422, 420):
            raise UsageError(
                f"hevc: chroma must be 444, 422 or 420, got {self.options['chroma']!r}"
            )
        import pillow_heif

        info = pillow_heif.libheif_info()
        if not info.get("HEIF"):
            raise UsageError("hevc: this pillow-heif has no HEVC encoder")
        self.version = (
            f"pillow-heif {pillow_heif.__version__}, libheif {info['libheif']}, {info['HEIF']}"
        )

    def _compress(self, image: np.ndarray) -> CodecResult:
        import pillow_heif

        h, w = image.shape[:2]
        enc_params = {}
        if self.options["preset"]:
            enc_params["preset"] = str(self.options["preset"])
        buf = io.BytesIO()
        try:
            pillow_heif.encode(
                "RGB",
                (w, h),
                image.tobytes(),
                buf,
                quality=int(self.setting),  # type: ignore[arg-type]
                chroma=int(self.options["chroma"]),
                enc_params=enc_params,
                save_nclx_profile=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise DataError(f"hevc encoder failed: {exc}") from None
        data = buf.getvalue()
        rec = self._decode_uint8(data)
        if rec.shape != image.shape:
            raise DataError(f"hevc decoded {rec.shape}, expected {image.shape}")
        return CodecResult(data, to_float(rec), float(len(data) * 8))

    @staticmethod
    def _decode_uint8(data: bytes) -> np.ndarray:
        import pillow_heif

        try:
            heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
            img = Image.frombytes(
                heif.mode, heif.size, bytes(heif.data), "raw", heif.mode, heif.stride
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise DataError(f"cannot decode hevc bitstream: {exc}") from None
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()

    def decode(self, bitstream: bytes) -> np.ndarray:
        """Decode a HEIF file written by this codec."""
        return to_float(self._decode_uint8(bitstream))


# --- VTM ---------------------------------------------------------------------------------------
VTM_ENV = "NICSPEC_VTM_DIR"
_ENCODERS = ("EncoderAppStatic", "EncoderApp")
_DECODERS = ("DecoderAppStatic", "DecoderApp")
_CFG = "encoder_intra_vtm.cfg"
# BT.709 luma weights; full-range YCbCr.
_KR, _KB = 0.2126, 0.0722


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 float RGB in [0, 1] -> 3xHxW YCbCr in [0, 1] (BT.709, full range)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = _KR * r + (1 - _KR - _KB) * g + _KB * b
    cb = (b - y) / (2 * (1 - _KB)) + 0.5
    cr = (r - y) / (2 * (1 - _KR)) + 0.5
    return np.stack([y, cb, cr])


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """3xHxW YCbCr in [0, 1] (BT.709, full range) -> HxWx3 RGB (not clipped)."""
    y, cb, cr = ycc[0], ycc[1] - 0.5, ycc[2] - 0.5
    r = y + 2 * (1 - _KR) * cr
    b = y + 2 * (1 - _KB) * cb
    g = (y - _KR * r - _KB * b) / (1 - _KR - _KB)
    return np.stack([r, g, b], axis=-1)


def _find_file(root: Path, names: tuple[str, ...], executable: bool) -> Path | None:
    for folder in (root, root / "bin"):
        for n in names:
            p = folder / n
            if p.is_file() and (not executable or os.access(p, os.X_OK)):
                return p
    for n in names:
        for p in sorted(root.rglob(n)):
            if p.is_file() and (not executable or os.access(p, os.X_OK)):
                return p
    return None


class VtmCodec(Codec):
    """VVC intra with the VTM reference software, as an external program.

    The image goes to an 8-bit (option ``bitdepth``: 8 or 10) planar YCbCr 4:4:4 file (BT.709, full
    range), is coded with ``EncoderAppStatic -c encoder_intra_vtm.cfg -q QP``, decoded with
    ``DecoderAppStatic`` and converted back to RGB (rounded to 8 bits). ``quality`` is the QP
    (0..63; *lower* QP means more bits). Binaries and config come from the option ``vtm_dir`` or
    the environment variable ``NICSPEC_VTM_DIR`` (searched at the top, in ``bin/``, then below);
    option ``vtm_cfg`` names another config file.
    """

    name = "vtm"
    knob = Knob("quality", 0, 63, integer=True, increasing=False, meaning="VTM QP")
    OPTIONS = {"vtm_dir": None, "vtm_cfg": None, "bitdepth": 8, "timeout_s": 600}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        root_s = self.options["vtm_dir"] or os.environ.get(VTM_ENV)
        if not root_s:
            raise UsageError(f"VTM binaries not found: set --vtm-dir or {VTM_ENV}")
        root = Path(root_s).expanduser()
        enc = _find_file(root, _ENCODERS, True) if root.is_dir() else None
        dec = _find_file(root, _DECODERS, True) if root.is_dir() else None
        if enc is None or dec is None:
            raise UsageError(
                f"VTM binaries not found: no EncoderAppStatic/DecoderAppStatic under {root}"
            )
        cfg = (
            Path(self.options["vtm_cfg"]).expanduser()
            if self.options["vtm_cfg"]
            else _find_file(root, (_CFG,), False)
        )
        if cfg is None or not cfg.is_file():
            raise UsageError(f"VTM config not found: {cfg or _CFG + ' under ' + str(root)}")
        if int(self.options["bitdepth"]) not in (8, 10):
            raise UsageError(f"vtm: bitdepth must be 8 or 10, got {self.options['bitdepth']!r}")
        self.encoder, self.decoder, self.cfg = enc, dec, cfg
        self.options["vtm_dir"] = str(root)
        self.options["vtm_cfg"] = str(cfg)
        self.version = self._probe_version()

    def _probe_version(self) -> str:
        try:
            out = subprocess.run(
                [str(self.encoder), "--help"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UsageError(f"VTM encoder {self.encoder} does not run: {exc}") from None
        m = re.search(r"Version\s+([\w.\-]+)", out.stdout + out.stderr)
        return f"VTM {m.group(1)}" if m else "VTM (unknown version)"

    def config(self) -> dict[str, Any]:
        """Options minus the run-time ones; the config file's digest stands for its path."""
        import hashlib

        cfg = super().config()
        cfg.pop("timeout_s", None)
        cfg.pop("vtm_dir", None)
        cfg["vtm_cfg_sha256"] = hashlib.sha256(self.cfg.read_bytes()).hexdigest()
        cfg["vtm_cfg"] = self.cfg.name
        return cfg

    def _run(self, cmd: list[str]) -> None:
        try:
            out = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=float(self.options["timeout_s"]),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DataError(
                f"{Path(cmd[0]).name} timed out after {self.options['timeout_s']} s"
            ) from None
        if out.returncode != 0:
            tail = " ".join((out.stderr or out.stdout).split())[-300:]
            raise DataError(f"{Path(cmd[0]).name} failed (exit {out.returncode}): {tail}")

    def _compress(self, image: np.ndarray) -> CodecResult:
        h, w = image.shape[:2]
        bd = int(self.options["bitdepth"])
        peak = float(2**bd - 1)
        dtype = np.uint8 if bd == 8 else np.dtype("<u2")
        planes = np.clip(np.round(rgb_to_ycbcr(image.astype(np.float64) / 255.0) * peak), 0, peak)
        tmp = Path(tempfile.mkdtemp(prefix="nicspec-vtm-"))
        try:
            src, bits_path, rec = tmp / "in.yuv", tmp / "out.bin", tmp / "rec.yuv"
            src.write_bytes(planes.astype(dtype).tobytes())
            self._run(
                [
                    str(self.encoder),
                    "-i",
                    str(src),
                    "-c",
                    str(self.cfg),
                    "-q",
                    str(int(self.setting)),  # type: ignore[arg-type]
                    "-o",
                    os.devnull,
                    "-b",
                    str(bits_path),
                    "-wdt",
                    str(w),
                    "-hgt",
                    str(h),
                    "-fr",
                    "1",
                    "-f",
                    "1",
                    "--InputChromaFormat=444",
                    f"--InputBitDepth={bd}",
                    f"--OutputBitDepth={bd}",
                    "--ConformanceWindowMode=1",
                ]
            )
            self._run([str(self.decoder), "-b", str(bits_path), "-o", str(rec), "-d", str(bd)])
            data = bits_path.read_bytes()
            raw = np.frombuffer(rec.read_bytes(), dtype=dtype)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if raw.size != 3 * h * w:
            raise DataError(
                f"VTM decoder wrote {raw.size} samples, expected {3 * h * w} (444, {w}x{h})"
            )
        rgb = ycbcr_to_rgb(raw.reshape(3, h, w).astype(np.float64) / peak)
        rec8 = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
        return CodecResult(data, to_float(rec8), float(len(data) * 8))
