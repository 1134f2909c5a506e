"""The two JPEG2000 paths: Pillow's OpenJPEG (``jpeg2000``) and the paper's ffmpeg (issue #18).

Both must write a real JPEG2000 file at the requested compression ratio (bpp within 2 % of the
target on a Kodak image) that decodes to the reconstruction; ``jpeg2000-ffmpeg`` is skipped with
its one-line reason where ffmpeg (with libopenjpeg) is missing, and says so in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicspec_utils.cli import main as cli_main
from nicspec_utils.codecs import ffmpeg_unavailable, get_codec, reference_jpeg2000
from nicspec_utils.codecs import jpeg2000_ffmpeg as jf
from nicspec_utils.errors import UsageError
from nicspec_utils.metrics import psnr

REPO = Path(__file__).resolve().parent.parent
KODIM = REPO / "data" / "kodak" / "kodim23.png"
WHY = ffmpeg_unavailable()
needs_ffmpeg = pytest.mark.skipif(WHY is not None, reason=WHY or "")
BPP_TOL = 0.02  # relative: OpenJPEG's rate control stops just under the ratio's byte budget
PATHS = [
    pytest.param("jpeg2000", jf.J2K_MAGIC, id="pillow"),
    pytest.param("jpeg2000-ffmpeg", jf.JP2_MAGIC, id="ffmpeg", marks=needs_ffmpeg),
]


@pytest.fixture(scope="module")
def kodim() -> np.ndarray:
    if not KODIM.is_file():
        pytest.skip(f"no {KODIM}")
    return np.asarray(Image.open(KODIM).convert("RGB"))


@pytest.fixture
def no_ffmpeg(tmp_path, monkeypatch):
    """PATH without ffmpeg (an empty folder), no NICSPEC_FFMPEG, the probe cache cleared."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(jf.FFMPEG_ENV, raising=False)
    jf.probe.cache_clear()
    yield
    jf.probe.cache_clear()


@pytest.mark.parametrize("bpp", [0.25, 1.0])
@pytest.mark.parametrize(("name", "magic"), PATHS)
def test_real_bitstream_at_requested_rate(name, magic, bpp, kodim):
    codec = get_codec(name, bpp=bpp)
    assert codec.setting == pytest.approx(24.0 / bpp)
    r = codec.compress(kodim)
    assert r.bitstream.startswith(magic)
    assert jf.J2K_MAGIC in r.bitstream  # the codestream (inside the JP2 file's jp2c box)
    assert r.bits == 8 * len(r.bitstream)
    assert r.bpp == pytest.approx(bpp, rel=BPP_TOL)
    assert r.reconstruction.shape == kodim.shape and r.reconstruction.dtype == np.float32
    assert np.array_equal(codec.decode(r.bitstream), r.reconstruction)
    assert 25.0 < psnr(kodim, r.reconstruction) < 50.0


@needs_ffmpeg
def test_ffmpeg_ratio_version_and_options(kodim):
    codec = get_codec("jpeg2000-ffmpeg", quality=47)
    assert codec.setting == 48  # ffmpeg's -compression_level is half the ratio, an integer
    cfg = codec.config()
    assert "ffmpeg " in cfg["version"] and "OpenJPEG 2." in cfg["version"]
    assert "ffmpeg" not in cfg and "timeout_s" not in cfg  # the version stands for the binary
    cmd = codec.encode_command("in.png", "out.jp2")
    assert cmd[cmd.index("-pix_fmt") + 1] == "yuv444p"
    assert cmd[cmd.index("-compression_level") + 1] == "24"
    assert "-irreversible" not in cmd  # the paper ran ffmpeg's default, the 5/3 wavelet
    j2k = get_codec("jpeg2000-ffmpeg", bpp=0.5, format="j2k").compress(kodim)
    assert j2k.bitstream.startswith(jf.J2K_MAGIC)
    with pytest.raises(UsageError, match="pix_fmt"):
        get_codec("jpeg2000-ffmpeg", pix_fmt="yuv420p")


