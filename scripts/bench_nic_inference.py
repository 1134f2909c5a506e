"""Benchmark: one NIC's inference on Kodak images on the CPU, with real entropy coding (encode +
decode, one image at a time, as the codecs code) and with the likelihood estimate (one forward
pass).

``--recipe NAME`` builds a freshly initialised model of a recipe, for an architecture with no
trained model here (ELIC): its transforms cost what a trained model's cost, but its entropy
coding codes untrained latents (their bpp means nothing, and a trained model's mostly-zero
latents code faster). ``--model NAME`` times a shipped model instead.

    OMP_NUM_THREADS=1 python scripts/bench_nic_inference.py --recipe elic-mse-0.0067 \\
        --images kodim01 --repeats 2
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> int:
    import torch

    from nicspec_utils.codecs.neural import NeuralCodec
    from nicspec_utils.data import get_dataset
    from nicspec_utils.nic.models import load_checkpoint, resolve_shipped
    from nicspec_utils.runtime import keep_heap

    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--model", default="sh-mse-0.0067", help="a shipped model")
    p.add_argument("--recipe", help="time a fresh model of this recipe instead (e.g. ELIC)")
    p.add_argument("--images", default="kodim01", help="comma-separated Kodak image ids")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per image and mode")
    args = p.parse_args(argv)

    keep_heap()  # as the codecs run (nicspec_utils.codecs.neural)
    if args.recipe:
        from nicspec_utils.nic.train import _build, get_recipe

        recipe = get_recipe(args.recipe)
        torch.manual_seed(int(recipe["seed"]))
        model, name = _build(recipe), args.recipe
        model.update(force=True)
    else:
        model, _ = load_checkpoint(resolve_shipped(args.model))
        name = args.model
    n_params = sum(p.numel() for p in model.parameters())
    kodak = get_dataset("kodak")
    print(f"{name}: {n_params / 1e6:.2f} M parameters, {torch.get_num_threads()} thread(s)")
    for image_id in args.images.split(","):
        image = kodak.load(image_id)
        for mode in ("real coding", "estimate"):
            codec = NeuralCodec(model, name=name, estimate=mode == "estimate")
            times, result = [], None
            for _ in range(args.repeats + 1):  # the first run warms up
                t0 = time.perf_counter()
                result = codec.compress(image)
                times.append(time.perf_counter() - t0)
            assert result is not None
            h, w = image.shape[:2]
            every = ", ".join(f"{t:.2f}" for t in times[1:])
            print(
                f"  {image_id} {w}x{h} {mode:11s} {min(times[1:]):.2f} s ({every}); "
                f"{result.bits / (h * w):.3f} bpp"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
