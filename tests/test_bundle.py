"""Results bundles (nicspec_utils.bundle): the committed sample bundle recomputes to the same
numbers (a date-seeded sample, so different days check different entries); a tampered or
drifted bundle fails verify; the store serves a bundle's entries read-only unless
NICSPEC_FRESH is set; ``nicspec results bundle`` writes what it says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nicspec_utils import book, bundle, store
from nicspec_utils.cli.main import main
from nicspec_utils.codecs import is_neural_name
from nicspec_utils.engines.evaluate import evaluate
from nicspec_utils.errors import DataError, UsageError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "results" / "sample"


def _classic_keys(folder: Path = SAMPLE) -> list[str]:
    entries = bundle.read_manifest(folder)["entries"]
    return sorted(k for k, e in entries.items() if not is_neural_name(str(e["codec"])))


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(SAMPLE, target)
    return target


def _reseal(folder: Path) -> None:
    """Rewrite the manifest's sha256s after an edit (a bundle edited consistently)."""
    manifest = json.loads((folder / bundle.MANIFEST).read_text())
    manifest["files"] = bundle.sha256_tree(folder)
    (folder / bundle.MANIFEST).write_text(json.dumps(manifest))


def test_sample_bundle_recomputes_to_its_numbers() -> None:
    """At least 5 cheap entries of the committed bundle, drawn with today's date, recompute
    within the stated tolerances."""
    keys = _classic_keys()
    assert len(keys) >= 5
    report = bundle.verify(SAMPLE, sample=5, seed=bundle.default_seed(), keys=keys)
    details = [f"{c.key} {c.status}: {c.detail}" for c in report.sampled if c.status != "ok"]
    assert not report.mismatches, details
    assert len(report.verified) == 5, details  # none skipped: Kodak is in the repository


PUBLISHED = [b for b in bundle.all_bundles() if b.name != "sample"]


@pytest.mark.parametrize("folder", PUBLISHED, ids=[b.name for b in PUBLISHED])
def test_a_published_bundle_recomputes_to_its_numbers(folder: Path) -> None:
    """Every committed bundle the book renders from (data/results/<profile>, e.g. paper):
    5 classic-codec entries drawn with today's date from those that took at most 20 s to
    compute, and that this machine can rebuild, recompute within the stated tolerances. (A
    NIC's real coding may differ in a few bytes on another CPU, whose float rounding moves a
    latent across a quantisation step: `make test-slow` and `nicspec results verify` check
    those on the machine at hand.)"""
    keys = _classic_keys(folder)
    report = bundle.verify(
        folder, sample=5, seed=bundle.default_seed(), max_seconds=20.0, keys=keys
    )
    details = [f"{c.key} {c.status}: {c.detail}" for c in report.sampled if c.status != "ok"]
    assert not report.mismatches, details
    assert len(report.verified) == 5, details


@pytest.mark.slow
@pytest.mark.parametrize("folder", PUBLISHED, ids=[b.name for b in PUBLISHED])
def test_a_published_bundle_nic_entries_recompute(folder: Path) -> None:
    """2 NIC entries of each committed bundle, drawn with today's date from those that took
    at most 20 s, recompute within the stated tolerances on this machine."""
    entries = bundle.read_manifest(folder)["entries"]
    nic = sorted(
        k for k, e in entries.items() if str(e["codec"]).startswith(("nic:", "checkpoint:"))
    )
    report = bundle.verify(folder, sample=2, seed=bundle.default_seed(), max_seconds=20.0, keys=nic)
    details = [f"{c.key} {c.status}: {c.detail}" for c in report.sampled if c.status != "ok"]
    assert not report.mismatches and len(report.verified) == 2, details


@pytest.mark.slow
def test_sample_bundle_nic_entry_recomputes() -> None:
    entries = bundle.read_manifest(SAMPLE)["entries"]
    nic = [k for k, e in entries.items() if str(e["codec"]).startswith("nic:")]
    report = bundle.verify(SAMPLE, sample=len(nic), keys=nic)
    assert [c.status for c in report.sampled] == ["ok"] * len(nic), report.sampled