@needs_ffmpeg
def test_reference_prefers_the_papers_path(monkeypatch):
    monkeypatch.delenv("NICSPEC_JPEG2000", raising=False)
    assert reference_jpeg2000() == "jpeg2000-ffmpeg"
    monkeypatch.setenv("NICSPEC_JPEG2000", "pillow")
    assert reference_jpeg2000() == "jpeg2000"
    monkeypatch.setenv("NICSPEC_JPEG2000", "kakadu")
    with pytest.raises(UsageError, match="auto, ffmpeg or pillow"):
        reference_jpeg2000()


def test_missing_ffmpeg_is_one_line(no_ffmpeg, monkeypatch, capsys):
    with pytest.raises(UsageError) as exc:
        get_codec("jpeg2000-ffmpeg", bpp=0.5)
    msg = str(exc.value)
    assert "ffmpeg not found" in msg and "apt-get install ffmpeg" in msg and "\n" not in msg
    why = ffmpeg_unavailable()
    assert why is not None and "ffmpeg not found" in why and "\n" not in why
    monkeypatch.delenv("NICSPEC_JPEG2000", raising=False)
    assert reference_jpeg2000() == "jpeg2000"  # falls back to Pillow's path
    monkeypatch.setenv("NICSPEC_JPEG2000", "ffmpeg")
    with pytest.raises(UsageError, match="ffmpeg not found"):
        reference_jpeg2000()
    code = cli_main(["eval", "--codec", "jpeg2000-ffmpeg", "--bpp", "0.5", "--dataset", "kodak"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("nicspec: error: jpeg2000-ffmpeg: ffmpeg")


def test_ffmpeg_without_libopenjpeg_is_one_line(no_ffmpeg, tmp_path):
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        '#!/bin/sh\nif [ "$2" = -version ]; then echo "ffmpeg version 9.9-fake"; fi\nexit 0\n'
    )
    fake.chmod(0o755)
    assert os.access(fake, os.X_OK)
    with pytest.raises(UsageError, match="has no libopenjpeg encoder") as exc:
        get_codec("jpeg2000-ffmpeg")
    assert "\n" not in str(exc.value) and "9.9-fake" in str(exc.value)


@needs_ffmpeg
@pytest.mark.slow
def test_ffmpeg_path_reproduces_the_published_curve():
    """Kodak: within 0.1 dB of CompressAI's JPEG2000 (measured 0.00 / -0.01 / 0.00)."""
    from nicspec_utils.nic.reference import published_curve

    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(KODIM.parent.glob("*.png"))]
    assert len(images) == 24
    for bpp in (0.25, 0.5, 1.0):
        codec = get_codec("jpeg2000-ffmpeg", bpp=bpp)
        rs = [codec.compress(im) for im in images]
        mean_bpp = float(np.mean([r.bpp for r in rs]))
        mean_psnr = float(
            np.mean([psnr(im, r.reconstruction) for im, r in zip(images, rs, strict=True)])
        )
        assert mean_bpp == pytest.approx(bpp, rel=BPP_TOL)
        assert mean_psnr == pytest.approx(published_curve("jpeg2000").at(mean_bpp), abs=0.1)


@needs_ffmpeg
def test_ffmpeg_path_matches_a_psnr_with_even_ratios(kodim, monkeypatch):
    """PSNR matching on the paper's path: the nearest even ratio, each ratio coded once, within
    the path's tolerance; the targets (not a ratio) enter the configuration."""
    from nicspec_utils.codecs import jpeg2000_psnr_tol, ratematch

    crop = np.ascontiguousarray(kodim[:256, :256])
    coded: list[int] = []
    real = jf.Jpeg2000FfmpegCodec._compress

    def counting(self, image):
        coded.append(int(self.setting))
        return real(self, image)

    monkeypatch.setattr(jf.Jpeg2000FfmpegCodec, "_compress", counting)
    target = psnr(crop, get_codec("jpeg2000-ffmpeg", bpp=0.6).compress(crop).reconstruction) + 0.1
    coded.clear()
    codec = get_codec("jpeg2000-ffmpeg", target_psnr=[("crop", target)])
    r = codec.compress(crop)
    assert r.bitstream.startswith(jf.JP2_MAGIC) and r.setting % 2 == 0
    assert abs(ratematch._psnr_8bit(r.reconstruction, crop) - target) <= jf.PSNR_TOL
    assert len(coded) == len(set(coded)) and len(coded) <= 8  # each even ratio once, few
    cfg = codec.config()
    assert "quality" not in cfg and cfg["target_psnr"] == [["crop", round(target, 6)]]
    assert cfg["psnr_tol"] == jf.PSNR_TOL == jpeg2000_psnr_tol("jpeg2000-ffmpeg")
    assert jpeg2000_psnr_tol("jpeg2000") == ratematch.PSNR_TOL
    assert codec.at(48).psnr_targets is None  # a ratio drops the targets
    with pytest.raises(UsageError, match="psnr_tol needs target_psnr"):
        get_codec("jpeg2000-ffmpeg", psnr_tol=0.1)


