"""nicspec_utils.io: atomic writes (mode, fsync, stale temporaries), pixel limit, --out checks."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicspec_utils import io as nio
from nicspec_utils.errors import DataError, UsageError


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims ``width`` x ``height`` (its pixel data is one row)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + bytes(3 * width))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- atomic writes -------------------------------------------------------------------------------
def test_atomic_write_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        nio._file_mode.cache_clear()
        nio.atomic_write_bytes(tmp_path / "a.bin", b"x")
        nio.atomic_write_json(tmp_path / "b.json", {"a": 1})
        nio.write_png_atomic(tmp_path / "c.png", np.zeros((32, 32, 3), np.uint8))
    finally:
        os.umask(old)
        nio._file_mode.cache_clear()
    for name in ("a.bin", "b.json", "c.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    assert not list(tmp_path.glob(".*.tmp"))


def test_atomic_write_fsyncs_file_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    nio.atomic_write_bytes(tmp_path / "a.bin", b"data")
    assert synced == ["file", "dir"]
    assert (tmp_path / "a.bin").read_bytes() == b"data"


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), nio.atomic_path(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".a.png.{_dead_pid()}.abcdefgh.tmp"  # its writer was killed
        alive = tmp_path / f".b.png.{live.pid}.abcdefgh.tmp"  # being written right now
        old = tmp_path / f".c.png.{live.pid}.ijklmnop.tmp"  # a live pid, but two hours old
        legacy = tmp_path / ".d.png.qrstuvwx.tmp"  # the naming before the pid, two hours old
        recent_legacy = tmp_path / ".e.png.yz012345.tmp"
        others = [tmp_path / ".notes.tmp", tmp_path / "x.tmp", tmp_path / "keep.png"]
        for path in (dead, alive, old, legacy, recent_legacy, *others):
            path.write_bytes(b"partial")
        two_hours_ago = time.time() - 7200
        for path in (old, legacy):
            os.utime(path, (two_hours_ago, two_hours_ago))
        removed = nio.remove_stale_temporaries(tmp_path)
        assert sorted(removed) == sorted([dead, old, legacy])
        assert all(p.exists() for p in (alive, recent_legacy, *others))
    finally:
        live.kill()
        live.wait()


def test_first_write_into_a_folder_sweeps_it(tmp_path: Path) -> None:
    stale = tmp_path / f".a.json.{_dead_pid()}.abcdefgh.tmp"
    stale.write_bytes(b"{")
    nio._swept.discard(str(tmp_path.resolve()))
    nio.atomic_write_json(tmp_path / "b.json", {})
    assert not stale.exists()


# --- the pixel limit -----------------------------------------------------------------------------
def test_huge_image_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    _png_header_only(path, 4000, 4000)  # 16 MP in a file of a few KB
    assert path.stat().st_size < 20_000
    with pytest.raises(DataError, match=r"4000x4000 \(16\.0 MP\).*NICSPEC_MAX_PIXELS"):
        nio.read_image(path)


def test_beyond_pillows_bomb_limit_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    _png_header_only(path, 20000, 20000)  # 400 MP: Pillow's own bomb check would raise
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=r"400\.0 MP, above the limit of 12\.0 MP; set NICSPEC"):
            nio.read_image(path)


def test_pixel_limit_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(path)
    monkeypatch.setenv(nio.MAX_PIXELS_ENV, "1999")
    with pytest.raises(DataError, match=r"50x40.*limit of 0\.0 MP"):
        nio.read_image(path)
    monkeypatch.setenv(nio.MAX_PIXELS_ENV, "2000")
    assert nio.read_image(path).shape == (40, 50, 3)
    monkeypatch.setenv(nio.MAX_PIXELS_ENV, "2e7")
    assert nio.max_pixels() == 20_000_000
    for bad in ("lots", "0", "-5"):
        monkeypatch.setenv(nio.MAX_PIXELS_ENV, bad)
        with pytest.raises(UsageError, match=nio.MAX_PIXELS_ENV):
            nio.read_image(path)


def test_raised_limit_is_honoured_beyond_pillows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((60, 60, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 3600 px: twice past Pillow's check
    monkeypatch.setenv(nio.MAX_PIXELS_ENV, "5000")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nio.read_image(path).shape == (60, 60, 3)
    assert Image.MAX_IMAGE_PIXELS == 5000


# --- output folders ------------------------------------------------------------------------------
def test_check_output_folder(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert nio.check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # it creates nothing
    with pytest.raises(DataError, match="is a file, not a folder"):
        nio.check_output_folder(a_file)
    with pytest.raises(DataError, match="inside .*a-file, which is a file"):
        nio.check_output_folder(a_file / "out")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataError, match="broken symbolic link"):
        nio.check_output_folder(tmp_path / "link" / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_output_folder_unwritable(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(DataError, match="not writable"):
            nio.check_output_folder(locked / "out")
    finally:
        locked.chmod(0o700)
