"""NIC models and checkpoints: save/load, real coding, FiLM identity, errors, shipped models."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from nicspec_utils.errors import DataError, UsageError
from nicspec_utils.nic import models
from nicspec_utils.nic.models import (
    build_model,
    load_checkpoint,
    read_checkpoint_meta,
    resolve_shipped,
    save_checkpoint,
    sparsity,
    transform_weights,
)

N, M = 16, 24
LMBDA_RANGE = (0.002, 0.05)
SH_META = {"architecture": "scale-hyperprior", "N": N, "M": M}
VR_META = {
    "architecture": "scale-hyperprior-vr", "N": N, "M": M,
    "lmbda_min": LMBDA_RANGE[0], "lmbda_max": LMBDA_RANGE[1],
}  # fmt: skip
ELIC_META = {"architecture": "elic", "N": N, "M": M}
META = {"scale-hyperprior": SH_META, "scale-hyperprior-vr": VR_META, "elic": ELIC_META}
SHIPPED = sorted(models.MODELS_DIR.glob("*.safetensors"))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """A 64x128 Kodak crop as a (1, 3, H, W) float tensor in [0, 1]."""
    from nicspec_utils.data import get_dataset

    arr = get_dataset("kodak").load("kodim23")[200:264, 300:428]
    return torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255


def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Move every float parameter off its initial value, so the roundtrip tests real values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.endswith("quantiles"):
                p.add_(0.01 * torch.randn(p.shape, generator=g))


def _round_kernels_to_fp16(model: torch.nn.Module) -> None:
    """What a checkpoint does to the conv/deconv kernels (stored as float16)."""
    with torch.no_grad():
        for w in transform_weights(model).values():
            w.copy_(w.half().float())


def _tiny(architecture: str = "scale-hyperprior", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(architecture, N, M, *(LMBDA_RANGE if architecture.endswith("vr") else ()))
    _perturb(model, seed + 1)
    model.update(force=True)
    return model.eval()


def _outputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(x)
    return [out["x_hat"], *out["likelihoods"].values()]


def _code(model: torch.nn.Module, x: torch.Tensor) -> tuple[list, torch.Tensor]:
    with torch.no_grad():
        enc = model.compress(x)
        dec = model.decompress(enc["strings"], enc["shape"])
    return enc["strings"], dec["x_hat"]


# --- save / load -------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", models.ARCHITECTURES)
def test_save_load_roundtrip(architecture: str, tmp_path: Path, image: torch.Tensor) -> None:
    model = _tiny(architecture)
    meta = META[architecture]
    path = tmp_path / "m.safetensors"
    save_checkpoint(model, path, {**meta, "note": "roundtrip"})
    loaded, got = load_checkpoint(path)
    assert got == {**meta, "note": "roundtrip"} and read_checkpoint_meta(path) == got
    assert not loaded.training
    stored = load_file(str(path))
    kernels = set(transform_weights(model))
    for key, value in stored.items():
        if value.is_floating_point():
            assert value.dtype == (torch.float16 if key in kernels else torch.float32), key
    assert kernels <= set(stored)
    assert not any(k.endswith(models.DERIVED_BUFFERS) for k in stored)
    # The kernels are stored in fp16, every other tensor in fp32: with the kernels of the original
    # rounded to fp16 the two models must agree exactly.
    _round_kernels_to_fp16(model)
    model.update(force=True)
    if architecture.endswith("vr"):
        model.set_lmbda(0.01)
        loaded.set_lmbda(0.01)
    for a, b in zip(_outputs(model, image), _outputs(loaded, image), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # ... and the entropy coder tables were rebuilt identically: the same bitstream
    strings_a, x_a = _code(model, image)
    strings_b, x_b = _code(loaded, image)
    assert strings_a == strings_b
    torch.testing.assert_close(x_a, x_b, rtol=0, atol=0)


@pytest.mark.parametrize("architecture", models.ARCHITECTURES)
def test_real_coding_after_load(architecture: str, tmp_path: Path, image: torch.Tensor) -> None:
    meta = META[architecture]
    save_checkpoint(_tiny(architecture, seed=3), tmp_path / "m.safetensors", meta)
    model, _ = load_checkpoint(tmp_path / "m.safetensors")
    if architecture.endswith("vr"):
        model.set_lmbda(LMBDA_RANGE[0])
    strings, x_hat = _code(model, image)
    assert x_hat.shape == image.shape and 0 <= float(x_hat.min()) <= float(x_hat.max()) <= 1
    n_bytes = sum(len(s) for group in strings for s in group)
    assert n_bytes > 0
    # decoding is deterministic: twice the same bitstream, twice the same image
    strings2, x_hat2 = _code(model, image)
    assert strings2 == strings
    torch.testing.assert_close(x_hat, x_hat2, rtol=0, atol=0)


def test_vr_with_identity_film_equals_its_source(tmp_path: Path, image: torch.Tensor) -> None:
    """A VR model initialised from a fixed-rate checkpoint is that model, at every lambda."""
    from nicspec_utils.nic.train import Recipe, _initialise_from

    save_checkpoint(_tiny(seed=5), tmp_path / "models" / "src.safetensors", SH_META)
    source, _ = load_checkpoint(tmp_path / "models" / "src.safetensors")
    recipe = Recipe("vr", {**VR_META, "init_from": "src"})
    torch.manual_seed(9)
    vr = build_model("scale-hyperprior-vr", N, M, *LMBDA_RANGE)
    origin, _ = _initialise_from(vr, recipe, tmp_path / "runs", tmp_path / "models")
    assert origin.endswith("src.safetensors")
    vr.update(force=True)
    vr.eval()
    ref_out, (ref_strings, ref_x) = _outputs(source, image), _code(source, image)
    for lmbda in (LMBDA_RANGE[0], 0.01, LMBDA_RANGE[1]):
        vr.set_lmbda(lmbda)
        for a, b in zip(_outputs(vr, image), ref_out, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        strings, x_hat = _code(vr, image)
        assert strings == ref_strings
        torch.testing.assert_close(x_hat, ref_x, rtol=0, atol=0)
    # per-image lambdas in forward() broadcast to the batch
    with torch.no_grad():
        out = vr(image.expand(2, -1, -1, -1), lmbda=torch.tensor([0.003, 0.04]))
    torch.testing.assert_close(out["x_hat"][1:], ref_out[0], rtol=0, atol=0)


def test_vr_condition_and_lambda_range() -> None:
    vr = build_model("scale-hyperprior-vr", N, M, *LMBDA_RANGE)
    lo, hi = LMBDA_RANGE
    cond = vr.condition(torch.tensor([lo, math.sqrt(lo * hi), hi]))
    torch.testing.assert_close(cond.flatten(), torch.tensor([-1.0, 0.0, 1.0]))
    with pytest.raises(UsageError, match="set a lambda"):
        vr(torch.zeros(1, 3, 64, 64))
    for bad in (lo / 2, hi * 1.01):
        with pytest.raises(UsageError, match="outside the model's range"):
            vr.set_lmbda(bad)
    vr.set_lmbda(lo)
    vr.set_lmbda(hi)
    with pytest.raises(UsageError, match="lmbda_min and lmbda_max"):
        build_model("scale-hyperprior-vr", N, M)
    with pytest.raises(UsageError, match="unknown architecture"):
        build_model("cheng2020", N, M)


# --- broken checkpoints ------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "good.safetensors"
    save_checkpoint(_tiny(), path, SH_META)
    return path


def test_wrong_architecture_in_metadata(saved: Path, tmp_path: Path) -> None:
    tensors = load_file(str(saved))
    bad = tmp_path / "claims-n32.safetensors"
    save_file(tensors, str(bad), metadata={"nicspec": json.dumps({**SH_META, "N": 32})})
    with pytest.raises(DataError, match="does not match") as info:
        load_checkpoint(bad)
    assert "N=32" in str(info.value) and "\n" not in str(info.value)
    vr_claim = tmp_path / "claims-vr.safetensors"
    save_file(tensors, str(vr_claim), metadata={"nicspec": json.dumps(VR_META)})
    with pytest.raises(DataError, match="does not match"):
        load_checkpoint(vr_claim)
    unknown = tmp_path / "claims-other.safetensors"
    meta = {**SH_META, "architecture": "mystery"}
    save_file(tensors, str(unknown), metadata={"nicspec": json.dumps(meta)})
    with pytest.raises(DataError, match="unknown architecture"):
        load_checkpoint(unknown)


def test_corrupt_and_foreign_files(saved: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01 this is not a safetensors file" * 10)
    with pytest.raises(DataError, match="cannot read checkpoint"):
        load_checkpoint(junk)
    cut = tmp_path / "cut.safetensors"
    raw = saved.read_bytes()
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError):
        load_checkpoint(cut)
    bare = tmp_path / "bare.safetensors"
    save_file(load_file(str(saved)), str(bare))  # no metadata at all
    with pytest.raises(DataError, match="not a nicspec checkpoint"):
        load_checkpoint(bare)
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_elic_is_compressai_elic_with_scaled_channel_groups() -> None:
    from compressai.models import Elic2022Official

    assert models.elic_groups(320) == [16, 16, 32, 64, 192]  # the paper's ELIC
    assert models.elic_groups(24) == [1, 1, 2, 4, 16] and sum(models.elic_groups(57)) == 57
    model = build_model("elic", N, M)
    assert isinstance(model, Elic2022Official) and model.groups == models.elic_groups(M)
    assert model.g_a[0].weight.shape == (N, 3, 5, 5) and model.g_a[13].weight.shape == (M, N, 5, 5)
    with pytest.raises(UsageError, match="M >= 20"):
        build_model("elic", N, 16)
    with pytest.raises(UsageError, match="even N"):
        build_model("elic", 15, M)


def test_elic_shape_mismatch_is_one_line(tmp_path: Path) -> None:
    """An ELIC file whose metadata claims other sizes, a hyperprior file that claims to be ELIC,
    and ELIC metadata with sizes ELIC cannot take: each a one-line DataError."""
    path = tmp_path / "elic.safetensors"
    save_checkpoint(_tiny("elic"), path, ELIC_META)
    tensors = load_file(str(path))
    cases = {
        "claims-m40": ({**ELIC_META, "M": 40}, tensors, "g_a.13.weight is of shape [24, 16, 5, 5]"),
        "sh-as-elic": (ELIC_META, load_file(str(_saved_sh(tmp_path))), "g_a.13.weight is absent"),
        "odd-n": ({**ELIC_META, "N": 15}, tensors, "does not match architecture elic"),
    }
    for name, (meta, state, message) in cases.items():
        bad = tmp_path / f"{name}.safetensors"
        save_file(state, str(bad), metadata={"nicspec": json.dumps(meta)})
        with pytest.raises(DataError, match="does not match architecture elic") as info:
            load_checkpoint(bad)
        assert message in str(info.value) and "\n" not in str(info.value), name
    small = tmp_path / "small.safetensors"  # a consistent file, but M too small for ELIC
    save_file({"g_a.0.weight": torch.zeros(N, 3, 5, 5), "g_a.13.weight": torch.zeros(8, N, 5, 5)},
              str(small), metadata={"nicspec": json.dumps({**ELIC_META, "M": 8})})  # fmt: skip
    with pytest.raises(DataError, match="bad checkpoint metadata.*M >= 20") as info:
        load_checkpoint(small)
    assert "\n" not in str(info.value)


def _saved_sh(tmp_path: Path) -> Path:
    path = tmp_path / "sh.safetensors"
    save_checkpoint(_tiny(), path, SH_META)
    return path


def test_nic_name_of_an_untrained_recipe_says_how_to_train_it() -> None:
    from nicspec_utils.codecs import get_codec

    if (models.MODELS_DIR / "elic-mse-0.0067.safetensors").exists():
        pytest.skip("an ELIC model is shipped")
    with pytest.raises(DataError, match="'elic-mse-0.0067' is not available") as info:
        get_codec("nic:elic-mse-0.0067")
    assert "nicspec train --recipe elic-mse-0.0067 --device cuda" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(UsageError, match="unknown model 'no-such-model'"):
        resolve_shipped("no-such-model")


def test_save_needs_metadata(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks"):
        save_checkpoint(_tiny(), tmp_path / "x.safetensors", {"architecture": "scale-hyperprior"})
    assert not list(tmp_path.iterdir())  # nothing half-written


# --- sparsity ----------------------------------------------------------------------------------


def test_sparsity_counts_zero_kernels_only() -> None:
    model = _tiny()
    weights = transform_weights(model)
    assert set(weights) == {
        k for k, v in model.state_dict().items() if k.endswith(".weight") and v.dim() == 4
    }
    assert sparsity(model) == 0.0
    total = sum(w.numel() for w in weights.values())
    first = next(iter(weights.values()))
    with torch.no_grad():
        first.view(-1)[: first.numel() // 2] = 0
        model.entropy_bottleneck.biases[0].zero_()  # not a conv kernel: not counted
    assert sparsity(model) == pytest.approx((first.numel() // 2) / total)
    with torch.no_grad():
        for w in weights.values():
            w.zero_()
    assert sparsity(model) == 1.0


# --- shipped models ----------------------------------------------------------------------------


def test_resolve_shipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    save_checkpoint(_tiny(), tmp_path / "tiny-a.safetensors", SH_META)
    manifest = {"models": {"tiny-a": {"file": "tiny-a.safetensors"}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path)
    assert resolve_shipped("tiny-a") == tmp_path / "tiny-a.safetensors"
    with pytest.raises(UsageError, match="unknown model 'nope'") as info:
        resolve_shipped("nope")
    assert "tiny-a" in str(info.value)


def test_resolve_shipped_lists_the_real_models() -> None:
    if not SHIPPED:
        pytest.skip("no shipped models in data/models")
    with pytest.raises(UsageError) as info:
        resolve_shipped("nope")
    for path in SHIPPED:
        assert path.stem in str(info.value)
    assert resolve_shipped(SHIPPED[0].stem) == SHIPPED[0]


def _real_bpp_psnr(model: Any, x: torch.Tensor) -> tuple[float, float]:
    strings, x_hat = _code(model, x)
    bits = 8 * sum(len(s) for group in strings for s in group)
    mse = float((x_hat - x).pow(2).mean())
    return bits / (x.shape[-2] * x.shape[-1]), 10 * math.log10(1 / mse)


@pytest.mark.skipif(not SHIPPED, reason="no shipped models in data/models")
def test_shipped_models_load_and_code(image: torch.Tensor) -> None:
    x = image[..., :64, :64]
    fixed: dict[str, tuple[float, float, float]] = {}
    for path in SHIPPED:
        model, meta = load_checkpoint(path)
        assert meta["architecture"] in models.ARCHITECTURES and meta["metric"] in ("mse", "ms-ssim")
        if meta["architecture"] == "scale-hyperprior-vr":
            lo, hi = meta["lmbda_min"], meta["lmbda_max"]
            points = []
            for lmbda in np.geomspace(lo, hi, 3):
                model.set_lmbda(float(lmbda))
                points.append(_real_bpp_psnr(model, x))
            rates = [p[0] for p in points]
            assert rates == sorted(rates) and rates[0] < rates[-1], (path.name, points)
            continue
        bpp, psnr = _real_bpp_psnr(model, x)
        assert 0 < bpp < 4 and psnr > 22, (path.name, bpp, psnr)
        # a trained model's real rate is its likelihood estimate plus a few bytes of coder flush
        # (measured: 10-13 bytes for the two strings of a 64x64 image)
        with torch.no_grad():
            out = model(x)
        est_bits = sum(float(-torch.log2(lik).sum()) for lik in out["likelihoods"].values())
        overhead_bytes = (bpp * x.shape[-2] * x.shape[-1] - est_bits) / 8
        assert -0.02 * est_bits / 8 < overhead_bytes < 32, (path.name, overhead_bytes)
        if "prune" in (meta.get("recipe") or {}):
            assert sparsity(model) >= meta["recipe"]["prune"]["final_sparsity"] - 1e-3
        elif meta["metric"] == "mse":
            fixed[path.stem] = (float(meta["lmbda"]), bpp, psnr)
    # the fixed-rate MSE ladder: more lambda, more bits and more PSNR
    ladder = sorted(fixed.values())
    assert [p[1] for p in ladder] == sorted(p[1] for p in ladder), ladder
    assert [p[2] for p in ladder] == sorted(p[2] for p in ladder), ladder