def test_chapters_jpeg2000_parameter_and_note(monkeypatch):
    """A chapter's ``jpeg2000_codec``: empty is the reference, pillow / ffmpeg name a path;
    the page's note says which path ran and why."""
    from nicspec_utils.codecs import jpeg2000_note, jpeg2000_path

    monkeypatch.delenv("NICSPEC_JPEG2000", raising=False)
    assert jpeg2000_path("") == reference_jpeg2000()
    assert jpeg2000_path("pillow") == jpeg2000_path("jpeg2000") == "jpeg2000"
    with pytest.raises(UsageError, match="jpeg2000_codec must be"):
        jpeg2000_path("kakadu")
    note = jpeg2000_note("jpeg2000")
    assert "Pillow's OpenJPEG" in note and "9/7" in note and "\n" not in note
    if WHY is None:
        assert jpeg2000_path("ffmpeg") == "jpeg2000-ffmpeg"
        note = jpeg2000_note("jpeg2000-ffmpeg")
        assert "the paper's path" in note and "ffmpeg with libopenjpeg is installed" in note
        monkeypatch.setenv("NICSPEC_JPEG2000", "pillow")
        assert "`NICSPEC_JPEG2000=pillow` chose it" in jpeg2000_note(jpeg2000_path(""))
    with pytest.raises(UsageError, match="not a JPEG2000 path"):
        jpeg2000_note("jpeg")


def test_chapters_run_without_ffmpeg(no_ffmpeg, monkeypatch):
    from nicspec_utils.codecs import jpeg2000_note, jpeg2000_path

    monkeypatch.delenv("NICSPEC_JPEG2000", raising=False)
    assert jpeg2000_path("") == "jpeg2000"
    assert "the paper's path cannot run here (jpeg2000-ffmpeg: ffmpeg not found" in (
        jpeg2000_note("jpeg2000")
    )
    with pytest.raises(UsageError, match="ffmpeg not found"):
        jpeg2000_path("ffmpeg")


# --- batches: one encode and one decode process, bit-identical to image by image (#14) ---------


def _crops(kodim: np.ndarray) -> list[np.ndarray]:
    """Five inputs of two shapes: three 256x256 crops and two 200x320 ones."""
    squares = [kodim[y : y + 256, x : x + 256] for y, x in ((0, 0), (256, 0), (0, 256))]
    wides = [kodim[:200, 100:420], kodim[300:500, :320]]
    return [
        np.ascontiguousarray(c) for c in (squares[0], wides[0], squares[1], wides[1], squares[2])
    ]


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.bitstream == y.bitstream and x.bits == y.bits and x.setting == y.setting
        assert x.reconstruction.dtype == y.reconstruction.dtype == np.float32
        assert np.array_equal(x.reconstruction, y.reconstruction)


@pytest.fixture
def count_runs(monkeypatch):
    """The ffmpeg processes the codec starts (each command's output file names)."""
    calls: list[list[str]] = []
    real = jf._run

    def counting(cmd, timeout, cwd=None):
        calls.append(cmd)
        return real(cmd, timeout, cwd)

    monkeypatch.setattr(jf, "_run", counting)
    return calls


