"""evaluate / nicspec eval: metrics JSON + spectra NPZ, caching, atomicity, CLI errors."""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nicspec_utils.engines.evaluate as ev
from nicspec_utils.cache import cached_json, config_key, json_safe, results_dir
from nicspec_utils.cli import main
from nicspec_utils.errors import DataError, UsageError
from nicspec_utils.store import load_maps

IDS = ["kodim01", "kodim02"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Any:
    """MS-SSIM's small convolutions crawl with several threads on a busy machine: use one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class FakeResult:
    bitstream: bytes
    reconstruction: np.ndarray
    bits: float

    @property
    def bpp(self) -> float:
        h, w = self.reconstruction.shape[:2]
        return self.bits / (h * w)


class FakeCodec:
    """Posterises to 16 levels; 4 bits per pixel. Optionally fails on the n-th image."""

    name = "fake"
    version = "1"

    def __init__(self, fail_at: int | None = None, levels: int = 16) -> None:
        self.fail_at = fail_at
        self.levels = levels
        self.calls = 0

    def config(self) -> dict[str, Any]:
        return {"codec": self.name, "version": self.version, "levels": self.levels}

    def compress(self, image: np.ndarray) -> FakeResult:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise DataError("fake codec failed")
        step = 256 // self.levels
        rec = (image // step * step + step // 2).astype(np.float32) / np.float32(255)
        return FakeResult(b"", rec, 4.0 * image.shape[0] * image.shape[1])


class IdentityCodec(FakeCodec):
    name = "identity"

    def compress(self, image: np.ndarray) -> FakeResult:
        self.calls += 1
        return FakeResult(image.tobytes(), image.astype(np.float32) / np.float32(255), 24.0)


@pytest.fixture
def small_dataset(tmp_path: Path) -> str:
    """Two 192x256 crops of Kodak images as a folder dataset (fast)."""
    from nicspec_utils.data import get_dataset
    from nicspec_utils.io import write_png_atomic

    kodak = get_dataset("kodak")
    folder = tmp_path / "imgs"
    for i in IDS:
        write_png_atomic(folder / f"{i}.png", kodak.load(i)[100:292, 200:456])
    return f"folder:{folder}"


class _Maps(dict):
    """A loaded map file, read like ``np.load``'s NpzFile (``z.files``, ``z[name]``)."""

    @property
    def files(self) -> list[str]:
        return list(self)


@contextlib.contextmanager
def _maps(path: Path) -> Any:
    yield _Maps(load_maps(path))


def _run(codec: Any, dataset: str, out: Path, **kw: Any) -> tuple[Path, dict, bool]:
    return ev.run_with_codec(codec, dataset, out=out, progress=False, **kw)


def test_clean_run_writes_metrics_and_spectra(small_dataset: str, tmp_path: Path) -> None:
    codec = FakeCodec()
    path, metrics, cached = _run(codec, small_dataset, tmp_path / "res")
    assert not cached and path.name == "metrics.json"
    assert path.parent.name == metrics["key"] == config_key(metrics["config"])
    stored = json.loads(path.read_text())
    assert stored == metrics
    assert stored["n_images"] == 2 and [r["id"] for r in stored["per_image"]] == IDS
    assert stored["bpp"] == pytest.approx(4.0)
    assert 20 < stored["psnr"] < 40 and 0.5 < stored["ms_ssim"] < 1
    assert stored["psnr"] == pytest.approx(np.mean([r["psnr"] for r in stored["per_image"]]))
    assert stored["psnr_wrt_clean"] is None and stored["corruption"] is None
    assert stored["codec"] == "fake" and stored["codec_version"] == "1"
    assert stored["config"]["codec"]["levels"] == 16 and stored["config"]["image_ids"] == IDS
    assert stored["nicspec"] and stored["wall_time_s"] > 0
    assert sum(stored["band_energies"]["D"].values()) == pytest.approx(1.0)
    with _maps(path.parent / "spectra.npz") as z:
        assert {"D", "D_rounded", "radial_D", "radius", "n_images"} <= set(z.files)
        assert z["D"].shape == (192, 256) and z["radial_D"].shape == z["radius"].shape
        assert int(z["n_images"]) == 2 and z["D"].max() > 0
    assert not list(path.parent.glob(".*tmp"))


def test_rerun_is_a_cache_hit(
    small_dataset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codec = FakeCodec()
    path, _, _ = _run(codec, small_dataset, tmp_path)
    calls, mtime = codec.calls, path.stat().st_mtime_ns
    path2, metrics, cached = ev.run_with_codec(codec, small_dataset, out=tmp_path, progress=True)
    assert cached and path2 == path and codec.calls == calls
    assert path.stat().st_mtime_ns == mtime and metrics["n_images"] == 2
    assert "cached" in capsys.readouterr().err
    # another configuration is another folder
    path3, _, cached3 = _run(FakeCodec(levels=8), small_dataset, tmp_path)
    assert not cached3 and path3.parent != path.parent


def test_failure_midway_leaves_nothing(small_dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "res"
    with pytest.raises(DataError, match="fake codec failed"):
        _run(FakeCodec(fail_at=2), small_dataset, out, batch_size=1)
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert written == []


def test_corrupted_run_gives_g_r_c(small_dataset: str, tmp_path: Path) -> None:
    pytest.importorskip("imagecorruptions")
    path, metrics, _ = _run(
        IdentityCodec(), small_dataset, tmp_path, corruption="gaussian_noise", severity=3
    )
    assert metrics["corruption"] == "gaussian_noise" and metrics["severity"] == 3
    assert metrics["psnr"] is None and metrics["n_lossless"] == 2  # identity reproduces its input
    assert 10 < metrics["psnr_wrt_clean"] < 30
    assert metrics["config"]["corruption"]["seed"] == 0
    with _maps(path.parent / "spectra.npz") as z:
        assert {"G", "R", "C", "radial_G", "radial_R", "radial_C"} <= set(z.files)
        assert "D" not in z.files
        assert np.all(z["G"] == 0)  # reconstruction == corrupted input
        np.testing.assert_array_equal(z["R"], z["C"])
    assert metrics["band_energies"]["C"]["high"] > 0.5  # white noise: mostly high frequency
    # a different seed is a different configuration
    path2, _, cached = _run(
        IdentityCodec(), small_dataset, tmp_path, corruption="gaussian_noise", severity=3, seed=1
    )
    assert not cached and path2 != path


@pytest.mark.parametrize(
    "corruption, severity, match",
    [("fog", None, "--severity"), (None, 2, "--corruption"), ("fog", 9, "range"),
     ("nope", 1, "unknown corruption")],
)  # fmt: skip
def test_bad_corruption_arguments(
    small_dataset: str, tmp_path: Path, corruption: str | None, severity: int | None, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        _run(FakeCodec(), small_dataset, tmp_path, corruption=corruption, severity=severity)


def test_summary_line() -> None:
    m = {"codec": "jpeg2000", "dataset": "kodak", "n_images": 24, "bpp": 0.5012,
         "psnr": 29.1234, "ms_ssim": 0.95111, "corruption": None}  # fmt: skip
    assert ev.summary_line(m) == (
        "jpeg2000 on kodak (24 images): 0.501 bpp, 29.12 dB PSNR, MS-SSIM 0.951"
    )
    m.update(corruption="fog", severity=3, psnr=None, psnr_wrt_clean=21.0)
    assert ev.summary_line(m).endswith("inf dB PSNR, MS-SSIM 0.951; w.r.t. clean 21.00 dB PSNR")


# --- cache helpers -------------------------------------------------------------------------------


def test_config_key_is_stable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a = {"b": [1, 2, (3, 4)], "a": {"y": 1.5, "x": Path("p")}, "n": np.int64(3)}
    b = {"n": 3, "a": {"x": "p", "y": 1.5}, "b": [1, 2, [3, 4]]}
    assert config_key(a) == config_key(b) and len(config_key(a)) == 16
    assert config_key({"q": 50}) != config_key({"q": 51})
    with pytest.raises(UsageError):
        config_key({"x": math.nan})
    monkeypatch.setenv("NICSPEC_RESULTS", str(tmp_path / "r"))
    assert results_dir() == tmp_path / "r"
    monkeypatch.delenv("NICSPEC_RESULTS")
    monkeypatch.chdir(tmp_path)  # one rule: the checkout's results/, whatever the cwd
    assert results_dir() == Path(__file__).resolve().parent.parent / "results"
    assert json_safe({"a": math.inf, "b": np.float32(1.5), "c": (1, np.nan)}) == {
        "a": None, "b": 1.5, "c": [1, None]
    }  # fmt: skip


def test_cached_json(tmp_path: Path) -> None:
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"v": np.float64(2.0), "inf": math.inf}

    path = tmp_path / "sub" / "x.json"
    assert cached_json(path, compute) == {"v": 2.0, "inf": None}
    assert cached_json(path, compute) == {"v": 2.0, "inf": None} and len(calls) == 1
    path.write_text("{broken")
    with pytest.warns(UserWarning, match="unreadable"):
        assert cached_json(path, compute)["v"] == 2.0
    assert len(calls) == 2


# --- command line -------------------------------------------------------------------------------


def _codecs_available() -> bool:
    try:
        from nicspec_utils.codecs import get_codec  # noqa: F401
    except ImportError:
        return False
    return True


needs_codecs = pytest.mark.skipif(not _codecs_available(), reason="no codecs module yet")


@needs_codecs
def test_cli_none_codec_on_kodak(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "--codec", "none", "--dataset", "kodak", "--images", ",".join(IDS),
            "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    path = Path(lines[0])
    assert lines[1] == "none on kodak (2 images): 24.000 bpp, inf dB PSNR, MS-SSIM 1.000"
    m = json.loads(path.read_text())
    assert m["psnr"] is None and m["n_lossless"] == 2 and m["ms_ssim"] == pytest.approx(1.0)
    assert all(r["psnr"] is None for r in m["per_image"])
    with _maps(path.parent / "spectra.npz") as z:
        assert z["D"].shape == (512, 768) and np.all(z["D"] == 0) and np.all(z["D_rounded"] == 0)
    # rerun: cache hit
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == str(path) and out[1].endswith("(cached)")


@needs_codecs
def test_cli_jpeg_corrupted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("imagecorruptions")
    args = ["eval", "--codec", "jpeg", "--quality", "50", "--dataset", "kodak", "--images",
            "kodim01", "--corruption", "fog", "--severity", "2", "--out", str(tmp_path),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    m = json.loads(Path(lines[0]).read_text())
    assert m["codec"] == "jpeg" and m["config"]["codec"]["quality"] == 50
    assert 0.3 < m["bpp"] < 3 and 25 < m["psnr"] < 45 and m["psnr_wrt_clean"] < m["psnr"]
    assert lines[1].startswith("jpeg on kodak + fog-2 (1 image): ")


def test_cli_with_a_fake_codec(
    monkeypatch: pytest.MonkeyPatch, small_dataset: str, tmp_path: Path, capsys: Any
) -> None:
    seen: dict[str, Any] = {}

    def fake_get_codec(name: str, quality: Any = None, bpp: Any = None, **options: Any) -> Any:
        seen.update(name=name, quality=quality, bpp=bpp, options=options)
        return FakeCodec()

    monkeypatch.setattr(ev, "get_codec", fake_get_codec)
    args = ["eval", "--codec", "fake", "--quality", "7", "--dataset", small_dataset, "--limit",
            "1", "--option", "pad=zero", "--option", "n=3", "--lmbda", "0.01", "--estimate",
            "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    options = {"pad": "zero", "n": 3, "lmbda": 0.01, "estimate": True}
    assert seen == {"name": "fake", "quality": 7, "bpp": None, "options": options}
    assert "(1 image)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra",
    [["--corruption", "fog"], ["--severity", "3"], ["--corruption", "fog", "--severity", "6"],
     ["--corruption", "nope", "--severity", "1"], ["--quality", "5", "--bpp", "0.5"],
     ["--limit", "0"], ["--option", "novalue"]],
)  # fmt: skip
def test_cli_bad_arguments_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: list[str], capsys: Any
) -> None:
    monkeypatch.setattr(ev, "get_codec", lambda *a, **k: FakeCodec())
    args = ["eval", "--codec", "fake", "--dataset", "kodak", "--out", str(tmp_path), *extra]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "error" in err[-1]
    assert not list(tmp_path.rglob("metrics.json"))


@needs_codecs
def test_cli_unknown_codec_exit_2(tmp_path: Path, capsys: Any) -> None:
    args = ["eval", "--codec", "nope", "--dataset", "kodak", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "unknown codec" in capsys.readouterr().err


def test_small_images_store_null_ms_ssim(tmp_path: Path, capsys: Any) -> None:
    from nicspec_utils.io import write_png_atomic

    rng = np.random.default_rng(0)
    for i in range(2):
        write_png_atomic(
            tmp_path / "small" / f"s{i}.png", rng.integers(0, 256, (64, 96, 3), np.uint8)
        )
    with pytest.warns(UserWarning, match="MS-SSIM"):
        path, metrics, _ = ev.run_with_codec(
            FakeCodec(), f"folder:{tmp_path / 'small'}", out=tmp_path / "r", progress=True
        )
    assert metrics["ms_ssim"] is None and metrics["psnr"] > 10
    assert "MS-SSIM n/a" in ev.summary_line(metrics)


def test_mixed_sizes_fail_cleanly(tmp_path: Path) -> None:
    from nicspec_utils.io import write_png_atomic

    rng = np.random.default_rng(0)
    for i, shape in enumerate([(64, 96, 3), (96, 64, 3)]):
        write_png_atomic(tmp_path / "mixed" / f"m{i}.png", rng.integers(0, 256, shape, np.uint8))
    out = tmp_path / "r"
    # portrait and landscape photos are oriented as Kodak is, so they share one size (#15)
    _, metrics, _ = ev.run_with_codec(
        FakeCodec(), f"folder:{tmp_path / 'mixed'}", out=out, progress=False
    )
    assert metrics["n_images"] == 2
    # a labelled folder keeps its sizes: mixed ones fail before any work, writing nothing
    (tmp_path / "mixed" / "labels.csv").write_text("file,label\nm0.png,1\nm1.png,2\n")
    out = tmp_path / "r2"
    with pytest.raises(DataError, match="differ in size"):
        ev.run_with_codec(FakeCodec(), f"folder:{tmp_path / 'mixed'}", out=out, progress=False)
    assert not out.exists() or not list(out.rglob("*.*"))


def test_per_image_bands_timing_and_float32_npz(
    small_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each record has its maps' band shares, energies and codec time; MS-SSIM runs once per
    image (both references together); the NPZ holds float32 maps, uncompressed."""
    import zipfile

    import nicspec_utils.metrics as metrics_module
    from nicspec_utils.data import get_dataset
    from nicspec_utils.spectral import band_energies, error_spectrum, zero_dc

    pytest.importorskip("imagecorruptions")
    calls: list[int] = []
    real = metrics_module.ms_ssim_many

    def counting(x: np.ndarray, refs: Any, eight_bit: bool = True) -> list[float]:
        calls.append(len(refs))
        return real(x, refs, eight_bit)

    monkeypatch.setattr(metrics_module, "ms_ssim_many", counting)
    path, metrics, _ = _run(FakeCodec(), small_dataset, tmp_path, batch_size=1)
    assert calls == [1, 1]
    path_c, metrics_c, _ = _run(
        FakeCodec(), small_dataset, tmp_path, corruption="gaussian_noise", severity=3
    )
    assert calls == [1, 1, 2, 2]
    for m, maps in ((metrics, ["D"]), (metrics_c, ["G", "R", "C"])):
        names = sorted(n + s for n in maps for s in ("", "_rounded"))
        for r in m["per_image"]:
            assert sorted(r["bands"]) == names and r["codec_time_s"] >= 0
            for shares in r["bands"].values():
                assert set(shares) == {"low", "medium", "high"}
                total = sum(shares.values())  # 0 for an error-free map (e.g. a rounded one)
                assert total == pytest.approx(1.0) or total == 0.0
        assert sum(r["codec_time_s"] for r in m["per_image"]) == pytest.approx(m["codec_time_s"])
        assert (m["per_image"][0]["ms_ssim_wrt_clean"] is None) == (maps == ["D"])
    assert all(r["ms_ssim_wrt_clean"] < r["ms_ssim"] < 1 for r in metrics_c["per_image"])
    # the per-image shares are those of the float64 protocol's maps
    ds = get_dataset(small_dataset)
    clean = ds.load(IDS[0])
    rec = FakeCodec().compress(clean).reconstruction
    for name, rounded in (("D", False), ("D_rounded", True)):
        want = band_energies(error_spectrum(rec, clean, ds.normalisation, rounded))
        got = metrics["per_image"][0]["bands"][name]
        assert got == pytest.approx(want, abs=1e-6)
    # per-image energies: the total and band sums of |F|**2 without DC, float64 protocol's map
    for m in (metrics, metrics_c):
        for r in m["per_image"]:
            assert sorted(r["energy"]) == sorted(r["bands"])
            for name, e in r["energy"].items():
                assert set(e) == {"total", "low", "medium", "high"}
                assert e["low"] + e["medium"] + e["high"] == pytest.approx(e["total"])
                if e["total"]:
                    assert e["high"] / e["total"] == pytest.approx(r["bands"][name]["high"])
    spec = zero_dc(error_spectrum(rec, clean, ds.normalisation))
    e = metrics["per_image"][0]["energy"]["D"]
    assert e["total"] == pytest.approx(float((spec**2).sum()), rel=1e-5)
    assert e["total"] > 0 and metrics_c["per_image"][0]["energy"]["R"]["total"] > 0
    with _maps(path_c.parent / "spectra.npz") as z:
        assert all(z[n].dtype == np.float32 for n in ("G", "R", "C"))
        # no figure draws the rounded G, R, C: their energies are in the records, not their maps
        assert not ev.UNSTORED_MAPS & set(z.files) and "radial_C_rounded" in z.files
    with zipfile.ZipFile(path_c.parent / "spectra.npz") as zf:  # the store's map encoding
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    with np.load(path_c.parent / "spectra.npz") as raw:
        assert raw["G"].dtype == np.float16 and raw["G"].shape[1] < z["G"].shape[1]


def test_an_entry_without_maps_is_computed_again_when_maps_are_asked_for(
    small_dataset: str, tmp_path: Path
) -> None:
    codec = FakeCodec()
    path, bare, cached = ev.run_with_codec(
        codec, small_dataset, out=tmp_path, progress=False, maps=False
    )
    assert not cached and bare["spectra"] is None and bare["band_energies"] == {}
    assert not (path.parent / "spectra.npz").exists()
    assert all("bands" not in r and "energy" not in r for r in bare["per_image"])
    assert ev.load_point(path).spectra == {}
    # without maps again: served from the store
    _, again, cached = ev.run_with_codec(codec, small_dataset, out=tmp_path, maps=False)
    assert cached and codec.calls == 2
    # with maps: computed again in the same entry, the same numbers plus the maps
    path2, full, cached = ev.run_with_codec(codec, small_dataset, out=tmp_path, progress=False)
    assert not cached and path2 == path and codec.calls == 4
    assert full["psnr"] == bare["psnr"] and full["bpp"] == bare["bpp"]
    assert {"D", "D_rounded"} <= set(ev.load_point(path).spectra)
    # and an entry with maps serves a caller that needs none
    _, _, cached = ev.run_with_codec(codec, small_dataset, out=tmp_path, maps=False)
    assert cached and codec.calls == 4


def test_a_corrupted_input_is_computed_once_and_shared_by_every_codec(
    small_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("imagecorruptions")
    from nicspec_utils import corruptions

    calls: list[str] = []
    real = corruptions.corrupt

    def counting(image: np.ndarray, name: str, *args: Any, **kw: Any) -> np.ndarray:
        calls.append(name)
        return real(image, name, *args, **kw)

    monkeypatch.setattr(corruptions, "corrupt", counting)
    kw: dict[str, Any] = {"corruption": "gaussian_noise", "severity": 2}
    path, first, _ = _run(IdentityCodec(), small_dataset, tmp_path, **kw)
    assert len(calls) == 2  # each image corrupted once
    # the identity codec reproduces its input: its R is the corruption itself
    _, second, _ = _run(FakeCodec(), small_dataset, tmp_path, **kw)
    assert len(calls) == 2  # the second codec read the stored corrupted inputs
    sets = list((tmp_path / "corrupted").glob("*/manifest.json"))
    assert len(sets) == 1 and len(list(sets[0].parent.rglob("*.png"))) == 2
    # the stored inputs are the very images a direct corruption gives
    ds = ev.plan_entry(FakeCodec(), small_dataset).dataset
    for image_id in ds.image_ids:
        clean = ds.load(image_id)
        stored = corruptions.read_image(sets[0].parent / "gaussian_noise" / "2" / f"{image_id}.png")
        np.testing.assert_array_equal(stored, real(clean, "gaussian_noise", 2, seed=0))
    assert second["psnr_wrt_clean"] != first["psnr_wrt_clean"]
