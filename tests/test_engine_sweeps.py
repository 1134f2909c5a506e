"""The sweeps outside the evaluation grids on Dask: corrupted sets, Fourier heat-map bases and the
classification grid give on a 2-worker LocalCluster what they give in-process, and a killed
`nicspec corrupt` reruns only the files it had not written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nicspec_utils import corruptions as C
from nicspec_utils.data import Dataset, get_dataset
from nicspec_utils.engines import classify as cl
from nicspec_utils.engines import heatmap as fh
from nicspec_utils.engines import scheduler as engine
from nicspec_utils.io import write_png_atomic

REPO = Path(__file__).resolve().parent.parent
NIC = "sh-mse-0.0067"


def _crops(folder: Path, n: int = 2, shape: tuple[int, int] = (64, 96)) -> Dataset:
    kodak = get_dataset("kodak")
    for k in range(n):
        image = kodak.load(f"kodim0{k + 1}")[100 : 100 + shape[0], 200 : 200 + shape[1]]
        write_png_atomic(folder / f"kodim0{k + 1}.png", image)
    return get_dataset(f"folder:{folder}")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


# --- corrupt ------------------------------------------------------------------------------------
def test_corrupt_on_the_cluster_equals_serial(cluster: None, tmp_path: Path) -> None:
    dataset = _crops(tmp_path / "clean")
    names, sevs = ["shot_noise", "motion_blur"], [1, 2]
    par = C.build_corrupted_set_stats(dataset, names, sevs, tmp_path / "par", jobs=2)
    assert (par.written, par.skipped) == (8, 0)
    ser = C.build_corrupted_set_stats(
        dataset, names, sevs, tmp_path / "ser", progress=False, scheduler=engine.SERIAL
    )
    assert (
        _files(tmp_path / "par") == _files(tmp_path / "ser") and len(_files(tmp_path / "par")) == 8
    )
    manifests = [json.loads(s.manifest.read_text()) for s in (par, ser)]
    assert manifests[0] == manifests[1]
    (tmp_path / "par" / "motion_blur/2/kodim02.png").unlink()
    again = C.build_corrupted_set_stats(dataset, names, sevs, tmp_path / "par", jobs=2)
    assert (again.written, again.skipped) == (1, 7)
    assert _files(tmp_path / "par") == _files(tmp_path / "ser")
    assert not (tmp_path / "par" / C.JOURNAL_NAME).exists()


def dots(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A corruption of one's own (module level: the workers import it by name)."""
    out = image.copy()
    out[rng.random(image.shape[:2]) < 0.03 * severity] = 0
    return out


def test_a_registered_corruption_reaches_the_workers(cluster: None, tmp_path: Path) -> None:
    dataset = _crops(tmp_path / "clean", n=1)
    entry = C.register_corruption("dots", dots, "high")
    try:
        par = C.build_corrupted_set_stats(dataset, ["dots"], [1, 2], tmp_path / "par", jobs=2)
        ser = C.build_corrupted_set_stats(
            dataset, ["dots"], [1, 2], tmp_path / "ser", progress=False, scheduler=engine.SERIAL
        )
    finally:
        C.unregister_corruption(entry.name)
    assert (par.written, ser.written) == (2, 2)
    assert _files(tmp_path / "par") == _files(tmp_path / "ser")
    assert "dots" in json.loads(par.manifest.read_text())["config"]["registered"]


