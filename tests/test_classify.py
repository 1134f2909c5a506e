"""Downstream classification: statistics, top-1 / agreement maths, caching, the grid, the
chapter's claims (``chapters/classification``), the CLI.

Most tests use a fake classifier (a rule on mean brightness) so that the expected predictions
are known, and the grid tests a fake NIC (the input, at 1 bpp); two end-to-end tests run the
real EfficientNet-Lite0 on 2 images (codec none and JPEG2000), one of them through the console
command in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicspec_utils import cli
from nicspec_utils import stats as S
from nicspec_utils.chapters import classification as ch
from nicspec_utils.codecs import ffmpeg_unavailable
from nicspec_utils.codecs.base import CodecResult
from nicspec_utils.codecs.ratematch import PSNR_TOL
from nicspec_utils.engines import classify as cl
from nicspec_utils.errors import DataError, UsageError

REPO = Path(__file__).resolve().parent.parent
NO_FFMPEG = ffmpeg_unavailable()


# --- statistics ---------------------------------------------------------------------------------
def test_wilson_known_values() -> None:
    lo, hi = cl.wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = cl.wilson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)
    lo, hi = cl.wilson(20, 20)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.1611, abs=1e-4)
    assert all(math.isnan(v) for v in cl.wilson(0, 0))
    with pytest.raises(ValueError):
        cl.wilson(3, 2)


def test_mcnemar_exact() -> None:
    """The exact McNemar test of the chapter is the stats model's."""
    assert ch.mcnemar is S.mcnemar
    a = [True] * 5 + [True, False, False]
    b = [False] * 5 + [True, False, False]
    t = S.mcnemar(a, b)
    assert (t["a_only"], t["b_only"]) == (5, 0)
    assert t["p"] == pytest.approx(2 / 32)
    assert S.mcnemar(b, a)["p"] == pytest.approx(t["p"])
    assert S.mcnemar([True, False], [True, False])["p"] == 1.0
    # 3 vs 1 discordant: p = 2 * P(X <= 1 | n=4) = 2 * 5/16
    t = S.mcnemar([1, 1, 1, 0], [0, 0, 0, 1])
    assert t["p"] == pytest.approx(10 / 16)