@needs_ffmpeg
@pytest.mark.parametrize(
    "options",
    [{}, {"format": "j2k", "irreversible": True, "pix_fmt": "rgb24"}],
    ids=["paper", "j2k-97-rgb"],
)
def test_batch_is_bit_identical_and_two_processes(kodim, options, count_runs):
    """compress_batch (one setting) and compress_each (a setting per image) write the same
    files and reconstructions as compress one by one, in one encode and one decode process."""
    from nicspec_utils.codecs.base import compress_each

    images = _crops(kodim)
    codec = get_codec("jpeg2000-ffmpeg", bpp=0.5, **options)
    one_by_one = [codec.compress(im) for im in images]
    count_runs.clear()
    batch = codec.compress_batch(images)
    assert len(count_runs) == 2  # one encode (two sequences: two shapes), one decode
    assert sum(a == "-i" for a in count_runs[0]) == 2
    _same(one_by_one, batch)
    assert batch[0].bitstream.startswith(jf.J2K_MAGIC if options else jf.JP2_MAGIC)
    assert np.array_equal(codec.decode(batch[1].bitstream), batch[1].reconstruction)

    coders = [codec.at(ratio) for ratio in (24, 48, 48, 96, 30)]
    one_by_one = [c.compress(im) for c, im in zip(coders, images, strict=True)]
    count_runs.clear()
    _same(one_by_one, compress_each(coders, images))
    assert len(count_runs) == 2
    assert [r.setting for r in one_by_one] == [24, 48, 48, 96, 30]
    assert codec.compress_batch([]) == []


@needs_ffmpeg
def test_psnr_matching_in_a_batch_is_bit_identical(kodim, count_runs):
    """With PSNR targets the batch runs the images' ratio searches in lockstep: the same ratios,
    files and reconstructions as image by image, two processes per round of the search."""
    from nicspec_utils.codecs import ratematch

    images = _crops(kodim)[:3]
    ref = get_codec("jpeg2000-ffmpeg", bpp=0.75)
    targets = [(f"i{k}", psnr(im, ref.compress(im).reconstruction) - 0.4 * k) for k, im in
               enumerate(images)]  # fmt: skip
    count_runs.clear()
    codec = get_codec("jpeg2000-ffmpeg", target_psnr=targets)
    single = [codec.compress(im) for im in images]  # the targets in order, one image at a time
    per_image_runs = len(count_runs)
    count_runs.clear()
    batch = get_codec("jpeg2000-ffmpeg", target_psnr=targets).compress_batch(images)
    _same(single, batch)
    assert len(count_runs) % 2 == 0 and len(count_runs) < per_image_runs
    assert all(abs(ratematch._psnr_8bit(r.reconstruction, im) - t) <= jf.PSNR_TOL
               for r, im, (_, t) in zip(batch, images, targets, strict=True))  # fmt: skip
    with pytest.raises(UsageError, match="more images than PSNR targets"):
        get_codec("jpeg2000-ffmpeg", target_psnr=targets[:2]).compress_batch(images)


@needs_ffmpeg
def test_batch_bad_input_is_one_line_and_leaves_nothing(kodim, tmp_path, monkeypatch, count_runs):
    """A bad image fails before any process starts; a failing ffmpeg gives a one-line DataError
    and no files are left behind."""
    from nicspec_utils.errors import DataError

    monkeypatch.setattr(jf.tempfile, "tempdir", str(tmp_path))
    codec = get_codec("jpeg2000-ffmpeg", bpp=0.5)
    good = _crops(kodim)[0]
    count_runs.clear()
    with pytest.raises(UsageError, match="HxWx3 uint8"):
        codec.compress_batch([good, good[:, :, 0]])
    with pytest.raises(DataError, match="at least 32 px"):
        codec.compress_batch([good, good[:16, :16]])
    assert count_runs == []
    broken = tmp_path / "bin" / "ffmpeg"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'Invalid data found\nwhen processing input' >&2\nexit 1\n")
    broken.chmod(0o755)
    codec.exe = str(broken)
    with pytest.raises(DataError, match=r"ffmpeg encode failed \(exit 1\)") as exc:
        codec.compress_batch([good, good])
    assert "\n" not in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # the temp folder is gone
    with pytest.raises(UsageError, match="3 codecs for 2 images"):
        jf.Jpeg2000FfmpegCodec.compress_pairs([codec] * 3, [good, good])