def test_a_killed_corrupt_client_reruns_only_missing_files(tmp_path: Path) -> None:
    dataset = _crops(tmp_path / "clean", n=2, shape=(256, 256))
    out = tmp_path / "set"
    cmd = [sys.executable, "-m", "nicspec_utils.cli", "corrupt", "--dataset", dataset.name,
           "--out", str(out), "--corruptions", "zoom_blur,defocus_blur", "--severities", "1-5",
           "--jobs", "1", "--scheduler", "", "--no-progress"]  # fmt: skip
    env = {**os.environ, engine.PROGRESS_ENV: "0", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(list(out.rglob("*.png"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the client, its cluster and its worker at once
    proc.wait()
    finished = len(list(out.rglob("*.png")))
    assert 3 <= finished < 20, "the build finished before the kill: make it longer"
    # what was written is on record (the journal; the manifest too if a periodic save came first)
    assert (out / C.JOURNAL_NAME).exists() or (out / C.MANIFEST_NAME).exists()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{20 - finished} files written, {finished} skipped" in rerun.stdout
    straight = tmp_path / "straight"
    C.build_corrupted_set(
        dataset, ["zoom_blur", "defocus_blur"], [1, 2, 3, 4, 5], straight, progress=False,
        scheduler=engine.SERIAL,
    )  # fmt: skip
    assert _files(out) == _files(straight)
    assert json.loads((out / C.MANIFEST_NAME).read_text()) == json.loads(
        (straight / C.MANIFEST_NAME).read_text()
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["corrupt", "--dataset", "kodak", "--images", "kodim01", "--corruptions", "pixelate",
         "--severities", "1"],
        ["fhm", "--codec", "jpeg", "--quality", "30", "--dataset", "kodak", "--limit", "1",
         "--grid", "2", "--crop", "32"],
    ],
)  # fmt: skip
def test_scheduler_and_jobs_options_reach_the_engine(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nicspec_utils import cli

    asked: list[tuple[object, object]] = []

    def serial(scheduler: str | None = None, workers: int | None = None) -> None:
        asked.append((scheduler, workers))

    monkeypatch.setattr(engine, "get_client", serial)
    extra = ["--out", str(tmp_path / "o"), "--no-progress", "--jobs", "3"]
    assert cli.main([*argv, *extra, "--scheduler", "tcp://10.0.0.1:8786"]) == 0
    assert asked == [("tcp://10.0.0.1:8786", 3)]


# --- Fourier heat maps ----------------------------------------------------------------------------
def _bases(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.rglob("bases/*.json"))}


@pytest.mark.parametrize(("codec", "options"), [("jpeg", {"quality": 30}), (f"nic:{NIC}", {})])
def test_heatmap_bases_on_the_cluster_equal_serial(
    cluster: None, tmp_path: Path, codec: str, options: dict[str, int]
) -> None:
    tiny = {"grid": 4, "crop": 32, "limit": 2, "progress": False, **options}
    par = fh.heatmap(codec, "kodak", cache_dir=tmp_path / "par", jobs=2, **tiny)
    assert par.timing["computed"] == 12
    ser = fh.heatmap(codec, "kodak", cache_dir=tmp_path / "ser", scheduler=engine.SERIAL, **tiny)
    for name in ("table_perturbed", "table_clean", "table_bpp"):
        np.testing.assert_array_equal(getattr(par, name), getattr(ser, name))
    assert (
        _bases(tmp_path / "par") == _bases(tmp_path / "ser") and len(_bases(tmp_path / "ser")) == 12
    )
    (next((tmp_path / "par").rglob("bases/*.json"))).unlink()
    (next((tmp_path / "par").rglob(fh.PACKED_NAME))).unlink()  # the packed copy of every basis
    again = fh.heatmap(codec, "kodak", cache_dir=tmp_path / "par", jobs=2, **tiny)
    assert (again.timing["computed"], again.timing["cached"]) == (1, 11)
    assert _bases(tmp_path / "par") == _bases(tmp_path / "ser")


def test_chunks_keep_nic_batches_and_order() -> None:
    todo = [(r, c) for r in range(8) for c in range(5)]
    chunks = fh._chunks(todo, per_call=3, workers=2)
    assert [rc for chunk in chunks for rc in chunk] == todo
    assert all(len(chunk) % 3 == 0 for chunk in chunks[:-1]) and len(chunks) >= 4
    assert max(len(c) for c in fh._chunks(todo * 100, per_call=1, workers=1)) == 64


# --- the classification grid --------------------------------------------------------------------
def _without_times(results: dict[tuple[str, str], cl.Result]) -> dict[tuple[str, str], object]:
    return {k: {f: v for f, v in r.data.items() if not f.endswith("_time_s")}
            for k, r in results.items()}  # fmt: skip


def test_classification_grid_on_the_cluster_equals_serial(
    cluster: None, mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = get_dataset("imagenet-val-subset").image_ids[:2]
    # the clean reference (a dependency, not in the grid), none, NIC and rate-matched JPEG2000
    args = ("imagenet-val-subset", ids, [NIC], ["gaussian_noise"], 3)
    par = cl.run_grid(*args, out=tmp_path / "par")
    assert len(list((tmp_path / "par").glob("*/classify.json"))) == 4
    assert all(r.cached for r in par.values())  # read back from the tasks' files
    monkeypatch.setenv(engine.SCHEDULER_ENV, engine.SERIAL)
    ser = cl.run_grid(*args, out=tmp_path / "ser")
    assert list(par) == list(ser)
    assert _without_times(par) == _without_times(ser)
    j2k = par["gaussian_noise", f"JPEG2000 @ {NIC}"].data["config"]["codec"]["targets"]
    assert j2k == {
        i: round(b, 4) for i, b in par["gaussian_noise", f"NIC {NIC}"].bpp_by_image().items()
    }
    assert par["gaussian_noise", "none"].per_image("ref_pred") == ser[
        "gaussian_noise", "none"
    ].per_image("ref_pred")
