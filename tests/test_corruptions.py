"""Corruptions: the paper's table, spec parsing, determinism, shapes, set builds and the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest

from nicspec_utils import cli
from nicspec_utils import corruptions as C
from nicspec_utils.data import Dataset, get_dataset
from nicspec_utils.errors import DataError, UsageError
from nicspec_utils.io import read_image, sha256_file, write_png_atomic

PAPER_TABLE = {
    1: ("snow", "low"),
    2: ("frost", "low"),
    3: ("fog", "low"),
    4: ("brightness", "low"),
    5: ("contrast", "low"),
    6: ("motion_blur", "medium"),
    7: ("zoom_blur", "medium"),
    8: ("defocus_blur", "medium"),
    9: ("glass_blur", "medium"),
    10: ("elastic_transform", "medium"),
    11: ("jpeg_compression", "medium"),
    12: ("pixelate", "medium"),
    13: ("gaussian_noise", "high"),
    14: ("shot_noise", "high"),
    15: ("impulse_noise", "high"),
}
RANDOM_CORRUPTIONS = {
    "snow",
    "frost",
    "fog",
    "motion_blur",
    "glass_blur",
    "elastic_transform",
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
}


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(arr.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    """A 64x96 crop of Kodak image 1 (corruptions work down to 32 px a side)."""
    return np.ascontiguousarray(get_dataset("kodak").load("kodim01")[200:264, 300:396])


@pytest.fixture(scope="module")
def reference(small: np.ndarray) -> dict[str, str]:
    """Digest of every corruption at severity 3, computed once in this process."""
    return {name: _digest(C.corrupt(small, name, 3)) for name in C.corruption_names()}


@pytest.fixture()
def folder_dataset(tmp_path: Path) -> Dataset:
    """Two small images in a folder dataset (fast builds)."""
    kodak = get_dataset("kodak")
    folder = tmp_path / "clean"
    for image_id in ("kodim01", "kodim02"):
        write_png_atomic(folder / f"{image_id}.png", kodak.load(image_id)[100:164, 200:296])
    return get_dataset(f"folder:{folder}")


# ---- table and parsing -----------------------------------------------------------------------


def test_table_matches_paper() -> None:
    assert {c.number: (c.name, c.group) for c in C.CORRUPTIONS} == PAPER_TABLE
    assert [c.number for c in C.CORRUPTIONS] == list(range(1, 16))
    assert C.corruption_names() == [PAPER_TABLE[i][0] for i in range(1, 16)]
    assert C.GROUPS == ("low", "medium", "high")
    assert C.get_corruption("gaussian-noise").number == 13
    assert C.get_corruption(9).name == "glass_blur"
    assert C.get_corruption("12").name == "pixelate"
    with pytest.raises(UsageError, match="unknown corruption 'speckle_noise'"):
        C.get_corruption("speckle_noise")
    with pytest.raises(AttributeError):
        C.CORRUPTIONS[0].name = "x"  # type: ignore[misc]


def test_parse_corruptions() -> None:
    assert C.parse_corruptions("all") == C.corruption_names()
    assert C.parse_corruptions("low") == ["snow", "frost", "fog", "brightness", "contrast"]
    assert len(C.parse_corruptions("medium")) == 7
    assert C.parse_corruptions("high") == ["gaussian_noise", "shot_noise", "impulse_noise"]
    assert C.parse_corruptions("13, pixelate,13,Snow") == ["gaussian_noise", "pixelate", "snow"]
    for bad in ("nope", "16", "0", "", " , "):
        with pytest.raises(UsageError) as err:
            C.parse_corruptions(bad)
        assert "\n" not in str(err.value)
        assert "gaussian_noise" in str(err.value)


def test_parse_severities() -> None:
    assert C.parse_severities("3") == [3]
    assert C.parse_severities("1-5") == [1, 2, 3, 4, 5]
    assert C.parse_severities("1,3,5") == [1, 3, 5]
    assert C.parse_severities("5, 1-2") == [1, 2, 5]
    assert C.parse_severities(4) == [4]
    for bad in ("6", "0", "-1", "1-6", "5-1", "x", "", "2.5"):
        with pytest.raises(UsageError, match="1..5|1-5") as err:
            C.parse_severities(bad)
        assert "\n" not in str(err.value)


# ---- determinism -----------------------------------------------------------------------------


def test_deterministic_in_process(small: np.ndarray, reference: dict[str, str]) -> None:
    """Same bytes again, whatever the global generators held before; their state is restored."""
    import random

    for i, name in enumerate(C.corruption_names()):
        np.random.seed(1000 + i)
        random.seed(i)
        probe = np.random.get_state()[1].copy()
        assert _digest(C.corrupt(small, name, 3)) == reference[name], name
        assert (np.random.get_state()[1] == probe).all(), f"{name} left numpy's state changed"


def test_deterministic_in_fresh_process(small: np.ndarray, reference: dict[str, str]) -> None:
    names = C.corruption_names()
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        outputs = list(pool.map(C.corrupt, [small] * len(names), names, [3] * len(names)))
    assert {n: _digest(o) for n, o in zip(names, outputs, strict=True)} == reference


def test_seed_and_key_change_random_corruptions(
    small: np.ndarray, reference: dict[str, str]
) -> None:
    for name in C.corruption_names():
        other = _digest(C.corrupt(small, name, 3, seed=1))
        assert (other != reference[name]) == (name in RANDOM_CORRUPTIONS), name
    a = C.corrupt(small, "gaussian_noise", 2, image_key="a")
    assert np.array_equal(a, C.corrupt(small, "gaussian_noise", 2, image_key="a"))
    assert not np.array_equal(a, C.corrupt(small, "gaussian_noise", 2, image_key="b"))
    # Without a key the content decides: a changed image gets different noise.
    changed = small.copy()
    changed[0, 0, 0] ^= 1
    noise = C.corrupt(small, "gaussian_noise", 2).astype(int) - small
    noise2 = C.corrupt(changed, "gaussian_noise", 2).astype(int) - changed
    assert not np.array_equal(noise, noise2)


def test_corrupt_rejects_bad_input(small: np.ndarray) -> None:
    with pytest.raises(UsageError):
        C.corrupt(small, "gaussian_noise", 6)
    with pytest.raises(UsageError):
        C.corrupt(small, "nope", 1)
    with pytest.raises(DataError):
        C.corrupt(small.astype(np.float32), "gaussian_noise", 1)
    with pytest.raises(DataError):
        C.corrupt(small[:20], "gaussian_noise", 1)


# ---- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(45, 70), (70, 45)])
def test_shape_and_dtype_preserved(small: np.ndarray, shape: tuple[int, int]) -> None:
    img = np.ascontiguousarray(np.resize(small, (*shape, 3)))
    for name in C.corruption_names():
        out = C.corrupt(img, name, 5)
        assert out.shape == img.shape and out.dtype == np.uint8, name


def test_library_result_fitted(small: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """Float, too-large or too-small library results become uint8 of the input's shape."""
    import imagecorruptions

    h, w = small.shape[:2]
    monkeypatch.setattr(
        imagecorruptions, "corrupt", lambda *a, **k: np.full((h + 3, w + 5, 3), 300.4)
    )
    out = C.corrupt(small, "contrast", 1)
    assert out.shape == small.shape and out.dtype == np.uint8 and (out == 255).all()
    monkeypatch.setattr(
        imagecorruptions, "corrupt", lambda *a, **k: np.full((h - 2, w - 1, 3), 12.6)
    )
    out = C.corrupt(small, "contrast", 1)
    assert out.shape == small.shape and (out == 13).all()


