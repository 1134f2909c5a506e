"""Training: exact resume, pruning schedule, variable rate, MS-SSIM, recipes and `nicspec train`."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import nicspec_utils.nic.train as tr
from nicspec_utils import data
from nicspec_utils.cli import main
from nicspec_utils.errors import DataError, Interrupted, UsageError
from nicspec_utils.nic import models
from nicspec_utils.nic.train import Recipe, cubic_sparsity, load_recipes, lr_at, train


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Folder datasets of Kodak crops: six 128x128 (MSE) and four 192x192 (MS-SSIM)."""
    from nicspec_utils.io import write_png_atomic

    root = tmp_path_factory.mktemp("train-images")
    kodak = data.get_dataset("kodak")
    for i, image_id in enumerate(kodak.image_ids[:6]):
        img = kodak.load(image_id)
        write_png_atomic(root / "small" / f"s{i}.png", img[100:228, 200:328])
        if i < 4:
            write_png_atomic(root / "large" / f"l{i}.png", img[100:292, 200:392])
    return {"small": f"folder:{root / 'small'}", "large": f"folder:{root / 'large'}"}


def _write_recipes(path: Path, images: dict[str, str], recipes: dict[str, Any]) -> Path:
    defaults = {
        "architecture": "scale-hyperprior", "N": 16, "M": 24, "metric": "mse",
        "batch_size": 2, "crop": 64, "lr": 1.0e-3, "lr_milestones": [0.5], "lr_gamma": 0.1,
        "warmup_steps": 2, "aux_lr": 1.0e-3, "clip_grad_norm": 1.0, "seed": 7,
        "train_data": [images["small"]], "val_data": images["small"], "val_every": 1000,
        "checkpoint_every": 3, "ship": True, "steps": 6, "lmbda": 0.01,
    }  # fmt: skip
    path.write_text(yaml.safe_dump({"defaults": defaults, "recipes": recipes}))
    return path


def _recipe(tmp_path: Path, images: dict[str, str], name: str, **params: Any) -> Recipe:
    path = _write_recipes(tmp_path / f"recipes-{name}.yaml", images, {name: params})
    return load_recipes(path)[name]


def _run(recipe: Recipe, root: Path, **kw: Any) -> Path:
    return train(recipe, runs_dir=root / "runs", models_dir=root / "models", progress=False, **kw)


def _log(root: Path, name: str) -> list[dict[str, str]]:
    with (root / "runs" / name / "log.csv").open(newline="") as f:
        return list(csv.DictReader(f))


# --- resume ------------------------------------------------------------------------------------


class _Interrupted(Exception):
    pass


def _raise_interrupted() -> None:
    raise _Interrupted