def test_a_tampered_file_fails_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy(tmp_path)
    csv = folder / "records.csv"  # the sample bundle's (written before the gzip export)
    csv.write_text(csv.read_text().replace("kodim01", "kodim99", 1))
    with pytest.raises(DataError, match="records.csv does not match its sha256"):
        bundle.verify(folder, sample=1)
    assert main(["results", "verify", "--bundle", str(folder), "--sample", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"nicspec: error: bundle {folder}: records.csv does not match its sha256 "
                   "in the manifest"]  # fmt: skip


def test_an_unlisted_or_missing_file_fails_verify(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "entries" / "extra.txt").write_text("x")
    with pytest.raises(DataError, match="not in the manifest"):
        bundle.verify(folder, sample=1)
    (folder / "entries" / "extra.txt").unlink()
    (folder / bundle.RECORDS_PARQUET).unlink()
    with pytest.raises(DataError, match="records.parquet is missing"):
        bundle.verify(folder, sample=1)


def test_a_drifted_number_fails_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle whose sha256s are consistent but whose PSNR is not what the code computes."""
    folder = _copy(tmp_path)
    key = _classic_keys(folder)[0]
    path = folder / "entries" / key / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["per_image"][0]["psnr"] *= 1 + 1e-5  # beyond the 1e-6 tolerance
    path.write_text(json.dumps(metrics))
    _reseal(folder)
    report = bundle.verify(folder, sample=1, keys=[key])
    assert [c.status for c in report.sampled] == ["mismatch"]
    assert "per_image[0].psnr" in report.sampled[0].detail
    # within the tolerance it passes
    metrics["per_image"][0]["psnr"] /= 1 + 1e-5
    metrics["per_image"][0]["psnr"] *= 1 + 1e-8
    path.write_text(json.dumps(metrics))
    _reseal(folder)
    assert bundle.verify(folder, sample=1, keys=[key]).sampled[0].status == "ok"


def test_a_drifted_map_fails_verify(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    entries = bundle.read_manifest(folder)["entries"]
    key = next(k for k in _classic_keys(folder) if entries[k]["maps"])
    npz = folder / "entries" / key / "spectra.npz"
    maps = store.load_maps(npz)
    name = next(n for n, a in maps.items() if np.ndim(a) == 2)
    maps[name] = maps[name] * 1.01
    store.save_maps(npz, maps)
    _reseal(folder)
    report = bundle.verify(folder, sample=1, keys=[key])
    assert report.sampled[0].status == "mismatch"
    assert report.sampled[0].detail.startswith(f"maps.{name}")


def test_an_entry_without_its_dataset_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(tmp_path)
    key = _classic_keys(folder)[0]
    manifest = json.loads((folder / bundle.MANIFEST).read_text())
    path = folder / "entries" / key / "metrics.json"
    metrics = json.loads(path.read_text())
    for config in (manifest["entries"][key]["config"], metrics["config"]):
        config["dataset"] = f"folder:{tmp_path / 'absent'}"
    path.write_text(json.dumps(metrics))
    (folder / bundle.MANIFEST).write_text(json.dumps(manifest))
    _reseal(folder)
    report = bundle.verify(folder, sample=1, keys=[key])
    assert report.sampled[0].status == "skipped"
    assert "is not available here" in report.sampled[0].detail
    # nothing else to recompute: the command says so and fails
    manifest = json.loads((folder / bundle.MANIFEST).read_text())
    manifest["entries"] = {key: manifest["entries"][key]}
    (folder / bundle.MANIFEST).write_text(json.dumps(manifest))
    for other in (folder / "entries").iterdir():
        if other.name != key:
            shutil.rmtree(other)
    _reseal(folder)
    assert main(["results", "verify", "--bundle", str(folder)]) == 1
    captured = capsys.readouterr()
    assert "skipped" in captured.out
    assert captured.err.count("\n") == 1 and "none could be recomputed here" in captured.err


def test_verify_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "verify", "--bundle", str(tmp_path / "nope")]) == 2
    assert main(["results", "verify", "--bundle", str(tmp_path)]) == 1  # no manifest
    assert main(["results", "verify", "--bundle", str(SAMPLE), "--sample", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("nicspec: error: ") for line in err)
    assert "has no manifest.json" in err[1]


def _results(tmp_path: Path) -> tuple[Path, list[str]]:
    """A results folder with two cheap entries (one with maps)."""
    results = tmp_path / "results"
    keys = []
    for ids, maps in ((["kodim01", "kodim02"], False), (["kodim03"], True)):
        path = evaluate("jpeg", "kodak", image_ids=ids, quality=40, out=results,
                        progress=False, maps=maps)  # fmt: skip
        keys.append(json.loads(path.read_text())["key"])
    return results, keys


def test_write_bundle_exports_and_the_store_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    results, keys = _results(tmp_path)
    root = tmp_path / "bundles"
    monkeypatch.setattr(store, "bundles_root", lambda: root)
    code = main(["results", "bundle", "--profile", "t", "--all", "--results", str(results)])
    assert code == 0, capsys.readouterr().err
    folder = root / "t"
    manifest = bundle.read_manifest(folder)
    assert sorted(manifest["entries"]) == sorted(keys)
    assert bundle.check_files(folder, manifest) == []
    assert manifest["code"]["nicspec"] and manifest["machine"]["cores"]
    assert set(manifest["files"]) == {
        "records.parquet", "records.csv.gz", f"entries/{keys[0]}/metrics.json",
        f"entries/{keys[1]}/metrics.json", f"entries/{keys[1]}/spectra.npz",
    }  # fmt: skip
    csv = pd.read_csv(folder / bundle.RECORDS_CSV)
    assert len(csv) == 3 and set(csv["key"]) == set(keys)
    assert manifest["entries"][keys[1]]["config"]["image_ids"] == ["kodim03"]

    # the store serves the bundle where the results folder lacks an entry, read-only
    empty = tmp_path / "fresh-results"
    monkeypatch.setenv("NICSPEC_RESULTS", str(empty))
    before = bundle.sha256_tree(folder)
    monkeypatch.setenv(store.USES_ENV, "")  # restored after the test
    log = book.log_uses("t", "02_chapter")  # as the book does before a chapter executes
    path = evaluate("jpeg", "kodak", image_ids=["kodim03"], quality=40, progress=False)
    assert path == folder / "entries" / keys[1] / "metrics.json"
    assert not (empty / keys[1]).exists() and bundle.sha256_tree(folder) == before
    assert log.read_text() == f"{keys[1]}\tt\n"  # served by the bundle named t
    assert log.name.endswith(".partial") and not bundle.uses_log("t", "02_chapter").exists()
    book.finish_uses("t", "02_chapter", 1.0)  # the chapter ran to its end
    assert bundle.uses_log("t", "02_chapter").read_text() == f"{keys[1]}\tt\n"
    assert bundle.run_record("t", "02_chapter")["seconds"] == 1.0
    line = book.provenance("t", "02_chapter")
    commit = str(manifest["code"]["commit"])[:10]
    assert (
        f"Of the 1 store entries it read, 1 came from the bundle data/results/t (code {commit}, "
        in line
    )
    monkeypatch.delenv(store.USES_ENV)
    assert len(store.load_records()) == 3  # the bundle's records back the store's table
    # an explicit --out folder is not backed by bundles; NICSPEC_FRESH ignores them
    assert evaluate("jpeg", "kodak", image_ids=["kodim03"], quality=40, progress=False,
                    out=tmp_path / "other").parent.parent == tmp_path / "other"  # fmt: skip
    monkeypatch.setenv("NICSPEC_FRESH", "1")
    path = evaluate("jpeg", "kodak", image_ids=["kodim03"], quality=40, progress=False)
    assert path == empty / keys[1] / "metrics.json"
    assert store.load_records().shape[0] == 1

    # a rewrite replaces the bundle whole; a verify of it passes
    monkeypatch.delenv("NICSPEC_FRESH")
    bundle.write_bundle("t", keys=keys[:1], results=results)
    assert sorted(bundle.read_manifest(folder)["entries"]) == keys[:1]
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    assert not bundle.verify(folder, sample=1).mismatches


def test_the_profile_uses_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys a chapter uses go to $NICSPEC_USES_LOG (set by the book); bundle reads them."""
    results = tmp_path / "results"
    monkeypatch.setattr(store, "bundles_root", lambda: tmp_path / "bundles")
    with pytest.raises(DataError, match="no record of the entries profile 'p' uses"):
        bundle.write_bundle("p", results=results)
    log = bundle.uses_log("p", "02_rate_distortion", results)
    log.parent.mkdir(parents=True)
    monkeypatch.setenv(store.USES_ENV, str(log))
    first = evaluate("jpeg", "kodak", image_ids=["kodim01"], quality=40, out=results,
                     progress=False, maps=False)  # fmt: skip
    evaluate("jpeg", "kodak", image_ids=["kodim01"], quality=40, out=results,
             progress=False, maps=False)  # a cached use, logged once more  # fmt: skip
    key = first.parent.name
    assert log.read_text().split() == [key, key]
    assert bundle.profile_keys("p", results) == [key]
    manifest = bundle.write_bundle("p", results=results)
    assert list(manifest["entries"]) == [key]


def test_bundle_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (tmp_path / "file").write_text("x")
    assert main(["results", "bundle", "--profile", "../x", "--all"]) == 2
    assert main(["results", "bundle", "--profile", "x", "--all", "--results", str(results)]) == 1
    entries = str(SAMPLE / "entries")  # finished entries, read where they are
    code = main(["results", "bundle", "--profile", "x", "--all", "--results", entries,
                 "--out", str(tmp_path / "file" / "b")])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("nicspec: error: ") for line in err)
    assert not (tmp_path / "file").is_dir()


