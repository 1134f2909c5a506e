"""The execution engine: sweeps on a Dask LocalCluster against the serial path, kills, resume,
content addressing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nicspec_utils import store
from nicspec_utils.chapters import rate_distortion as rd
from nicspec_utils.engines import evaluate
from nicspec_utils.engines import scheduler as engine
from nicspec_utils.errors import DataError

REPO = Path(__file__).resolve().parent.parent
IDS = ["kodim01", "kodim02"]


def _settings() -> list[rd.settings.Setting]:
    return rd.settings.classic_settings("jpeg,jpeg2000", "jpeg=10,60;jpeg2000=80,20", None)


@engine.sweep
def matched_sweep(out: Path) -> pd.DataFrame:
    """A two-stage sweep: JPEG at two qualities, then JPEG2000 at each JPEG's bpp."""
    rows = []
    for q in (10, 60):
        j = evaluate.evaluate("jpeg", "kodak", IDS, quality=q, out=out, progress=False)
        bpp = json.loads(j.read_text())["bpp"]
        k = evaluate.evaluate("jpeg2000", "kodak", IDS, bpp=round(bpp, 4), out=out, progress=False)
        rows.append({"q": q, "bpp": bpp, "j2k_bpp": json.loads(k.read_text())["bpp"]})
    return pd.DataFrame(rows)


def _records(out: Path) -> pd.DataFrame:
    frame = store.load_records(out)
    keep = [c for c in frame.columns if "time" not in c]
    return frame[keep].sort_values(["key", "image_id"]).reset_index(drop=True)