def _in_step(step: int, action: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make training call ``action`` at the start of ``step`` (its loss computation)."""
    real, calls = tr.rate_distortion, {"n": 0}

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == step:
            action()
        return real(*args, **kwargs)

    monkeypatch.setattr(tr, "rate_distortion", wrapped)


VR = {"architecture": "scale-hyperprior-vr", "lmbda": None, "lmbda_min": 0.002, "lmbda_max": 0.05}
PRUNE = {"prune": {"final_sparsity": 0.5, "start": 0.2, "end": 0.6, "every": 2}}


@pytest.mark.parametrize("kind", ["fixed", "variable-rate", "pruned"])
def test_resume_is_exact(
    kind: str, tmp_path: Path, images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """6 steps straight == 3 steps, a crash in step 4, then resume to 6: same log, same weights.

    Covers every piece of restored state: weights, both optimisers, the crop sampler's and the
    global RNG (noise quantisation), the lambda RNG (variable rate) and the pruning masks.
    """
    extra = {"fixed": {}, "variable-rate": VR, "pruned": PRUNE}[kind]
    recipe = _recipe(tmp_path, images, "r", **extra)
    straight = _run(recipe, tmp_path / "a", log_every=1)

    real = tr.rate_distortion
    _in_step(4, _raise_interrupted, monkeypatch)
    with pytest.raises(_Interrupted):
        _run(recipe, tmp_path / "b", log_every=1)
    monkeypatch.setattr(tr, "rate_distortion", real)
    state = torch.load(tmp_path / "b" / "runs" / "r" / "last.pt", weights_only=True)
    assert state["step"] == 3 and not (tmp_path / "b" / "models" / "r.safetensors").exists()
    assert [row["step"] for row in _log(tmp_path / "b", "r")] == ["1", "2", "3"]
    resumed = _run(recipe, tmp_path / "b", log_every=1)

    def strip(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in rows]

    log_a, log_b = _log(tmp_path / "a", "r"), _log(tmp_path / "b", "r")
    assert [row["step"] for row in log_a] == [str(i) for i in range(1, 7)]
    assert strip(log_a) == strip(log_b)
    assert log_a[-1]["loss"] == log_b[-1]["loss"] and log_a[-1]["val_loss"] != ""
    # the schedule was applied across the resume: warm-up, then the milestone at half-way
    lrs = [float(row["lr"]) for row in log_b]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 1e-4, 1e-4, 1e-4])
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa = torch.load(tmp_path / "a" / "runs" / "r" / "last.pt", weights_only=True)["model"]
    sb = torch.load(tmp_path / "b" / "runs" / "r" / "last.pt", weights_only=True)["model"]
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    # training moved the weights (the test would be vacuous otherwise)
    torch.manual_seed(int(recipe["seed"]))
    fresh = models.transform_weights(tr._build(recipe))
    assert not any(torch.equal(w, sa[key]) for key, w in fresh.items())


def test_sigterm_saves_the_state_and_the_rerun_resumes_exactly(
    tmp_path: Path, images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM during step 4 finishes that step, saves it (the recipe's interval is 3) and
    stops with exit code 130; the rerun ends with the weights of an uninterrupted run."""
    recipe = _recipe(tmp_path, images, "s")
    straight = _run(recipe, tmp_path / "a")
    real = tr.rate_distortion
    _in_step(4, lambda: os.kill(os.getpid(), signal.SIGTERM), monkeypatch)
    with pytest.raises(Interrupted, match="stopped by SIGTERM at step 4") as stopped:
        _run(recipe, tmp_path / "b")
    assert stopped.value.exit_code == 130
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back
    state = torch.load(tmp_path / "b" / "runs" / "s" / "last.pt", weights_only=True)
    assert state["step"] == 4 and not (tmp_path / "b" / "models" / "s.safetensors").exists()
    monkeypatch.setattr(tr, "rate_distortion", real)
    resumed = _run(recipe, tmp_path / "b")
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_every_overrides_the_recipe(
    tmp_path: Path, images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = _recipe(tmp_path, images, "k")
    _in_step(6, _raise_interrupted, monkeypatch)
    with pytest.raises(_Interrupted):
        _run(recipe, tmp_path, checkpoint_every=2)
    state = torch.load(tmp_path / "runs" / "k" / "last.pt", weights_only=True)
    assert state["step"] == 4  # the recipe's interval of 3 would have left step 3
    with pytest.raises(UsageError, match="at least 1 step"):
        _run(recipe, tmp_path / "z", checkpoint_every=0)


def test_time_budget_counts_the_time_before_a_resume(
    tmp_path: Path, images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed run whose earlier segments already used the budget stops at once and ships."""
    recipe = _recipe(tmp_path, images, "t")
    real = tr.rate_distortion
    _in_step(4, _raise_interrupted, monkeypatch)
    with pytest.raises(_Interrupted):
        _run(recipe, tmp_path)
    monkeypatch.setattr(tr, "rate_distortion", real)
    state_path = tmp_path / "runs" / "t" / "last.pt"
    state = torch.load(state_path, weights_only=True)
    assert state["step"] == 3
    state["elapsed_s"] = 500.0  # as if the first segment had trained for 500 s
    torch.save(state, state_path)
    shipped = _run(recipe, tmp_path, time_budget_s=500.0)
    meta = models.read_checkpoint_meta(shipped)
    assert meta["steps"] == 3 and meta["stopped_by_time_budget"] is True
    assert meta["wall_time_s"] >= 500.0


def test_finished_run_is_not_retrained(tmp_path: Path, images: dict[str, str]) -> None:
    recipe = _recipe(tmp_path, images, "f", steps=3)
    first = _run(recipe, tmp_path)
    before = load_file(str(first))
    again = _run(recipe, tmp_path)
    after = load_file(str(again))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [row["step"] for row in _log(tmp_path, "f")] == ["3"]


# --- pruning -----------------------------------------------------------------------------------


def test_pruning_follows_the_cubic_schedule(tmp_path: Path, images: dict[str, str]) -> None:
    prune = {"final_sparsity": 0.95, "start": 0.2, "end": 0.6, "every": 1}
    recipe = _recipe(tmp_path, images, "p", steps=10, prune=prune, checkpoint_every=100)
    out = _run(recipe, tmp_path, log_every=1)
    rows = _log(tmp_path, "p")
    measured = [float(row["sparsity"]) for row in rows]
    assert measured == sorted(measured) and measured[0] == 0.0
    # the row of step s was pruned at progress (s - 1) / steps
    for row, value in zip(rows, measured, strict=True):
        target = cubic_sparsity((int(row["step"]) - 1) / 10, 0.95, 0.2, 0.6)
        assert value == pytest.approx(target, abs=1e-3), row["step"]
    assert 0.95 - 1e-9 <= measured[-1] < 0.95 + 1e-3  # at least the target, never far above
    model, meta = models.load_checkpoint(out)
    assert meta["sparsity"] == pytest.approx(measured[-1])
    # fp16 storage can only add zeros
    assert 0.95 - 1e-9 <= models.sparsity(model) < 0.96
    assert meta["recipe"]["prune"] == prune


# --- variable rate, MS-SSIM --------------------------------------------------------------------


def test_variable_rate_training(tmp_path: Path, images: dict[str, str]) -> None:
    recipe = _recipe(
        tmp_path, images, "vr", architecture="scale-hyperprior-vr", lmbda=None,
        lmbda_min=0.002, lmbda_max=0.05, steps=4,
    )  # fmt: skip
    assert recipe.variable_rate
    out = _run(recipe, tmp_path)
    model, meta = models.load_checkpoint(out)
    assert meta["architecture"] == "scale-hyperprior-vr"
    assert (meta["lmbda_min"], meta["lmbda_max"]) == (0.002, 0.05) and meta["lmbda"] is None
    assert meta["steps"] == 4 and meta["n_training_images"] == 6
    assert math.isfinite(meta["final_val_loss"])
    assert isinstance(model, models.VariableRateScaleHyperprior)
    # the FiLM layers were trained (no longer the identity)
    film = [p for n, p in model.named_parameters() if n.startswith("film") and "net.2" in n]
    assert film and any(float(p.abs().max()) > 0 for p in film)
    model.set_lmbda(0.002)
    with pytest.raises(UsageError, match="outside"):
        model.set_lmbda(0.1)


def test_elic_trains_saves_loads_and_codes_through_checkpoint(
    tmp_path: Path, images: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A tiny ELIC (N=16, M=24): 2 training steps, a checkpoint, then `nicspec eval --codec
    checkpoint:` with real entropy coding, whose bpp is the bitstream's length."""
    from nicspec_utils.cache import read_json
    from nicspec_utils.codecs import get_codec

    recipe = _recipe(tmp_path, images, "elic-tiny", architecture="elic", steps=2)
    out = _run(recipe, tmp_path)
    model, meta = models.load_checkpoint(out)
    assert meta["architecture"] == "elic" and meta["steps"] == 2
    assert math.isfinite(meta["final_val_loss"])
    assert type(model).__name__ == "Elic2022Official" and model.groups == [1, 1, 2, 4, 16]
    # an ELIC checkpoint cannot start a hyperprior recipe (nor the other way round)
    with pytest.raises(DataError, match="cannot start recipe"):
        _run(_recipe(tmp_path, images, "sh", steps=1), tmp_path / "x", init_weights=out)

    codec = get_codec(f"checkpoint:{out}")
    image = data.get_dataset("kodak").load("kodim05")[:100, :150]  # padded to 128 x 192
    result = codec.compress(image)
    payload = len(result.bitstream) - result.header_bytes
    assert result.bits == 8 * payload > 0  # 11 strings: 5 groups x 2 checkerboard halves + z
    assert np.array_equal(codec.decode(result.bitstream), result.reconstruction)
    assert result.reconstruction.shape == (100, 150, 3)
    estimate = get_codec(f"checkpoint:{out}", estimate=True).compress(image)
    assert estimate.bits > 0 and estimate.reconstruction.shape == (100, 150, 3)

    argv = ["eval", "--codec", f"checkpoint:{out}", "--dataset", images["small"], "--limit", "1",
            "--no-progress", "--out", str(tmp_path / "results")]  # fmt: skip
    assert main(argv) == 0
    metrics = read_json(Path(capsys.readouterr().out.strip().splitlines()[0]))
    assert metrics["config"]["codec"]["architecture"] == "elic"
    assert metrics["config"]["codec"]["estimate"] is False
    assert metrics["bpp"] > 0 and math.isfinite(metrics["psnr"])


def test_family_recipes_for_the_gpu_scripts() -> None:
    assert tr.family_recipes("sh") == (
        ["sh-mse-0.0067"],
        [n for n, r in load_recipes().items() if r.get("ship") and r.get("init_from")],
    )
    bases, others = tr.family_recipes("elic")
    assert bases == ["elic-mse-0.0067"]
    assert sorted(others) == ["elic-mse-0.0025", "elic-mse-0.018", "elic-mse-0.0483"]
    for name in bases + others:
        r = load_recipes()[name]
        assert (r["N"], r["M"]) == (192, 320) and not r.get("ship"), name  # the paper's size
    with pytest.raises(UsageError, match="unknown model family 'bpg'"):
        tr.family_recipes("bpg")


def test_ms_ssim_training(tmp_path: Path, images: dict[str, str]) -> None:
    recipe = _recipe(
        tmp_path, images, "ms", metric="ms-ssim", lmbda=5.0, crop=192,
        train_data=[images["large"]], val_data=images["large"], steps=3,
    )  # fmt: skip
    out = _run(recipe, tmp_path, log_every=1)
    rows = _log(tmp_path, "ms")
    assert len(rows) == 3
    for row in rows:
        value = float(row["ms_ssim"])
        assert 0 < value <= 1
        # loss = lambda * (1 - MS-SSIM) + bpp (means over the batch)
        assert float(row["loss"]) == pytest.approx(5.0 * (1 - value) + float(row["bpp"]), rel=1e-4)
    assert models.read_checkpoint_meta(out)["metric"] == "ms-ssim"


def test_mse_loss_terms(tmp_path: Path, images: dict[str, str]) -> None:
    _run(_recipe(tmp_path, images, "l", steps=2), tmp_path, log_every=1)
    for row in _log(tmp_path, "l"):
        mse, bpp = float(row["mse"]), float(row["bpp"])
        assert float(row["loss"]) == pytest.approx(0.01 * 255**2 * mse + bpp, rel=1e-4)
        assert float(row["psnr"]) == pytest.approx(10 * math.log10(1 / mse))
        assert row["ms_ssim"] == "" and row["sparsity"] == ""


# --- errors ------------------------------------------------------------------------------------


def test_init_from_a_missing_source(tmp_path: Path, images: dict[str, str]) -> None:
    recipe = _recipe(tmp_path, images, "child", init_from="ghost")
    with pytest.raises(DataError, match="ghost, which is not trained yet"):
        _run(recipe, tmp_path)
    assert not (tmp_path / "models" / "child.safetensors").exists()


def test_init_weights_continues_a_checkpoint(tmp_path: Path, images: dict[str, str]) -> None:
    recipe = _recipe(tmp_path, images, "c", steps=3)
    first = _run(recipe, tmp_path / "a")
    first_meta = models.read_checkpoint_meta(first)
    out = _run(recipe, tmp_path / "b", init_weights=first)
    meta = models.read_checkpoint_meta(out)
    # the continued model counts the steps and time of both segments
    assert meta["steps"] == 6 and meta["continued_from"]["steps"] == 3
    assert meta["wall_time_s"] >= first_meta["wall_time_s"]
    assert meta["init_weights"] == str(first)
    assert [int(r["step"]) for r in _log(tmp_path / "b", "c")][-1] == 6
    # a second continuation keeps the whole chain of segments, the first one included
    again = models.read_checkpoint_meta(_run(recipe, tmp_path / "c", init_weights=out))
    assert again["steps"] == 9 and again["continued_from"]["steps"] == 6
    assert again["continued_from"]["continued_from"]["steps"] == 3
    assert again["continued_from"]["continued_from"]["hardware"] == first_meta["hardware"]
    # and it really started from the first model's weights
    start = models.load_checkpoint(first)[0].state_dict()
    fresh = _run(recipe, tmp_path / "fresh")
    a, b = load_file(str(out)), load_file(str(fresh))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert start  # loaded without error


def test_ship_a_continuation(
    tmp_path: Path, images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nicspec_utils.io import sha256_file
    from nicspec_utils.nic import modelcard

    recipe = _recipe(tmp_path, images, "t", steps=3)
    shipped = _run(recipe, tmp_path / "ship")  # plays data/models
    (tmp_path / "ship" / "models" / "logs").mkdir()
    (tmp_path / "ship" / "runs" / "t" / "log.csv").rename(
        tmp_path / "ship" / "models" / "logs" / "t.csv"
    )
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path / "ship" / "models")
    first_sha = sha256_file(shipped)
    stale = _run(recipe, tmp_path / "stale", init_weights=shipped)
    cont = _run(recipe, tmp_path / "cont", init_weights=shipped, steps=4, log_every=1)
    with pytest.raises(UsageError, match="no training log at"):
        modelcard.ship(cont)
    assert modelcard.ship(cont, log=tmp_path / "cont" / "runs" / "t" / "log.csv") == shipped
    meta = models.read_checkpoint_meta(shipped)
    assert meta["steps"] == 7 and meta["continued_from"]["sha256"] == first_sha
    steps = [int(r["step"]) for r in tr.read_log(shipped.parent / "logs" / "t.csv")]
    assert steps == [3, 4, 5, 6, 7]  # the shipped rows, then the continuation's
    # a continuation trained before chains were kept gets the shipped file's history on shipping
    old = _run(recipe, tmp_path / "old", init_weights=shipped, steps=1)
    old_meta = models.read_checkpoint_meta(old)
    del old_meta["continued_from"]["continued_from"]
    save_file(load_file(str(old)), str(old), {"nicspec": json.dumps(old_meta)})
    modelcard.ship(old, log=tmp_path / "old" / "runs" / "t" / "log.csv")
    chain = models.read_checkpoint_meta(shipped)["continued_from"]
    assert chain["steps"] == 7 and chain["continued_from"]["steps"] == 3
    # a branch started from the file shipped before is refused: it would undo newer work
    stale_log = tmp_path / "stale" / "runs" / "t" / "log.csv"
    with pytest.raises(UsageError, match="does not continue the shipped t"):
        modelcard.ship(stale, log=stale_log)
    assert models.read_checkpoint_meta(shipped)["steps"] == 8
    assert main(["models", "ship", str(stale), "--log", str(stale_log)]) == 2
    modelcard.ship(stale, log=stale_log, replace=True)
    assert models.read_checkpoint_meta(shipped)["steps"] == 6


def test_init_weights_errors(tmp_path: Path, images: dict[str, str], capsys: Any) -> None:
    recipe = _recipe(tmp_path, images, "e", steps=2)
    with pytest.raises(DataError, match="no such checkpoint"):
        _run(recipe, tmp_path, init_weights=tmp_path / "ghost.safetensors")
    fixed = _run(recipe, tmp_path / "fixed")
    vr = _recipe(tmp_path, images, "v", steps=2, **VR)
    with pytest.raises(DataError, match="cannot start recipe v"):
        _run(vr, tmp_path, init_weights=fixed)
    assert main(["train", "--missing", "--init-weights", str(fixed)]) == 2
    assert "--init-weights goes with one --recipe" in capsys.readouterr().err


def test_crop_larger_than_every_image(tmp_path: Path, images: dict[str, str]) -> None:
    with pytest.raises(DataError, match="at least 192 px"):
        _run(_recipe(tmp_path, images, "big", crop=192), tmp_path)


def test_cli_unknown_recipe(tmp_path: Path, images: dict[str, str], capsys: Any) -> None:
    path = _write_recipes(tmp_path / "recipes.yaml", images, {"a": {}})
    assert main(["train", "--recipes", str(path), "--recipe", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'nope'" in err and "choose from a" in err
    assert main(["train", "--recipes", str(path)]) == 2
    assert "--missing" in capsys.readouterr().err
    assert main(["train", "--recipes", str(tmp_path / "absent.yaml"), "--recipe", "a"]) == 1


def test_cli_missing_trains_absent_checkpoints_source_first(
    tmp_path: Path, images: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    recipes = {
        "child": {"init_from": "base"},  # listed before its source
        "base": {},
        "done": {},
        "draft": {"ship": False},
    }
    path = _write_recipes(tmp_path / "recipes.yaml", images, recipes)
    models_dir, runs_dir = tmp_path / "models", tmp_path / "runs"
    models_dir.mkdir()
    (models_dir / "done.safetensors").write_bytes(b"already trained")
    args = ["train", "--recipes", str(path), "--missing", "--steps", "2", "--no-progress",
            "--models-dir", str(models_dir), "--runs-dir", str(runs_dir)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [str(models_dir / "base.safetensors"), str(models_dir / "child.safetensors")]
    assert (models_dir / "done.safetensors").read_bytes() == b"already trained"
    assert not (models_dir / "draft.safetensors").exists() and not (runs_dir / "draft").exists()
    meta = models.read_checkpoint_meta(models_dir / "child.safetensors")
    assert meta["init_from"] == "base" and meta["steps"] == 2
    state = torch.load(runs_dir / "child" / "last.pt", weights_only=True)
    assert state["init_origin"] == str(runs_dir / "base" / "last.pt")
    # nothing left to do
    assert main(args) == 0
    assert "nothing to train" in capsys.readouterr().out


# --- schedules ---------------------------------------------------------------------------------


def test_cubic_sparsity() -> None:
    final, start, end = 0.95, 0.2, 0.6
    assert cubic_sparsity(0.0, final, start, end) == 0.0
    assert cubic_sparsity(start, final, start, end) == 0.0
    assert cubic_sparsity(end, final, start, end) == final
    assert cubic_sparsity(1.0, final, start, end) == final
    mid = (start + end) / 2
    assert cubic_sparsity(mid, final, start, end) == pytest.approx(final * (1 - 0.5**3))
    grid = np.linspace(0, 1, 201)
    values = [cubic_sparsity(float(t), final, start, end) for t in grid]
    assert values == sorted(values) and all(0 <= v <= final for v in values)
    # fast at first, flat at the end: the first half of the window prunes 7/8 of the total
    assert cubic_sparsity(start + 0.01, final, start, end) > 0.01 * final / (end - start)


def test_lr_at_warmup_and_milestones() -> None:
    r = Recipe("x", {"lr": 1e-3, "warmup_steps": 4, "lr_milestones": [0.5, 0.8], "lr_gamma": 0.1})
    assert [lr_at(r, 0.0, s) for s in range(5)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    assert lr_at(r, 0.49, 100) == pytest.approx(1e-3)
    assert lr_at(r, 0.5, 100) == pytest.approx(1e-4)
    assert lr_at(r, 0.79, 100) == pytest.approx(1e-4)
    assert lr_at(r, 0.8, 100) == pytest.approx(1e-5)
    plain = Recipe("y", {"lr": 2e-4})
    assert lr_at(plain, 0.0, 0) == lr_at(plain, 0.99, 10**6) == pytest.approx(2e-4)
    default_gamma = Recipe("z", {"lr": 1.0, "lr_milestones": [0.5]})
    assert lr_at(default_gamma, 0.6) == pytest.approx(0.1)


# --- the real recipes --------------------------------------------------------------------------


def test_the_shipped_recipes_file() -> None:
    recipes = load_recipes()
    assert "sh-mse-0.0067" in recipes and len(recipes) >= 8
    for name, r in recipes.items():
        for dataset in [*r["train_data"], r["val_data"]]:
            assert dataset in data.DATASETS, (name, dataset)
        assert r["architecture"] in models.ARCHITECTURES, name
        assert r["metric"] in ("mse", "ms-ssim"), name
        assert int(r["crop"]) % 64 == 0 and int(r["steps"]) > 0, name
        if r["metric"] == "ms-ssim":
            assert int(r["crop"]) > 160, name
        if r.variable_rate:
            assert 0 < r["lmbda_min"] < r["lmbda_max"], name
        else:
            assert float(r["lmbda"]) > 0, name
        if r.get("init_from"):
            source = recipes[r["init_from"]]
            assert (source["N"], source["M"]) == (r["N"], r["M"]), name
            assert not source.get("init_from"), name  # --missing orders one level only
            assert source.get("ship") or not r.get("ship"), name
        if r.get("prune"):
            p = r["prune"]
            assert 0 <= p["start"] < p["end"] <= 1 and 0 < p["final_sparsity"] < 1, name
        for milestone in r.get("lr_milestones") or []:
            assert 0 < float(milestone) < 1, name


def test_shipped_checkpoints_match_their_recipes() -> None:
    recipes = load_recipes()
    shipped = sorted(models.MODELS_DIR.glob("*.safetensors"))
    if not shipped:
        pytest.skip("no shipped models in data/models")
    for path in shipped:
        meta = models.read_checkpoint_meta(path)
        assert path.stem in recipes and meta["name"] == path.stem, path.name
        r = recipes[path.stem]
        assert r.get("ship"), path.name
        for key in ("architecture", "N", "M", "metric"):
            assert meta[key] == r[key], (path.name, key)
        assert meta["lmbda"] == r.get("lmbda") and meta["lmbda_min"] == r.get("lmbda_min")


def test_pruner_tops_up_a_start_just_short_of_the_target(
    tmp_path: Path, images: dict[str, str]
) -> None:
    """A continued checkpoint a few weights short of 95% is pruned again (integer counts)."""
    model = tr._build(_recipe(tmp_path, images, "t", steps=1))
    pruner = tr.GlobalMagnitudePruner(model)
    pruner.prune_to(0.95)
    assert not pruner.below_target(0.95)
    key = next(k for k, m in pruner.masks.items() if bool((m == 0).any()))
    pruner.masks[key][tuple((pruner.masks[key] == 0).nonzero()[0])] = 1
    assert pruner.below_target(0.95)
    assert pruner.mask_sparsity() > 0.95 - 1e-4  # a float tolerance would not have noticed
    pruner.prune_to(0.95)
    assert not pruner.below_target(0.95)


def test_pruned_weights_never_regrow(tmp_path: Path, images: dict[str, str]) -> None:
    """Weights moved by the optimiser after masking stay masked when a lower target is applied
    (a continued 95% checkpoint restarts the cubic schedule from 0)."""
    model = tr._build(_recipe(tmp_path, images, "g", steps=1))
    pruner = tr.GlobalMagnitudePruner(model)
    pruner.prune_to(0.95)
    with torch.no_grad():  # what an optimiser step does to masked weights before apply()
        for w in pruner.weights.values():
            w.add_(torch.rand_like(w) * 1e-6)
    pruner.prune_to(0.2)
    assert not pruner.below_target(0.95)
    assert models.sparsity(model) >= 0.95
