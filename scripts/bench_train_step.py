"""Benchmark: one NIC training step on the CPU in three numeric set-ups, side by side.

- ``fp32``: the model and batches in PyTorch's default (NCHW) layout.
- ``channels-last``: the same fp32 arithmetic with NHWC tensors (what ``nicspec train`` uses on
  a CPU), which lets oneDNN pick faster convolution kernels.
- ``bf16``: the four transforms under ``torch.autocast(bfloat16)`` (AMX on recent Xeons), outputs
  cast back to fp32 so the entropy models keep full precision.

Each set-up trains its own copy of a shipped model on the same batch of Kodak crops (steps
interleaved, so background load hits all of them alike) and the script prints the fastest step
of each and its ratio to fp32. It also compares each set-up's gradient with fp32's on one batch
(cosine similarity per transform) beside two fp32 references: another batch, and the same batch
with other quantisation noise (channels-last draws the noise in another memory order, so it sees
other noise too). An error no larger than those is harmless; one that reverses a layer's
gradient is not.

    OMP_NUM_THREADS=1 python scripts/bench_train_step.py --model sh-mse-0.018 --repeats 6

``--recipe NAME`` times a freshly initialised model of a recipe instead (at the recipe's batch
and crop unless ``--batch`` / ``--crop`` say otherwise): an architecture with no shipped model,
such as ELIC. ``--setups`` picks the set-ups and ``--no-compare`` skips the gradient comparison
(four more steps' worth of work), which is what costs most on a large model:

    OMP_NUM_THREADS=1 python scripts/bench_train_step.py --recipe elic-mse-0.0067 \
        --setups channels-last --repeats 2 --no-compare
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

SETUPS = ("fp32", "channels-last", "bf16")
TRANSFORMS = ("g_a", "g_s", "h_a", "h_s")  # bf16 runs these; the entropy models stay in fp32


def _mixed(module: Any) -> Any:
    import torch

    class BF16(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = self.inner(x.contiguous(memory_format=torch.channels_last))
            return y.float().contiguous()

    return BF16(module)


def build(model: Any, setup: str) -> Any:
    """A copy of ``model`` prepared for one set-up."""
    import torch

    m = copy.deepcopy(model).train()
    if setup == "channels-last":
        m = m.to(memory_format=torch.channels_last)
    elif setup == "bf16":
        for name in TRANSFORMS:
            if hasattr(m, name):  # ELIC keeps h_a / h_s inside its latent codec
                setattr(m, name, _mixed(getattr(m, name)))
    return m


def batch(n: int, crop: int, offset: int) -> Any:
    """``n`` Kodak crops (images ``offset`` .. ``offset + n - 1``), float in [0, 1]."""
    import torch

    from nicspec_utils.data import get_dataset

    kodak = get_dataset("kodak")
    crops = [
        torch.from_numpy(kodak.load(i)[:crop, :crop]).permute(2, 0, 1).float() / 255
        for i in kodak.image_ids[offset : offset + n]
    ]
    return torch.stack(crops)


def gradients(model: Any, x: Any, lmbda: float, seed: int = 1) -> dict[str, Any]:
    """Per-transform flattened gradients of the training loss, quantisation noise seeded."""
    import torch

    from nicspec_utils.nic.train import rate_distortion

    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    rate_distortion(model, x, lmbda, "mse", False)["loss"].backward()
    flat: dict[str, list[Any]] = {}
    for name, p in model.named_parameters():  # per top-level module: g_a, g_s, h_a, ...
        if p.grad is not None:
            flat.setdefault(name.split(".", 1)[0], []).append(p.grad.flatten())
    return {g: torch.cat(v) for g, v in flat.items()}


def main(argv: list[str] | None = None) -> int:
    import torch

    from nicspec_utils.nic.models import load_checkpoint, resolve_shipped
    from nicspec_utils.nic.train import rate_distortion

    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--model", default="sh-mse-0.018", help="a shipped fixed-rate MSE model")
    p.add_argument("--recipe", help="time a fresh model of this recipe instead (e.g. ELIC)")
    p.add_argument("--batch", type=int, help="batch size (default: 8, or the recipe's)")
    p.add_argument("--crop", type=int, help="crop side (default: 256, or the recipe's)")
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument(
        "--setups", default=",".join(SETUPS), help="comma-separated, of " + ", ".join(SETUPS)
    )
    p.add_argument("--no-compare", action="store_true", help="skip the gradient comparison")
    args = p.parse_args(argv)
    setups = [s for s in args.setups.split(",") if s]
    if unknown := set(setups) - set(SETUPS):
        p.error(f"unknown set-up(s) {', '.join(sorted(unknown))}; choose from {', '.join(SETUPS)}")

    if args.recipe:
        from nicspec_utils.nic.train import _build, get_recipe

        recipe = get_recipe(args.recipe)
        torch.manual_seed(int(recipe["seed"]))
        model, lmbda, name = _build(recipe), float(recipe["lmbda"]), args.recipe
        size = (args.batch or int(recipe["batch_size"]), args.crop or int(recipe["crop"]))
    else:
        model, meta = load_checkpoint(resolve_shipped(args.model))
        lmbda, name, size = float(meta["lmbda"]), args.model, (args.batch or 8, args.crop or 256)
    n_batch, crop = size
    n_params = sum(p.numel() for p in model.parameters())
    x = batch(n_batch, crop, 0)
    print(
        f"{name}: {n_params / 1e6:.2f} M parameters, batch {n_batch} x {crop}^2, "
        f"{torch.get_num_threads()} thread(s)"
    )

    if not args.no_compare:
        x_other = batch(n_batch, crop, n_batch)
        ref = gradients(build(model, "fp32"), x, lmbda)
        compared = {
            "fp32, another batch": gradients(build(model, "fp32"), x_other, lmbda),
            "fp32, other noise": gradients(build(model, "fp32"), x, lmbda, seed=2),
        } | {setup: gradients(build(model, setup), x, lmbda) for setup in SETUPS[1:]}
        cos = torch.nn.functional.cosine_similarity
        print("gradient cosine with fp32 on the same batch (per transform):")
        for label, grads in compared.items():
            print(
                f"  {label:22s}" + "".join(f" {g} {cos(ref[g], grads[g], dim=0):+.3f}" for g in ref)
            )

    nets = {s: build(model, s) for s in setups}
    opts = {s: torch.optim.Adam(nets[s].parameters(), lr=1e-4) for s in setups}
    inputs = {
        s: x.contiguous(memory_format=torch.channels_last) if s == "channels-last" else x
        for s in setups
    }
    times: dict[str, list[float]] = {s: [] for s in setups}
    for r in range(args.repeats + 1):  # the first round warms up
        for s in setups:
            t0 = time.perf_counter()
            loss = rate_distortion(nets[s], inputs[s], lmbda, "mse", False)["loss"]
            opts[s].zero_grad(set_to_none=True)
            loss.backward()
            opts[s].step()
            if r:
                times[s].append(time.perf_counter() - t0)
    base = min(times["fp32"]) if "fp32" in times else None
    print("training step (fastest of the repeats; all of them):")
    for s in setups:
        ratio = f"   {base / min(times[s]):.2f}x fp32" if base else ""
        every = ", ".join(f"{t:.2f}" for t in times[s])
        print(f"  {s:14s} {min(times[s]):.2f} s{ratio}   ({every})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