def test_bootstrap_keeps_rows_together() -> None:
    """The chapter's group intervals: the stats model's cluster bootstrap over rows (images)."""
    assert ch.bootstrap_ci(np.full(10, 0.5)) == (0.5, 0.5, 0.5)
    # each row's mean is 0.5, so every resample has mean 0.5 although entries are 0 or 1
    rows = np.array([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 6)
    assert ch.bootstrap_ci(rows, n_boot=200) == pytest.approx((0.5, 0.5, 0.5))
    mean, lo, hi = ch.bootstrap_ci(np.r_[np.ones(30), np.zeros(10)], n_boot=500)
    assert mean == 0.75 and lo < 0.75 < hi and lo > 0.55 and hi < 0.9
    est = S.paired_effect(rows, n_boot=200)
    assert ch.bootstrap_ci(rows, n_boot=200) == (est.mean, est.ci_low, est.ci_high)


def test_rate_skips_missing_labels() -> None:
    assert cl.rate([True, None, False, True]) == (
        pytest.approx(2 / 3),
        list(cl.wilson(2, 3)),
        3,
    )
    assert cl.rate([None, None]) == (None, [None, None], 0)


def test_prepare_resizes_and_centre_crops() -> None:
    img = np.zeros((512, 768, 3), np.uint8)
    img[:, 128:640] = 200  # the central 512x512 square
    out = cl.prepare(img)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert out[:, 1:-1].min() == 200 and out.mean() > 195  # antialiasing blurs the edge
    square = np.arange(256 * 256 * 3, dtype=np.uint8).reshape(256, 256, 3)
    assert np.array_equal(cl.prepare(square), square)


# --- a fake classifier on a labelled folder ---------------------------------------------------
class Fake:
    """Predicts class 1 for bright images (mean > 0.5), else 0; counts its images."""

    name = "fake"
    calls = 0

    def predict(self, images):  # noqa: ANN001, ANN201
        Fake.calls += len(images)
        top1 = np.array([int(cl.as_float(x).mean() > 0.5) for x in images], dtype=np.int64)
        return top1, np.stack([np.r_[t, np.arange(2, 6)] for t in top1])


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[Fake]:
    Fake.calls = 0
    monkeypatch.setattr(cl, "get_classifier", lambda name=cl.DEFAULT_CLASSIFIER: Fake())
    cl._INPUTS.clear()
    return Fake


def _folder(root: Path, levels: list[int], labels: list[int] | None) -> str:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, level in enumerate(levels):
        img = np.clip(level + rng.normal(0, 3, (96, 128, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / f"im{k}.png")
    if labels is not None:
        rows = "".join(f"im{k}.png,{lab}\n" for k, lab in enumerate(labels))
        (root / "labels.csv").write_text("file,label\n" + rows)
    return f"folder:{root}"


def test_top1_agreement_and_cache(tmp_path: Path, fake: type[Fake]) -> None:
    # brightness 40, 220, 60, 200 -> predictions 0, 1, 0, 1; labels 0, 1, 1, 1 -> 3/4 right
    ds = _folder(tmp_path / "data", [40, 220, 60, 200], [0, 1, 1, 1])
    out = tmp_path / "out"
    ref = cl.classify("none", ds, out=out)
    assert not ref.cached
    assert ref.top1 == 0.75 and ref.agreement == 1.0
    assert ref.data["top1_ci"] == pytest.approx(list(cl.wilson(3, 4)))
    assert ref.per_image("pred") == [0, 1, 0, 1]
    assert ref.data["n_images"] == 4 and ref.data["n_labelled"] == 4
    assert ref.bpp == 24.0
    # severity-5 brightness makes every image bright: predictions 1, 1, 1, 1
    dark = cl.classify("none", ds, corruption="brightness", severity=5, out=out)
    preds = dark.per_image("pred")
    assert preds == [1, 1, 1, 1]
    assert (dark.agreement, dark.top1) == (0.5, 0.75)
    assert dark.per_image("ref_pred") == [0, 1, 0, 1]
    assert dark.agreement == np.mean(np.equal(preds, [0, 1, 0, 1]))
    assert dark.top1 == np.mean(np.equal(preds, [0, 1, 1, 1]))
    calls = Fake.calls
    again = cl.classify("none", ds, corruption="brightness", severity=5, out=out)
    assert again.cached and Fake.calls == calls and again.data == dark.data
    saved = json.loads(again.path.read_text())
    assert saved["key"] == again.path.parent.name and saved["corruption"] == "brightness"
    assert not list(out.rglob("*.tmp"))


def test_per_image_rate_matching(tmp_path: Path, fake: type[Fake]) -> None:
    ds = _folder(tmp_path / "data", [40, 220], None)
    targets = {"im0": 0.3, "im1": 1.2}
    res = cl.classify("jpeg2000", ds, bpp=targets, out=tmp_path / "out")
    assert res.top1 is None and res.data["top1_ci"] == [None, None]
    bpps = res.bpp_by_image()
    for k, t in targets.items():
        assert 0.5 * t < bpps[k] <= t * 1.05
    assert res.data["config"]["codec"]["targets"] == targets
    assert res.data["config"]["codec"]["rate_control"] == "per-image target"
    with pytest.raises(UsageError, match="no bpp target"):
        cl.classify("jpeg2000", ds, bpp={"im0": 0.3}, out=tmp_path / "out")


@pytest.mark.skipif(NO_FFMPEG is not None, reason=NO_FFMPEG or "")
def test_ffmpeg_jpeg2000_codes_a_chunk_in_one_batch(
    tmp_path: Path, fake: type[Fake], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chapter 5 on the paper's JPEG2000 path (#14): a chunk's images, each at its own bpp or
    PSNR target, cost one ffmpeg encode and one decode (per round of the PSNR search), and give
    what coding them one by one gives."""
    from nicspec_utils.codecs import get_codec
    from nicspec_utils.codecs import jpeg2000_ffmpeg as jf

    ds = _folder(tmp_path / "data", [40, 220, 90], None)
    images = [cl.prepare(np.array(Image.open(tmp_path / "data" / "images" / f"im{k}.png")))
              for k in range(3)]  # fmt: skip
    targets = {"im0": 0.3, "im1": 1.2, "im2": 0.6}
    runs: list[list[str]] = []
    real = jf._run

    def counting(cmd, timeout, cwd=None):  # noqa: ANN001, ANN202
        runs.append(cmd)
        return real(cmd, timeout, cwd)

    monkeypatch.setattr(jf, "_run", counting)
    res = cl.classify("jpeg2000-ffmpeg", ds, bpp=targets, out=tmp_path / "out")
    assert len(runs) == 2  # one encode, one decode for the three images at three ratios
    for k, rec in enumerate(res.data["per_image"]):
        one = get_codec("jpeg2000-ffmpeg", bpp=targets[f"im{k}"]).compress(images[k])
        assert rec["bpp"] == one.bpp and rec["setting"] == one.setting
        assert rec["psnr"] == cl._psnr_8bit(one.reconstruction, images[k])
    psnrs = [("im0", 30.0), ("im1", 34.0), ("im2", 32.0)]
    runs.clear()
    res = cl.classify("jpeg2000-ffmpeg", ds, codec_options={"target_psnr": psnrs},
                      out=tmp_path / "out")  # fmt: skip
    batched = len(runs)
    runs.clear()
    codec = get_codec("jpeg2000-ffmpeg", target_psnr=psnrs)
    ones = [codec.compress(im) for im in images]
    assert batched < len(runs)
    assert [r["setting"] for r in res.data["per_image"]] == [r.setting for r in ones]
    assert [r["bpp"] for r in res.data["per_image"]] == [r.bpp for r in ones]


def test_no_labels_gives_null_top1(tmp_path: Path, fake: type[Fake]) -> None:
    ds = _folder(tmp_path / "data", [40, 220], None)
    res = cl.classify("jpeg2000", ds, bpp=0.8, out=tmp_path / "out")
    assert res.top1 is None and res.agreement == 1.0
    assert 0.6 < res.bpp <= 0.85


def test_paired_table_and_claim(tmp_path: Path) -> None:
    def result(flags: list[int]) -> cl.Result:
        per = [{"correct": bool(f), "agree": bool(f), "bpp": 0.5} for f in flags]
        data = {"per_image": per, "bpp": 0.5, "n_images": len(flags), "n_labelled": len(flags)}
        return cl.Result(tmp_path, data, True)

    ones, zeros = [1] * 20, [0] * 20
    grid = {
        ("clean", "NIC m"): result(ones),
        ("clean", "JPEG2000 @ m"): result(ones),
        ("gaussian_noise", "NIC m"): result(ones),
        ("gaussian_noise", "JPEG2000 @ m"): result(zeros),
        ("fog", "NIC m"): result(zeros),
        ("fog", "JPEG2000 @ m"): result(zeros),
    }
    paired = ch.paired_table(grid, ["m"], n_boot=200)
    high = paired[paired["group"] == "high"].iloc[0]
    assert high["difference"] == 1.0 and high["ci_low"] == 1.0
    assert high["NIC only"] == 20 and high["mcnemar_p"] < 1e-5
    checks = ch.old_checks(paired)
    assert checks == {"direction": [True], "significant": [True], "specific": [True]}
    assert ch.old_verdict(checks) == "reproduced"
    assert ch.old_verdict({"direction": [True], "significant": [False]}).startswith("same")
    assert ch.old_verdict({"direction": [False], "significant": [False]}) == "not reproduced"


# --- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "code", "needle"),
    [
        (["--classifier", "vgg"], 2, "unknown classifier"),
        (["--dataset", "nope"], 2, "unknown dataset"),
        (["--codec", "zzz"], 2, "unknown codec"),
        (["--corruption", "smog", "--severity", "3"], 2, "unknown corruption"),
        (["--corruption", "fog", "--severity", "7"], 2, "out of range"),
        (["--corruption", "fog"], 2, "needs --severity"),
        (["--codec", "jpeg2000", "--bpp", "-1"], 2, "bpp"),
        (["--images", "nothere"], 2, "no image"),
        (["--psnr-from", "run.json"], 2, "JPEG2000 only"),
        (["--codec", "jpeg2000", "--psnr-from", "nothere.json"], 1, "not a nicspec classify"),
    ],
)
def test_cli_bad_input(
    extra: list[str], code: int, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["classify", "--dataset", "kodak", "--limit", "2", "--out", str(tmp_path / "o")]
    assert cli.main([*argv, *extra, "--no-progress"]) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nicspec: error: ") and needle in lines[0]
    assert not (tmp_path / "o").exists()


def test_cli_unwritable_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = ["classify", "--dataset", "kodak", "--limit", "1", "--out", str(blocker / "o")]
    assert cli.main([*argv, "--no-progress"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nicspec: error: cannot write results")
    assert blocker.read_text() == "not a folder"


def test_resnet50_offline_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import ResNet50_Weights

    def offline(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        print("Downloading: something")  # what torch prints before it fails
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(type(ResNet50_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    cl.get_classifier.cache_clear()
    try:
        with pytest.raises(
            DataError, match=r"^resnet50: cannot get the ImageNet weights .*URLError"
        ):
            cl.get_classifier("resnet50")
        ok, why = cl.available("resnet50")
        assert not ok and "\n" not in why
    finally:
        cl.get_classifier.cache_clear()


# --- end to end, the real classifier --------------------------------------------------------------
def test_end_to_end_imagenet(mirror: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    from nicspec_utils.data import get_dataset

    ids = get_dataset("imagenet-val-subset").image_ids[:2]
    ref = cl.classify("none", "imagenet-val-subset", ids, out=out)
    assert ref.data["classifier"] == "efficientnet-lite0" and ref.data["n_images"] == 2
    assert ref.top1 is not None and ref.agreement == 1.0
    assert all(0 <= p < 1000 for p in ref.per_image("pred"))
    j2k = cl.classify("jpeg2000", "imagenet-val-subset", ids, bpp=1.0, out=out)
    assert j2k.per_image("ref_pred") == ref.per_image("pred")
    assert 0.7 < j2k.bpp <= 1.05
    for key in ("top1", "agreement", "n_images", "per_image", "top1_ci", "agreement_ci"):
        assert key in j2k.data


def test_console_command_and_cache(mirror: Path, tmp_path: Path) -> None:
    src = REPO / "data" / "kodak"
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("kodim01.png", "kodim02.png"):
        (folder / name).write_bytes((src / name).read_bytes())
    (folder / "labels.csv").write_text("file,label\nkodim01.png,1\n")
    cmd = [sys.executable, "-m", "nicspec_utils.cli", "classify", "--dataset", f"folder:{folder}"]
    cmd += ["--codec", "jpeg2000", "--bpp", "0.5", "--out", str(tmp_path / "o"), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert first.returncode == 0, first.stderr
    path = Path(first.stdout.splitlines()[0])
    data = json.loads(path.read_text())
    assert data["n_images"] == 2 and data["n_labelled"] == 1
    assert data["top1"] in (0.0, 1.0) and data["per_image"][1]["correct"] is None
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert second.returncode == 0 and second.stdout.strip().endswith("(cached)")
    assert json.loads(path.read_text()) == data


# --- the grid: one task per condition, matched in bpp and in PSNR -------------------------------
class FakeNic:
    """A 'NIC' that returns its input darkened by 8 levels, at 1 bpp."""

    name = "nic:fake"
    version = "1"

    def config(self) -> dict[str, object]:
        return {"codec": self.name, "version": self.version}

    def compress(self, image: np.ndarray) -> CodecResult:
        rec = np.clip(image.astype(np.float32) - 8, 0, 255) / np.float32(255)
        return CodecResult(b"", rec, bits=float(image.shape[0] * image.shape[1]))

    def compress_batch(self, images: list[np.ndarray]) -> list[CodecResult]:
        return [self.compress(x) for x in images]


@pytest.fixture
def fake_nic(monkeypatch: pytest.MonkeyPatch) -> None:
    from nicspec_utils.engines import evaluate

    real = evaluate.get_codec

    def get_codec(name: str, quality=None, bpp=None, **options):  # noqa: ANN001, ANN003, ANN202
        if name == "nic:fake":
            return FakeNic()
        return real(name, quality=quality, bpp=bpp, **options)

    monkeypatch.setattr(evaluate, "get_codec", get_codec)


def test_grid_corrupts_once_per_condition_and_matches_psnr(
    tmp_path: Path, fake: type[Fake], fake_nic: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nicspec_utils.corruptions as corruptions

    real, calls = corruptions.corrupt, []

    def counting(image, name, severity, seed=0):  # noqa: ANN001, ANN202
        calls.append(name)
        return real(image, name, severity, seed=seed)

    monkeypatch.setattr(corruptions, "corrupt", counting)
    ds = _folder(tmp_path / "data", [40, 220, 60], [0, 1, 1])
    conds = [None, "gaussian_noise", "fog"]
    args = (ds, ["im0", "im1", "im2"], ["fake"], conds, 3)
    grid = cl.run_grid(*args, out=tmp_path / "out", psnr=[None, "gaussian_noise"])
    # every system of a condition saw the same corrupted images, made once
    assert sorted(calls) == ["fog"] * 3 + ["gaussian_noise"] * 3
    systems = {s for _, s in grid}
    assert systems == {"none", "NIC fake", "JPEG2000 @ fake", "JPEG2000 @ fake (PSNR)"}
    assert ("fog", "JPEG2000 @ fake (PSNR)") not in grid
    nic, j2k = grid["gaussian_noise", "NIC fake"], grid["gaussian_noise", "JPEG2000 @ fake (PSNR)"]
    targets = dict(nic.psnr_targets())
    assert j2k.data["config"]["codec"]["rate_control"] == "per-image PSNR"
    assert j2k.data["config"]["codec"]["target_psnr"] == [
        [i, round(p, 6)] for i, p in targets.items()
    ]
    # each image at the ratio nearest its target: within the tolerance, or (the PSNR jumps
    # between two neighbouring ratios) close to it, and then left out of the PSNR pairs
    gaps = [abs(rec["psnr"] - targets[rec["id"]]) for rec in j2k.data["per_image"]]
    assert max(gaps) < 0.25 and any(g <= PSNR_TOL for g in gaps)
    a, _ = ch._pair(grid, "fake", ["gaussian_noise"], "top1", "psnr")
    assert list(np.isnan(a[:, 0])) == [g > PSNR_TOL + 1e-6 for g in gaps]
    assert grid["clean", "none"].per_image("psnr") == [None] * 3  # lossless: no PSNR
    # a rerun reads every configuration back: nothing classified, nothing corrupted
    seen = Fake.calls
    again = cl.run_grid(*args, out=tmp_path / "out", psnr=[None, "gaussian_noise"])
    assert Fake.calls == seen and len(calls) == 6 and all(r.cached for r in again.values())
    assert {k: r.data for k, r in again.items()} == {k: r.data for k, r in grid.items()}
    key, hit = cl.probe("nic:fake", ds, ["im0", "im1", "im2"], out=tmp_path / "out")
    assert hit is not None and hit.key == key == grid["clean", "NIC fake"].key
    with pytest.raises(UsageError, match="not in the grid"):
        cl.run_grid(*args, out=tmp_path / "out", psnr=["shot_noise"])


def _result(tmp_path: Path, flags: list[int], psnr: list[float | None] | None = None) -> cl.Result:
    psnr = psnr or [30.0] * len(flags)
    per = [{"correct": bool(f), "agree": bool(f), "bpp": 0.5, "psnr": p}
           for f, p in zip(flags, psnr, strict=True)]  # fmt: skip
    data = {"per_image": per, "bpp": 0.5, "n_images": len(flags), "n_labelled": len(flags)}
    return cl.Result(tmp_path, data, True)


def test_psnr_matching_drops_pairs_out_of_reach(tmp_path: Path) -> None:
    ones, zeros = [1] * 10, [0] * 10
    far = [30.0] * 8 + [31.0, 29.0]  # two images JPEG2000 could not bring to the NIC's PSNR
    grid = {
        ("clean", "NIC m"): _result(tmp_path, ones),
        ("clean", "JPEG2000 @ m"): _result(tmp_path, ones),
        ("clean", "JPEG2000 @ m (PSNR)"): _result(tmp_path, ones),
        ("shot_noise", "NIC m"): _result(tmp_path, ones),
        ("shot_noise", "JPEG2000 @ m"): _result(tmp_path, zeros),
        ("shot_noise", "JPEG2000 @ m (PSNR)"): _result(tmp_path, zeros, far),
    }
    assert ch.matchings_of(grid, ["m"]) == ["bpp", "psnr"]
    bpp = ch.paired_table(grid, ["m"], n_boot=200)
    psnr = ch.paired_table(grid, ["m"], n_boot=200, matching="psnr")
    assert list(bpp["pairs"]) == [10, 10] and list(psnr["pairs"]) == [10, 8]
    match = ch.match_table(grid, ["m"]).set_index("matched in")
    assert match.loc["psnr", "within tolerance"] == "18 of 20"
    table = ch.claim_table(grid, ["m"], n_boot=200, matching="psnr")
    assert list(table["n_clusters"]) == [8, 8] and (table["verdict"] == "reproduced").all()


def test_findings_in_the_stats_model(tmp_path: Path) -> None:
    """Verdicts from the interval only; the former rule's verdict and numbers beside them."""
    rng = np.random.default_rng(0)
    n = 12
    nic = [int(v) for v in rng.random(n) < 0.6]
    j2k = [int(v) for v in rng.random(n) < 0.4]
    grid = {
        ("clean", "NIC m"): _result(tmp_path, [1] * n),
        ("clean", "JPEG2000 @ m"): _result(tmp_path, [1] * n),
        ("gaussian_noise", "NIC m"): _result(tmp_path, nic),
        ("gaussian_noise", "JPEG2000 @ m"): _result(tmp_path, j2k),
    }
    studies = {"top-1": (grid, "top1"), "agreement, Kodak": ({}, "agreement")}
    checks = ch.study_checks(studies, ["m"], n_boot=500)
    assert list(checks["claim"]) == ["3 (top-1)", "3 (top-1, specific)"]
    high = checks.iloc[0]
    est = S.paired_effect(np.subtract(nic, j2k, dtype=float)[:, None], n_boot=500)
    assert (high["effect"], high["ci_low"], high["ci_high"]) == (est.mean, est.ci_low, est.ci_high)
    assert high["verdict"] == S.verdict(est, 1) and high["n_images"] == n
    clustered = S.clustered_mcnemar(np.array(nic) > 0, np.array(j2k) > 0, np.arange(n))["p"]
    assert high["clustered_p"] == pytest.approx(clustered)
    was, paired = ch.old_verdicts(studies, ["m"], n_boot=500)
    assert was["3 (top-1)"] == ch.old_verdict(ch.old_checks(paired))
    old = paired[paired["group"] == "high"].iloc[0]
    assert old["difference"] == high["effect"] and old["ci_low"] == high["ci_low"]
    text = ch.changes_markdown(checks, was, paired)
    assert f"was **{was['3 (top-1)']}**" in text and "pooled McNemar p" in text
    assert "clustered McNemar p" in text
    grid_v = ch.verdict_grid(checks).set_index("claim")
    assert grid_v.loc["3 (top-1)", "matched bpp"] == high["verdict"]


def test_keep_heap_applies_on_glibc() -> None:
    """The malloc setting that spares the classifier's and NIC's page faults (Linux / glibc)."""
    import platform

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert cl.keep_heap() is expected
    assert cl.keep_heap() is expected  # once per process, then cached
    from nicspec_utils.runtime import keep_heap

    assert keep_heap is cl.keep_heap  # one home (runtime), used by the NIC codecs too


def test_group_bars_pair_each_nic_model_with_its_jpeg2000_by_colour() -> None:
    """plot_groups: a NIC model and the JPEG2000 matched to it share a colour (the JPEG2000
    lighter and hatched), and two models differ (labels.style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.colors import to_hex
    from matplotlib.container import BarContainer

    from nicspec_utils.labels import colour

    systems = ["none", "NIC sh-mse-0.0067", "JPEG2000 @ sh-mse-0.0067", "NIC sh-mse-0.018",
               "JPEG2000 @ sh-mse-0.018"]  # fmt: skip
    table = pd.DataFrame(
        [
            {"group": g, "system": s, "top1": 0.5, "ci_low": 0.4, "ci_high": 0.6}
            for g in ("clean", "high")
            for s in systems
        ]  # fmt: skip
    )
    fig = ch.plot_groups(table, "top1")
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    edge = {c.get_label(): to_hex(c.patches[0].get_edgecolor()) for c in bars}
    hatch = {c.get_label(): c.patches[0].get_hatch() for c in bars}
    for model in ("sh-mse-0.0067", "sh-mse-0.018"):
        assert edge[f"NIC {model}"] == edge[f"JPEG2000 @ {model}"] == colour(model)
        assert hatch[f"JPEG2000 @ {model}"] and not hatch[f"NIC {model}"]
    assert edge["NIC sh-mse-0.0067"] != edge["NIC sh-mse-0.018"]
    plt.close(fig)


def test_grid_codes_with_the_chosen_jpeg2000_path(monkeypatch):
    """Chapter 5's grid takes its JPEG2000 path as a parameter (issue #18: the paper's ffmpeg
    path where installed); a PSNR-matched result knows the tolerance it was matched to."""
    calls: list[tuple[str, dict]] = []

    def fake(codec, dataset, ids, **kw):
        calls.append((codec, kw))
        codec_cfg = {"psnr_tol": 0.25} if "codec_options" in kw else {}
        data = {"per_image": [{"id": i, "bpp": 0.5, "psnr": 30.0} for i in ids],
                "config": {"codec": codec_cfg}}  # fmt: skip
        return cl.Result(Path("x/classify.json"), data, True)

    monkeypatch.setattr(cl, "classify", fake)
    grid = cl.make_grid("kodak", ["kodim01"], ["sh-mse-0.0067"], [None], 3, psnr=[None],
                        j2k="jpeg2000-ffmpeg")  # fmt: skip
    out = grid.condition(None)
    assert [c for c, _ in calls] == ["none", "nic:sh-mse-0.0067", "jpeg2000-ffmpeg",
                                     "jpeg2000-ffmpeg"]  # fmt: skip
    assert out[cl.j2k_system("sh-mse-0.0067", "psnr")].psnr_tol == 0.25
    assert out[cl.j2k_system("sh-mse-0.0067")].psnr_tol == PSNR_TOL
    assert cl.make_grid("kodak", ["kodim01"], ["m"], [None], 3).j2k == "jpeg2000"


def test_the_imagenet_aggregate_travels_without_the_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ImageNet study's summary (its tables and checks, no per-image record) survives its
    JSON form exactly as the chapter uses it, and is served from the results folder, else from
    a bundle's caches (marked served, noted in the uses log), else not at all (nothing noted)."""
    import pandas as pd

    from nicspec_utils import store

    rng = np.random.default_rng(1)
    n = 12
    grid = {
        ("clean", "none"): _result(tmp_path, [1] * n),
        ("clean", "NIC m"): _result(tmp_path, [1] * n),
        ("clean", "JPEG2000 @ m"): _result(tmp_path, [1] * n),
        ("gaussian_noise", "NIC m"): _result(tmp_path, [int(v) for v in rng.random(n) < 0.6]),
        ("gaussian_noise", "JPEG2000 @ m"): _result(
            tmp_path, [int(v) for v in rng.random(n) < 0.4]
        ),
    }
    for (cond, system), res in grid.items():
        res.data.update(top1=0.5, top1_ci=[0.25, 0.75], agreement=0.5, agreement_ci=[0.2, 0.8],
                        classifier="c", key=f"{cond}-{system}")  # fmt: skip
    clean = pd.DataFrame([{"classifier": "c", "images": n, "top-1": 0.5}])
    monkeypatch.setattr(ch, "clean_table", lambda *a, **k: (clean, ["r: not available here"]))
    config = ch.summary_config(
        "imagenet-val-subset", None, ["m"], ["gaussian_noise"], 3, classifier="c",
        clean_classifiers=["c", "r"], estimate=True, psnr_matching="none", j2k="jpeg2000",
        n_boot=300, seed=0,
    )  # fmt: skip
    summary = ch.summarise_imagenet(config, "imagenet-val-subset", [f"i{k}" for k in range(n)],
                                    grid, ["m"])  # fmt: skip
    back = ch.ImagenetSummary.from_json(json.loads(json.dumps(summary.to_json())))
    for name in ("clean", "top1", "match", "groups", "checks", "old_paired"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(summary, name),
                                      check_dtype=False, check_names=False)  # fmt: skip
    assert back.was == summary.was and back.matchings == ["bpp"] and back.n_images == n
    assert "per_image" not in json.dumps(summary.to_json())
    studies = {"top-1": (grid, "top1"), "agreement": (grid, "agreement"),
               "agreement, Kodak": ({}, "agreement")}  # fmt: skip
    checks, was, _ = ch.all_checks(back, {}, ["m"], n_boot=300)
    pd.testing.assert_frame_equal(checks, ch.study_checks(studies, ["m"], n_boot=300),
                                  check_dtype=False)  # fmt: skip
    assert was == ch.old_verdicts(studies, ["m"], n_boot=300)[0]

    results, bundles = tmp_path / "results", tmp_path / "bundles"
    monkeypatch.setenv("NICSPEC_RESULTS", str(results))
    monkeypatch.setattr(store, "bundles_root", lambda: bundles)
    log = tmp_path / "uses.keys"
    log.write_text("")
    monkeypatch.setenv(store.USES_ENV, str(log))
    assert ch.served_summary(config, results) is None and log.read_text() == ""
    ch.save_summary(summary, results)
    here = ch.served_summary(config, results)
    assert here is not None and not here.served and "imagenet_summaries/" in log.read_text()
    rel = ch.summary_path(config, results).relative_to(results)
    copy = bundles / "paper" / store.BUNDLE_CACHES / rel
    copy.parent.mkdir(parents=True)
    ch.summary_path(config, results).replace(copy)
    (bundles / "paper" / store.BUNDLE_MANIFEST).write_text("{}")
    served = ch.served_summary(config, results)
    assert served is not None and served.served and "(aggregate)" in log.read_text()
    assert "aggregate" in ch.imagenet_note(served, "imagenet-val-subset", [])
    assert ch.served_summary({**config, "seed": 1}, results) is None