def test_cluster_records_equal_serial_records(
    cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    par = matched_sweep(tmp_path / "par")
    assert engine.last_run["rounds"] == 3 and engine.last_run["submitted"] == 4
    again = matched_sweep(tmp_path / "par")  # everything served from the store
    assert engine.last_run == {"rounds": 1, "submitted": 0}
    pd.testing.assert_frame_equal(par, again)
    monkeypatch.setenv(engine.SCHEDULER_ENV, engine.SERIAL)
    ser = matched_sweep(tmp_path / "ser")
    pd.testing.assert_frame_equal(par, ser)
    pd.testing.assert_frame_equal(_records(tmp_path / "par"), _records(tmp_path / "ser"))
    assert len(_records(tmp_path / "par")) == 8  # 4 entries x 2 images


def test_rd_sweep_on_the_cluster(cluster: None, tmp_path: Path) -> None:
    table = rd.study.rd_sweep(_settings(), "kodak", IDS, out=tmp_path)
    assert engine.last_run["submitted"] == 4 and not table["bpp"].isna().any()
    assert set(_records(tmp_path)["image_id"]) == set(IDS)


def test_a_killed_worker_still_completes_with_identical_records(
    cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = engine.get_client()
    pids = sorted(client.run(os.getpid).values())
    settings = rd.settings.classic_settings("jpeg2000", "jpeg2000=160,80,40,20,10,5", None)
    done: dict[str, object] = {}

    def run() -> None:
        done["table"] = rd.study.rd_sweep(settings, "kodak", IDS, out=tmp_path / "par")

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 300
    while not list((tmp_path / "par").glob("*/metrics.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(pids[0], signal.SIGKILL)  # the nanny starts a new worker; its task runs again
    thread.join(600)
    assert "table" in done
    monkeypatch.setenv(engine.SCHEDULER_ENV, engine.SERIAL)
    rd.study.rd_sweep(settings, "kodak", IDS, out=tmp_path / "ser")
    pd.testing.assert_frame_equal(_records(tmp_path / "par"), _records(tmp_path / "ser"))


def test_a_killed_client_reruns_only_unfinished_tasks(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from nicspec_utils.engines import scheduler as engine
        from nicspec_utils.chapters import rate_distortion as rd

        def main():
            s = rd.settings.classic_settings(
                "jpeg2000", "jpeg2000=240,160,120,80,60,40,30,20,10,5", None
            )
            rd.study.rd_sweep(s, "kodak", {IDS!r}, out=sys.argv[1])
            print("submitted", engine.last_run["submitted"])

        if __name__ == "__main__":
            main()
        """
    )
    (tmp_path / "sweep.py").write_text(script)
    env = {**os.environ, engine.SCHEDULER_ENV: "", engine.WORKERS_ENV: "1",
           engine.PROGRESS_ENV: "0"}  # fmt: skip
    out = tmp_path / "results"
    cmd = [sys.executable, str(tmp_path / "sweep.py"), str(out)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(out.glob("*/metrics.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the client, its cluster and its workers at once
    proc.wait()
    finished = len(list(out.glob("*/metrics.json")))
    assert 2 <= finished < 10
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"submitted {10 - finished}" in rerun.stdout
    assert len(list(out.glob("*/metrics.json"))) == 10


def test_a_changed_image_is_recomputed(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
    dataset = f"folder:{folder}"
    first = evaluate.evaluate("jpeg", dataset, quality=50, out=tmp_path / "r", progress=False)
    same = evaluate.evaluate("jpeg", dataset, quality=50, out=tmp_path / "r", progress=False)
    assert first == same
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(folder / "b.png")
    changed = evaluate.evaluate("jpeg", dataset, quality=50, out=tmp_path / "r", progress=False)
    assert changed != first and changed.is_file()
    records = store.load_records(tmp_path / "r")
    assert records["image_sha256"].nunique() == 3  # a, the old b and the new b


def test_a_tampered_kodak_copy_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nicspec_utils import data

    copy = tmp_path / "kodak"
    shutil.copytree(REPO / "data" / "kodak", copy)
    with Image.open(copy / "kodim01.png") as img:
        arr = np.asarray(img).copy()
    arr[0, 0] ^= 1
    Image.fromarray(arr).save(copy / "kodim01.png")
    monkeypatch.setattr(data, "REPO_DATA", tmp_path)
    with pytest.raises(DataError, match="kodim01.png does not match its checksum"):
        evaluate.evaluate("jpeg", "kodak", ["kodim01"], quality=50, out=tmp_path / "r")


def test_an_unreachable_scheduler_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(engine.SCHEDULER_ENV, "tcp://127.0.0.1:9")
    engine.close()
    with pytest.raises(DataError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        engine.get_client()


def test_an_unreadable_record_file_says_what_to_do(tmp_path: Path) -> None:
    evaluate.evaluate("jpeg", "kodak", ["kodim01"], quality=50, out=tmp_path, progress=False)
    (next(tmp_path.glob("*/records.parquet"))).write_bytes(b"not parquet")
    with pytest.raises(DataError, match="delete it to recompute"):
        store.load_records(tmp_path)


def test_two_processes_never_compute_the_same_entry_twice(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "nicspec_utils.cli", "eval", "--codec", "jpeg2000", "--quality",
        "24", "--dataset", "kodak", "--images", "kodim01,kodim02,kodim03", "--out",
        str(tmp_path), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, engine.SCHEDULER_ENV: engine.SERIAL}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    cached = [out for out, _ in outputs if "(cached)" in out]
    assert len(cached) == 1, outputs  # one computed it, the other waited and read it
    assert len(list(tmp_path.glob("*/metrics.json"))) == 1


def test_a_sweep_keeps_the_cluster_it_was_given(cluster: None) -> None:
    # the module's cluster was started with workers=2; a sweep's get_client() must reuse it,
    # not replace it with one of the default size (a 1-worker benchmark once ran on 2 workers)
    given = engine.get_client(workers=2)
    assert engine.get_client() is given
    assert len(given.scheduler_info()["workers"]) == 2


def test_the_same_broadcast_twice_in_a_row_is_never_cancelled(cluster: None) -> None:
    # chapter 1 once failed with "lost dependencies": two sweeps scattered the same clean images
    # under the same content key while the first sweep's copy was being released
    # (dask/distributed#4612); with content-keyed scatter this loop failed within a few rounds
    client = engine.get_client(workers=2)
    image = np.ones((64, 64, 3), np.float32)
    items = [[("index", index)] for index in range(6)]
    for _ in range(40):
        results = dict(engine.map_tasks(dict, items, client=client, broadcast={"image": image}))
        assert sorted(results) == list(range(6))
        assert all(results[i]["index"] == i for i in range(6))


def _chapter_context() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in engine.CONTEXT_ENV)


def test_a_task_runs_in_the_context_of_the_chapter_that_submitted_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers start once per book, so a task carries the submitting chapter's profile, uses
    log and FRESH setting (what store.covers and store.note_use read), and restores the
    worker's own afterwards."""
    import cloudpickle

    monkeypatch.setenv("NICSPEC_PROFILE", "paper")
    monkeypatch.setenv("NICSPEC_USES_LOG", "/tmp/uses/paper/05_classification.keys")
    monkeypatch.delenv("NICSPEC_FRESH", raising=False)
    task = cloudpickle.loads(cloudpickle.dumps(engine.in_context(_chapter_context)))
    monkeypatch.setenv("NICSPEC_PROFILE", "quick")
    monkeypatch.setenv("NICSPEC_FRESH", "1")
    assert task() == ("paper", "/tmp/uses/paper/05_classification.keys", None)
    assert _chapter_context() == ("quick", "/tmp/uses/paper/05_classification.keys", "1")