# --- a bundle renders without the images: keys from the shipped checksum catalogue -------------


def test_the_catalogue_matches_the_mirror(mirror: Path) -> None:
    """data/catalogue/<name>/SHA256SUMS is the mirror's manifest: same files, same digests, so
    keys planned from it are the keys the images give."""
    from nicspec_utils.data import MIRRORED, NOT_CATALOGUED, catalogue_manifest, read_sha256sums

    assert not any(catalogue_manifest(n).exists() for n in NOT_CATALOGUED)  # ImageNet's terms
    for name, (relative, *_) in MIRRORED.items():
        if name in NOT_CATALOGUED:
            continue
        folder = mirror / relative
        theirs = folder / "SHA256SUMS"
        if not theirs.is_file():
            theirs = folder.parent / "SHA256SUMS"
        assert read_sha256sums(catalogue_manifest(name)) == read_sha256sums(theirs), name


def test_a_catalogued_dataset_has_ids_and_digests_but_no_pixels() -> None:
    from nicspec_utils.data import catalogued_dataset

    ds = catalogued_dataset("clic2025-val")
    assert len(ds) == 26 and ds.catalogue and ds.transform == "clic"
    digests = store.input_digests(ds, ds.image_ids[:2])
    assert all(len(d) == 64 for d in digests) and digests[0] != digests[1]
    with pytest.raises(DataError, match="not on this machine"):
        ds.load(ds.image_ids[0])