# ---- corrupted sets --------------------------------------------------------------------------


def test_build_layout_manifest_rerun_repair(folder_dataset: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "set-C"
    names, sevs = ["gaussian_noise", "pixelate"], [1, 2]
    stats = C.build_corrupted_set_stats(folder_dataset, names, sevs, out, progress=False)
    assert (stats.written, stats.skipped) == (8, 0)
    assert stats.manifest == out / "manifest.json"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    expected = sorted(
        f"{n}/{s}/{i}.png" for n in names for s in sevs for i in ("kodim01", "kodim02")
    )
    assert files == expected
    manifest = json.loads(stats.manifest.read_text())
    assert manifest["config"]["dataset"] == folder_dataset.name
    assert manifest["config"]["seed"] == 0
    assert "imagecorruptions" in manifest["config"]["imagecorruptions"]
    assert manifest["files"] == {f: sha256_file(out / f) for f in expected}
    assert set(manifest["sources"]) == {"kodim01", "kodim02"}
    clean = folder_dataset.load("kodim02")
    assert np.array_equal(
        read_image(out / "gaussian_noise/2/kodim02.png"), C.corrupt(clean, "gaussian_noise", 2)
    )
    before = {f: (out / f).read_bytes() for f in expected}

    again = C.build_corrupted_set_stats(folder_dataset, names, sevs, out, progress=False)
    assert (again.written, again.skipped) == (0, 8)

    truncated = out / "gaussian_noise/1/kodim01.png"
    truncated.write_bytes(truncated.read_bytes()[:100])
    (out / "pixelate/2/kodim02.png").unlink()
    repaired = C.build_corrupted_set_stats(folder_dataset, names, sevs, out, progress=False)
    assert (repaired.written, repaired.skipped) == (2, 6)
    assert {f: (out / f).read_bytes() for f in expected} == before

    # A second call with other corruptions merges into the manifest.
    C.build_corrupted_set(folder_dataset, ["contrast"], [5], out, ["kodim01"], progress=False)
    merged = json.loads((out / "manifest.json").read_text())["files"]
    assert set(merged) == set(expected) | {"contrast/5/kodim01.png"}

    with pytest.raises(UsageError, match="seed=0"):
        C.build_corrupted_set(folder_dataset, names, sevs, out, seed=1, progress=False)


def test_build_parallel_matches_serial(folder_dataset: Dataset, tmp_path: Path) -> None:
    names, sevs = ["shot_noise", "motion_blur"], [3]
    serial = C.build_corrupted_set(folder_dataset, names, sevs, tmp_path / "a", progress=False)
    parallel = C.build_corrupted_set(
        folder_dataset, names, sevs, tmp_path / "b", jobs=2, progress=False
    )
    assert json.loads(serial.read_text())["files"] == json.loads(parallel.read_text())["files"]


def test_load_or_corrupt(
    folder_dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = C.load_or_corrupt(folder_dataset, "kodim01", "snow", 2)
    assert np.array_equal(computed, C.corrupt(folder_dataset.load("kodim01"), "snow", 2))

    cache = tmp_path / "cache"
    assert np.array_equal(
        C.load_or_corrupt(folder_dataset, "kodim01", "snow", 2, 0, cache), computed
    )
    assert (cache / "snow/2/kodim01.png").is_file()
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["files"] == {"snow/2/kodim01.png": sha256_file(cache / "snow/2/kodim01.png")}

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("should have been read from the set")

    monkeypatch.setattr(C, "corrupt", fail)
    assert np.array_equal(
        C.load_or_corrupt(folder_dataset, "kodim01", "snow", 2, 0, cache), computed
    )
    with pytest.raises(UsageError):
        C.load_or_corrupt(folder_dataset, "kodim01", "snow", 2, seed=3, cache_dir=cache)


# ---- command line ----------------------------------------------------------------------------


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kodak-c"
    argv = ["corrupt", "--dataset", "kodak", "--images", "kodim01", "--out", str(out)]
    argv += ["--corruptions", "pixelate,5", "--severities", "1", "--jobs", "1", "--no-progress"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert str(out / "manifest.json") in printed and "2 files written, 0 skipped" in printed
    img = read_image(out / "contrast/1/kodim01.png")
    assert img.shape == (512, 768, 3)
    assert cli.main(argv) == 0
    assert "0 files written, 2 skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra",
    [["--corruptions", "nope"], ["--severities", "6"], ["--severities", "1-6"], ["--jobs", "0"]],
)
def test_cli_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    argv = ["corrupt", "--dataset", "kodak", "--out", str(tmp_path / "x"), "--no-progress", *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("nicspec: error:") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


# ---- resume after SIGKILL (#15) --------------------------------------------------------------

# Runs `nicspec corrupt` in a child that SIGKILLs itself while writing its (N+1)-th PNG: the
# temporary file is complete, the rename onto the final name has not happened.
KILLER = """
import os, signal, sys
from nicspec_utils import cli
limit, seen, real = int(sys.argv[1]), [0], os.replace
def replace(src, dst, *args, **kwargs):
    if str(dst).endswith(".png"):
        seen[0] += 1
        if seen[0] > limit:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *args, **kwargs)
os.replace = replace
sys.exit(cli.main(sys.argv[2:]))
"""


def _corrupt_argv(dataset: Dataset, out: Path) -> list[str]:
    return [
        "corrupt", "--dataset", dataset.name, "--out", str(out), "--corruptions", "pixelate",
        "--severities", "1,2", "--jobs", "1", "--no-progress",
    ]  # fmt: skip


def test_sigkill_resumes_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kodak = get_dataset("kodak")
    folder = tmp_path / "clean"
    for i, image_id in enumerate(("a", "b", "c", "d")):
        write_png_atomic(folder / f"{image_id}.png", kodak.load(f"kodim0{i + 1}")[:64, :96])
    dataset = get_dataset(f"folder:{folder}")
    out = tmp_path / "killed"
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, "5", *_corrupt_argv(dataset, out)],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    done = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(done) == 5  # a and b (two severities each), then c at severity 1
    assert len(list(out.rglob(".*.tmp"))) == 1  # c at severity 2, never renamed
    assert (out / C.JOURNAL_NAME).exists()

    assert cli.main(_corrupt_argv(dataset, out)) == 0
    assert "3 files written, 5 skipped" in capsys.readouterr().out
    assert not list(out.rglob(".*.tmp")) and not (out / C.JOURNAL_NAME).exists()

    straight = tmp_path / "straight"
    assert cli.main(_corrupt_argv(dataset, straight)) == 0
    files = sorted(p.relative_to(straight).as_posix() for p in straight.rglob("*.png"))
    assert len(files) == 8 and set(done) < set(files)
    assert {f: (out / f).read_bytes() for f in files} == {
        f: (straight / f).read_bytes() for f in files
    }
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (out, straight)]
    assert manifests[0] == manifests[1]


def test_journal_of_a_changed_image_is_not_trusted(folder_dataset: Dataset, tmp_path: Path) -> None:
    """A journalled file whose clean input has changed since is remade, as is one whose bytes
    no longer match the journal."""
    out = tmp_path / "set"
    names, sevs = ["pixelate"], [1, 2]
    C.build_corrupted_set(folder_dataset, names, sevs, out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    config_key = C._config_key(manifest["config"])
    (out / "manifest.json").unlink()  # as if the run had been killed before its first save
    for rel, digest in manifest["files"].items():
        source = manifest["sources"][C._image_of(rel)]
        if rel.startswith("pixelate/2/kodim02"):
            source = "0" * 64  # journalled for another clean input
        C._journal_append(out, {"file": rel, "sha256": digest, "source": source,
                                "config": config_key})  # fmt: skip
    tampered = out / "pixelate/1/kodim01.png"
    tampered.write_bytes(tampered.read_bytes()[:-1] + b"\x00")
    stats = C.build_corrupted_set_stats(folder_dataset, names, sevs, out, progress=False)
    assert (stats.written, stats.skipped) == (3, 1)  # kodim02 (both severities) and the tampered
    again = json.loads((out / "manifest.json").read_text())
    assert again["files"] == manifest["files"] and again["sources"] == manifest["sources"]


def test_corrupt_out_is_checked_before_work(
    folder_dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("no image should be loaded")

    monkeypatch.setattr(Dataset, "load", fail)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out in (a_file, a_file / "set"):
        with pytest.raises(DataError, match="not a folder"):
            C.build_corrupted_set(folder_dataset, ["pixelate"], [1], out, progress=False)


def salt(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A corruption of one's own for the registry test: salt noise, more with severity."""
    out = image.copy()
    mask = rng.random(image.shape[:2]) < 0.02 * severity
    out[mask] = 255
    return out


def test_a_registered_corruption_runs_everywhere_by_name(tmp_path: Path) -> None:
    from nicspec_utils import corruptions as C

    entry = C.register_corruption("salt", salt, "high", version="1")
    try:
        _check_registered(entry, tmp_path)
    finally:  # the registry is process-wide: later tests must not see "salt"
        C.unregister_corruption("salt")
    assert "salt" not in [c.name for c in C.registered_corruptions()]


def _check_registered(entry: object, tmp_path: Path) -> None:
    from nicspec_utils import corruptions as C
    from nicspec_utils.engines.evaluate import evaluate
    from nicspec_utils.errors import UsageError

    assert C.get_corruption("salt") == entry and C.get_corruption("salt").number >= 16
    assert "salt" not in C.parse_corruptions("all")  # "all" stays the paper's 15
    img = np.full((40, 48, 3), 100, np.uint8)
    a, b = C.corrupt(img, "salt", 3), C.corrupt(img, "salt", 3)
    assert np.array_equal(a, b) and (a == 255).any()
    assert "test_corruptions.salt v1" in C.corruption_impl("salt")
    path = evaluate("jpeg", "kodak", ["kodim01"], "salt", 2, quality=50, out=tmp_path)
    metrics = json.loads(path.read_text())
    assert metrics["corruption"] == "salt" and metrics["psnr_wrt_clean"] is not None
    C.register_corruption("salt", salt, "high", version="2")  # a new formula, a new key
    again = evaluate("jpeg", "kodak", ["kodim01"], "salt", 2, quality=50, out=tmp_path)
    assert again != path
    with pytest.raises(UsageError, match="one of the paper's"):
        C.register_corruption("fog", salt, "low")
    with pytest.raises(UsageError, match="group"):
        C.register_corruption("pepper", salt, "ultra")


def test_load_or_corrupt_many_merges_the_manifest_once(
    folder_dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = list(folder_dataset.image_ids)[:2]
    cache = tmp_path / "cache"
    C.load_or_corrupt(folder_dataset, ids[0], "fog", 1, 0, cache)  # one image already stored
    merges: list[dict[str, str]] = []
    real = C._merge_manifest

    def counting(root: Path, config: dict, files: dict, sources: dict, **kw: object) -> Path:
        merges.append(files)
        return real(root, config, files, sources, **kw)

    monkeypatch.setattr(C, "_merge_manifest", counting)
    out = C.load_or_corrupt_many(folder_dataset, ids, "fog", 1, 0, cache)
    assert [sorted(m) for m in merges] == [[f"fog/1/{ids[1]}.png"]]  # once, the new image only
    for image_id, image in zip(ids, out, strict=True):
        assert np.array_equal(image, C.corrupt(folder_dataset.load(image_id), "fog", 1))
    manifest = json.loads((cache / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(f"fog/1/{i}.png" for i in ids)