def test_cache_files_travel_in_the_bundle_and_cover_their_chapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chapter's own cache file (not a store entry) is logged by store.served_file with its
    dataset, exported under caches/, served from there where the results folder lacks it, and
    makes store.covers() true for that dataset in that chapter of that profile only."""
    results, keys = _results(tmp_path)
    root = tmp_path / "bundles"
    monkeypatch.setattr(store, "bundles_root", lambda: root)
    monkeypatch.setenv("NICSPEC_RESULTS", str(results))
    monkeypatch.setenv(store.USES_ENV, "")
    log = book.log_uses("p", "05_chapter")
    cache = results / "spectra" / "clic2025-val" / "a.json"
    assert store.served_file(cache, "clic2025-val") == cache  # not computed yet: written here
    cache.parent.mkdir(parents=True)
    cache.write_text('{"x": 1}')
    evaluate("jpeg", "kodak", image_ids=["kodim03"], quality=40, progress=False)
    assert log.read_text().splitlines() == [
        "file:spectra/clic2025-val/a.json\t\tclic2025-val",
        keys[1],
    ]
    book.finish_uses("p", "05_chapter", 2.0)
    manifest = bundle.write_bundle("p", results=results)
    assert manifest["chapters"]["05_chapter"]["executed"]["seconds"] == 2.0
    assert manifest["caches"] == {"spectra/clic2025-val/a.json": {"dataset": "clic2025-val"}}
    assert manifest["chapters"]["05_chapter"]["datasets"] == ["clic2025-val", "kodak"]
    folder = root / "p"
    assert (folder / "caches/spectra/clic2025-val/a.json").read_text() == '{"x": 1}'
    assert bundle.check_files(folder, manifest) == []

    empty = tmp_path / "fresh"
    monkeypatch.setenv("NICSPEC_RESULTS", str(empty))
    log = book.log_uses("p", "05_chapter")
    served = store.served_file(empty / "spectra" / "clic2025-val" / "a.json", "clic2025-val")
    assert served == folder / "caches/spectra/clic2025-val/a.json"
    assert log.read_text() == "file:spectra/clic2025-val/a.json\tp\tclic2025-val\n"
    book.finish_uses("p", "05_chapter", 2.0)
    assert (
        "Of the 1 results (0 store entries and 1 cached chapter results) it read, 1 came from "
        "the bundle data/results/p"
    ) in book.provenance("p", "05_chapter")
    # a folder's files: the results folder's own first, the bundle's where it lacks them
    (empty / "spectra" / "clic2025-val").mkdir(parents=True)
    (empty / "spectra" / "clic2025-val" / "b.json").write_text("{}")
    assert store.served_files(empty / "spectra" / "clic2025-val", "*.json") == [
        folder / "caches/spectra/clic2025-val/a.json",
        empty / "spectra" / "clic2025-val" / "b.json",
    ]
    monkeypatch.setenv("NICSPEC_PROFILE", "p")
    assert store.covers("clic2025-val") and not store.covers("imagenet-val-subset")
    book.log_uses("p", "02_other")
    assert not store.covers("clic2025-val")  # another chapter did not use it
    book.log_uses("p", "05_chapter")
    monkeypatch.setenv("NICSPEC_PROFILE", "q")
    assert not store.covers("clic2025-val")  # another profile's bundle does not stand in
    monkeypatch.setenv("NICSPEC_PROFILE", "p")
    monkeypatch.setenv("NICSPEC_FRESH", "1")
    assert not store.covers("clic2025-val")  # FRESH=1 ignores bundles


def test_a_bundle_serves_a_dataset_whose_images_are_absent(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry on the CLIC stand-in, bundled with the mirror, is served with the mirror hidden:
    get_dataset falls back to the catalogue for the covered chapter, the planned key is the
    same, and where the bundle does not cover it the dataset is missing as before."""
    from nicspec_utils import selection
    from nicspec_utils.data import get_dataset

    ids = get_dataset("clic2025-val").image_ids[:1]
    monkeypatch.setattr(store, "bundles_root", lambda: tmp_path / "bundles")
    monkeypatch.setenv("NICSPEC_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv(store.USES_ENV, "")
    book.log_uses("p", "02_chapter")
    made = evaluate("jpeg", "clic2025-val", image_ids=ids, quality=40, progress=False, maps=False)
    book.finish_uses("p", "02_chapter", 1.0)
    bundle.write_bundle("p")
    monkeypatch.setenv("NICSPEC_RESULTS", str(tmp_path / "fresh"))
    monkeypatch.setenv("NICSPEC_DATA_MIRROR", "")
    with pytest.raises(DataError, match="not available offline"):
        get_dataset("clic2025-val")  # no profile being built: nothing stands in
    monkeypatch.setenv("NICSPEC_PROFILE", "p")
    log = book.log_uses("p", "02_chapter")
    assert get_dataset("clic2025-val").catalogue
    picked = selection.select({"clic2025-val": 1})
    assert picked.sets == {"clic2025-val": ids} and picked.bundled == ["clic2025-val"]
    assert "come from this profile's results bundle" in picked.note()
    path = evaluate("jpeg", "clic2025-val", image_ids=ids, quality=40, progress=False,
                    maps=False)  # fmt: skip
    assert path.parent.name == made.parent.name and path.parent.parent.name == "entries"
    assert log.read_text() == f"{made.parent.name}\tp\n"
    with pytest.raises(DataError, match="not on this machine"):  # not in the bundle: no pixels
        evaluate("jpeg", "clic2025-val", image_ids=ids, quality=41, progress=False, maps=False)
    book.log_uses("p", "03_chapter")
    assert selection.select({"clic2025-val": 1}).omitted  # a chapter the bundle does not cover


def _nicspec(repo: Path, env: dict[str, str], *args: str) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "nicspec_utils.cli", *args],
        cwd=repo,
        env={**env, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.book
def test_a_bundle_renders_chapters_without_the_mirror(mirror: Path, tmp_path: Path) -> None:
    """End to end on a copy of the repository: chapters 1 and 5 of the smoke profile run with
    the mirror, `nicspec results bundle` exports what they used, and with the mirror hidden and
    an empty results folder they run again: chapter 1 takes CLIC-C from the bundle (the page
    says so); chapter 5 leaves ImageNet's images and per-image classifications out, as its terms
    require, and shows the study's aggregate from the bundle."""
    import os
    import subprocess

    pytest.importorskip("papermill", reason="the book extras (make test-book installs them)")
    repo = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for rel in filter(None, files.stdout.decode().split("\0")):
        if (ROOT / rel).is_file() and not rel.startswith("data/results/"):
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NICSPEC_")}
    env.update(OMP_NUM_THREADS="1", NICSPEC_WORKERS="1", NICSPEC_PROGRESS="0")
    chapters = "01_corruption_benchmark,05_classification"
    with_mirror = {**env, "NICSPEC_DATA_MIRROR": str(mirror),
                   "NICSPEC_RESULTS": str(tmp_path / "a")}  # fmt: skip
    _nicspec(repo, with_mirror, "book", "--profile", "smoke", "--chapters", chapters, "--no-html")
    _nicspec(repo, with_mirror, "results", "bundle", "--profile", "smoke")
    manifest = bundle.read_manifest(repo / "data" / "results" / "smoke")
    # its ImageNet classifications are counted, not copied (the repository ships nothing of it)
    assert "imagenet-val-subset" not in manifest["chapters"]["05_classification"]["datasets"]
    assert manifest["withheld_caches"].get("imagenet-val-subset", 0) > 0
    bare = {**env, "NICSPEC_DATA_MIRROR": "", "NICSPEC_RESULTS": str(tmp_path / "b")}
    _nicspec(repo, bare, "book", "--profile", "smoke", "--chapters", chapters, "--no-html")
    text = (repo / "book" / "chapters" / "01_corruption_benchmark.ipynb").read_text()
    assert "come from this profile's results bundle" in text and "CLIC 2025" in text
    assert "Left out of" not in text
    text = (repo / "book" / "chapters" / "05_classification.ipynb").read_text()
    assert "Left out of" in text and "come from this profile's results bundle" not in text
    # ... but its ImageNet study's aggregate came with the bundle, no per-image record in it
    assert "aggregate of the study on 8 images" in text and "top-1 sections are empty" not in text
    summaries = [c for c in manifest["caches"] if c.startswith("imagenet_summaries/")]
    assert len(summaries) == 1
    assert manifest["caches"][summaries[0]]["dataset"] == "imagenet-val-subset (aggregate)"
    shipped = (repo / "data" / "results" / "smoke" / "caches" / summaries[0]).read_text()
    assert "per_image" not in shipped and "ILSVRC" not in shipped


def test_a_bundle_keeps_reduced_maps_and_full_resolution_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--map-factor 4: the bundle's maps are 4x4 tile means (for figures), display.json holds
    each map's band shares and energy at full resolution, a Point served from the bundle gives
    exactly the numbers of the full entry, and verify compares both (a drifted share fails)."""
    from nicspec_utils.engines.evaluate import load_point

    results, keys = _results(tmp_path)
    root = tmp_path / "bundles"
    monkeypatch.setattr(store, "bundles_root", lambda: root)
    manifest = bundle.write_bundle("r", keys=keys, results=results, map_factor=4)
    assert manifest["map_factor"] == 4
    entry = root / "r" / "entries" / keys[1]
    full = load_point(results / keys[1] / "metrics.json")
    served = load_point(entry / "metrics.json")
    assert served.display is not None and full.display is None
    for name, a in full.spectra.items():
        if a.ndim == 2:
            assert served.spectra[name].shape == (a.shape[0] // 4, a.shape[1] // 4)
            assert served.band_shares(name) == full.band_shares(name)
            assert served.energy(name) == full.energy(name)
            tile = a[:4, :4].astype(np.float64).mean()
            assert abs(served.spectra[name][0, 0] - tile) <= 2**-9 * abs(tile) + 1e-9
    assert (entry / "spectra.npz").stat().st_size < (
        results / keys[1] / "spectra.npz"
    ).stat().st_size
    assert not bundle.verify(root / "r", sample=2).mismatches
    display = json.loads((entry / "display.json").read_text())
    name = next(iter(display["scalars"]))
    display["scalars"][name]["shares"]["high"] *= 1.001
    (entry / "display.json").write_text(json.dumps(display))
    _reseal(root / "r")
    report = bundle.verify(root / "r", sample=2, keys=[keys[1]])
    assert [c.status for c in report.sampled] == ["mismatch"]
    assert "display" in report.sampled[0].detail
    with pytest.raises(UsageError, match="map-factor must be one of"):
        bundle.write_bundle("r", keys=keys, results=results, map_factor=3)


def _chapter_results(tmp_path: Path, name: str, chapter: str, ids: list[str], maps: bool) -> Path:
    """A results folder (one machine's) in which ``chapter`` of profile paper used one entry."""
    results = tmp_path / name
    log = bundle.uses_log("paper", chapter, results)
    log.parent.mkdir(parents=True)
    log.write_text("")
    path = evaluate("jpeg", "kodak", image_ids=ids, quality=40, out=results, progress=False,
                    maps=maps)  # fmt: skip
    log.write_text(json.loads(path.read_text())["key"] + "\n")
    return results


def test_a_bundle_grows_chapter_by_chapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A profile too long for one machine is bundled chapter by chapter: a later bundle of the
    same profile keeps the chapters it did not execute (their entries byte for byte, maps
    reduced once, their provenance), and the bundle is complete, and the default profile,
    only once it holds every chapter of the book."""
    root = tmp_path / "bundles"
    monkeypatch.setattr(store, "bundles_root", lambda: root)
    monkeypatch.setattr(book, "chapter_names", lambda: ["01_a", "02_b"])
    first = _chapter_results(tmp_path, "machine-1", "01_a", ["kodim03"], maps=True)
    one = bundle.write_bundle("paper", results=first, map_factor=4)
    assert one["complete"] is False and one["missing_chapters"] == ["02_b"]
    assert book.default_profile() == "quick"
    (key_a,) = one["chapters"]["01_a"]["keys"]
    entry_a = root / "paper" / "entries" / key_a
    files_a = {p.name: p.read_bytes() for p in entry_a.iterdir()}
    assert "display.json" in files_a and one["entries"][key_a]["map_factor"] == 4

    # another machine, an empty results folder: only chapter 02_b executes there
    second = _chapter_results(tmp_path, "machine-2", "02_b", ["kodim01", "kodim02"], maps=False)
    assert main(["results", "bundle", "--profile", "paper", "--results", str(second)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(": complete")
    two = bundle.read_manifest(root / "paper")
    (key_b,) = two["chapters"]["02_b"]["keys"]
    assert sorted(two["entries"]) == sorted([key_a, key_b]) and two["complete"] is True
    assert two["chapters"]["01_a"] == one["chapters"]["01_a"]  # its provenance kept
    assert {p.name: p.read_bytes() for p in entry_a.iterdir()} == files_a  # not reduced twice
    assert two["entries"][key_a]["map_factor"] == 4
    assert bundle.check_files(root / "paper", two) == []
    assert book.default_profile() == "paper"
    assert not bundle.verify(root / "paper", sample=2).mismatches

    # --replace keeps only this build's chapters; another profile's bundle is not merged into
    assert main(["results", "bundle", "--profile", "paper", "--results", str(second),
                 "--replace"]) == 0  # fmt: skip
    assert list(bundle.read_manifest(root / "paper")["chapters"]) == ["02_b"]
    capsys.readouterr()
    shutil.copytree(second / "uses" / "paper", second / "uses" / "other")
    code = main(["results", "bundle", "--profile", "other", "--results", str(second),
                 "--out", str(root / "paper")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "bundle of profile 'paper'" in err


def test_a_part_of_a_chapter_is_bundled_as_partial_until_its_full_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chapter too long for one machine runs in parts (nicspec book --set): its run record
    names the parameters that replaced the profile's, the bundle keeps it but lists it as
    partial and still missing (so the book stays off the profile), and a later full run of it
    on another machine reuses the part's entries from the bundle and makes it complete."""
    root = tmp_path / "bundles"
    monkeypatch.setattr(store, "bundles_root", lambda: root)
    monkeypatch.setattr(book, "chapter_names", lambda: ["01_a"])
    monkeypatch.setenv(store.USES_ENV, "")
    first = tmp_path / "machine-1"
    monkeypatch.setenv("NICSPEC_RESULTS", str(first))
    book.log_uses("paper", "01_a")
    part = evaluate("jpeg", "kodak", image_ids=["kodim03"], quality=40, progress=False,
                    maps=False)  # fmt: skip
    book.finish_uses("paper", "01_a", 5.0, {"draws": 1})
    assert bundle.run_record("paper", "01_a", first)["overrides"] == {"draws": 1}
    assert main(["results", "bundle", "--profile", "paper", "--results", str(first)]) == 0
    assert "01_a (part: draws=1)" in capsys.readouterr().out
    one = bundle.read_manifest(root / "paper")
    assert one["complete"] is False and one["missing_chapters"] == ["01_a"]
    assert one["partial_chapters"] == {"01_a": {"draws": 1}}
    assert book.default_profile() == "quick"

    second = tmp_path / "machine-2"  # empty: the part's entry comes from the bundle
    monkeypatch.setenv("NICSPEC_RESULTS", str(second))
    book.log_uses("paper", "01_a")
    again = evaluate("jpeg", "kodak", image_ids=["kodim03"], quality=40, progress=False,
                     maps=False)  # fmt: skip
    assert again.parent.parent == root / "paper" / "entries"  # served, not recomputed
    evaluate("jpeg", "kodak", image_ids=["kodim01"], quality=40, progress=False, maps=False)
    book.finish_uses("paper", "01_a", 7.0)
    two = bundle.write_bundle("paper", results=second)
    assert two["complete"] is True and two["partial_chapters"] == {}
    assert json.loads(part.read_text())["key"] in two["chapters"]["01_a"]["keys"]
    assert len(two["entries"]) == 2 and bundle.check_files(root / "paper", two) == []


def test_set_replaces_a_chapter_parameter_or_fails_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """nicspec book --set NAME=VALUE: a YAML scalar, for a parameter the chapter has."""
    assert book.parse_overrides(["draws=1", "psnr_matching=none"], ["03b_fourier_heatmaps"]) == {
        "draws": 1, "psnr_matching": "none"
    }  # fmt: skip
    assert "draws" in book.notebook_parameters("03b_fourier_heatmaps")
    for bad, message in (("nodraws=1", "has no parameter nodraws"), ("draws", "NAME=VALUE"),
                         ("draws=[1, 2]", "one value")):  # fmt: skip
        code = main(["book", "--profile", "smoke", "--chapters", "03b_fourier_heatmaps",
                     "--no-html", "--set", bad])  # fmt: skip
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_make_takes_the_paper_profile_only_from_a_complete_bundle(tmp_path: Path) -> None:
    """The Makefile's DEFAULT_PROFILE reads the manifest as book.default_profile does."""
    import subprocess

    from nicspec_utils.io import atomic_write_json

    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    manifest = tmp_path / "data" / "results" / "paper" / "manifest.json"
    manifest.parent.mkdir(parents=True)

    def profile() -> str:
        done = subprocess.run(["make", "-n", "book", "STAMP_BOOK="], cwd=tmp_path, text=True,
                              capture_output=True, check=True)  # fmt: skip
        return done.stdout.split("--profile ")[1].split()[0].strip('"')

    assert profile() == "quick"
    for complete, expected in ((False, "quick"), (True, "paper")):
        atomic_write_json(manifest, {"complete": complete, "created": "x", "profile": "paper"})
        assert profile() == expected


def test_a_chapter_killed_part_way_leaves_nothing_to_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until a chapter ends, its uses log is <chapter>.keys.partial: a bundle built meanwhile
    (or after a kill) takes only the chapters that ran to their end, and the chapter's name
    still reads right for store.covers while it runs."""
    results, keys = _results(tmp_path)
    monkeypatch.setattr(store, "bundles_root", lambda: tmp_path / "bundles")
    monkeypatch.setenv("NICSPEC_RESULTS", str(results))
    monkeypatch.setenv(store.USES_ENV, "")
    book.log_uses("p", "02_done")
    evaluate("jpeg", "kodak", image_ids=["kodim03"], quality=40, progress=False)
    book.finish_uses("p", "02_done", 3.0)
    book.log_uses("p", "03_killed")
    assert store.current_chapter() == "03_killed"
    evaluate("jpeg", "kodak", image_ids=["kodim01", "kodim02"], quality=40, progress=False,
             maps=False)  # fmt: skip
    manifest = bundle.write_bundle("p", results=results)
    assert list(manifest["chapters"]) == ["02_done"] and list(manifest["entries"]) == [keys[1]]


def test_chapter_one_spectra_travel_reduced_with_their_numbers_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chapter 1's cached mean spectra are figures only: the bundle keeps their magnitude map
    as f x f tile means and every other array as it was; a later merge copies the bundle's
    file as it is; metrics.json travels as compact JSON with the same data; the records as
    gzip CSV."""
    import pandas as pd

    results, keys = _results(tmp_path)
    monkeypatch.setattr(store, "bundles_root", lambda: tmp_path / "bundles")
    rel = "corrupted/spectra/kodak/fog-s3-0123456789abcdef.npz"
    rng = np.random.default_rng(0)
    arrays = {"magnitude": rng.random((64, 96)).astype(np.float32),
              "bands": np.array([0.5, 0.3, 0.2]), "config": np.array("{}")}  # fmt: skip
    (results / rel).parent.mkdir(parents=True)
    store.save_maps(results / rel, arrays)
    log = bundle.uses_log("paper", "01_a", results)
    log.parent.mkdir(parents=True)
    log.write_text(f"file:{rel}\t\tkodak\n{keys[0]}\n")
    manifest = bundle.write_bundle("paper", results=results, map_factor=4)
    folder = tmp_path / "bundles" / "paper"
    assert manifest["caches"][rel] == {"dataset": "kodak", "map_factor": 4}
    got = store.load_maps(folder / "caches" / rel)
    assert got["magnitude"].shape == (16, 24)
    assert abs(got["magnitude"][0, 0] - arrays["magnitude"][:4, :4].mean()) < 2e-3
    assert np.array_equal(got["bands"], arrays["bands"]) and str(got["config"]) == "{}"
    assert json.loads((folder / "entries" / keys[0] / "metrics.json").read_text()) == json.loads(
        (results / keys[0] / "metrics.json").read_text()
    )
    assert len(pd.read_csv(folder / "records.csv.gz")) == 2
    before = (folder / "caches" / rel).read_bytes()
    (log.parent / "02_b.keys").write_text(f"{keys[1]}\n")
    log.unlink()  # another machine: only 02_b executed; 01_a's cache comes from the bundle
    shutil.rmtree(results / "corrupted")
    merged = bundle.write_bundle("paper", results=results, map_factor=4)
    assert merged["caches"][rel]["map_factor"] == 4
    assert (folder / "caches" / rel).read_bytes() == before


def test_rounded_measures_of_a_neural_codec_have_their_own_tolerance() -> None:
    """A NIC's rounded-difference energies may move by a few flipped cells (1e-3 relative);
    a classic codec's, and every unrounded measure, keep 1e-5."""
    a, b = 38034045148.54178, 38033330607.20546  # measured on a paper-profile entry
    assert bundle._close("per_image[19].energy.G_rounded.high", a, b, exact_rate=False)
    assert not bundle._close("per_image[19].energy.G_rounded.high", a, b, exact_rate=True)
    assert not bundle._close("per_image[19].energy.G.high", a, b, exact_rate=False)
    assert not bundle._close("per_image[0].energy.G_rounded.high", 1.0, 1.002, exact_rate=False)
    a = np.linspace(1.0, 2.0, 40)
    b = a * (1 + 5e-4)
    name = "radial_R_rounded"
    assert bundle.compare_maps({name: a}, {name: b}, neural=True) is None
    assert bundle.compare_maps({name: a}, {name: b}) is not None
    assert bundle.compare_maps({"radial_R": a}, {"radial_R": b}, neural=True) is not None


def test_maps_a_chapter_draws_stay_fine_enough_to_draw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry whose map a figure drew (Point.drawn logs it) keeps its maps at
    DRAWN_FACTOR; the others take the bundle's factor; a merge keeps the chapter's list."""
    from nicspec_utils.engines.evaluate import load_point

    results = tmp_path / "results"
    monkeypatch.setattr(store, "bundles_root", lambda: tmp_path / "bundles")
    monkeypatch.setenv("NICSPEC_RESULTS", str(results))
    monkeypatch.setenv(store.USES_ENV, "")
    book.log_uses("paper", "03_c")
    drawn = evaluate("jpeg", "kodak", image_ids=["kodim03"], quality=40, progress=False)
    other = evaluate("jpeg", "kodak", image_ids=["kodim04"], quality=40, progress=False)
    point = load_point(drawn)
    assert point.drawn("D") is point.spectra["D"]
    book.finish_uses("paper", "03_c", 1.0)
    manifest = bundle.write_bundle("paper", results=results, map_factor=16)
    entries = manifest["entries"]
    key_d, key_o = drawn.parent.name, other.parent.name
    assert manifest["chapters"]["03_c"]["drawn"] == [key_d]
    assert entries[key_d]["map_factor"] == bundle.DRAWN_FACTOR
    assert entries[key_o]["map_factor"] == 16
    served = load_point(tmp_path / "bundles" / "paper" / "entries" / key_d / "metrics.json")
    assert served.spectra["D"].shape[0] == point.spectra["D"].shape[0] // bundle.DRAWN_FACTOR
    assert served.band_shares("D") == point.band_shares("D")
    assert not bundle.verify(tmp_path / "bundles" / "paper", sample=2).mismatches


def test_imagenet_results_stay_out_of_a_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ImageNet's terms forbid redistributing anything of it: a chapter cache resting on it
    (chapter 5's classifications) is counted in the manifest, never copied."""
    results, keys = _results(tmp_path)
    monkeypatch.setattr(store, "bundles_root", lambda: tmp_path / "bundles")
    for rel in ("classify/a.json", "classify/b.json"):
        (results / rel).parent.mkdir(parents=True, exist_ok=True)
        (results / rel).write_text("{}")
    log = bundle.uses_log("paper", "05_c", results)
    log.parent.mkdir(parents=True)
    log.write_text("file:classify/a.json\t\timagenet-val-subset\nfile:classify/b.json\t\tkodak\n")
    manifest = bundle.write_bundle("paper", results=results)
    assert list(manifest["caches"]) == ["classify/b.json"]
    assert manifest["withheld_caches"] == {"imagenet-val-subset": 1}
    assert manifest["chapters"]["05_c"]["datasets"] == ["kodak"]
    assert not (tmp_path / "bundles" / "paper" / "caches" / "classify" / "a.json").exists()
