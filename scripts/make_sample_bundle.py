"""Write ``data/results/sample/``: a tiny results bundle that the default test suite verifies
(tests/test_bundle.py recomputes a date-seeded sample of it).

Its entries are cheap ones, each from a different path of the engine: classic codecs at a
quality, at a bpp (per-image rate matching), at per-image PSNR targets; clean and corrupted
inputs; with and without maps; one shipped NIC model. They are computed from scratch in a
temporary results folder (bundles ignored), then exported with ``write_bundle``. Rerun it
(``.venv/bin/python scripts/make_sample_bundle.py``) when a change of the code makes the
suite report the bundle stale.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["NICSPEC_SCHEDULER"] = "serial"
os.environ["NICSPEC_FRESH"] = "1"

# codec, quality, bpp, codec options, image ids, corruption, severity, maps
ENTRIES: list[dict[str, Any]] = [
    {"codec": "jpeg", "quality": 40, "ids": ["kodim01", "kodim02"]},
    {"codec": "jpeg", "quality": 75, "ids": ["kodim03"]},
    {"codec": "jpeg", "bpp": 0.8, "ids": ["kodim06"]},
    {"codec": "jpeg2000", "quality": 48.0, "ids": ["kodim01"]},
    {"codec": "jpeg2000", "bpp": 0.5, "ids": ["kodim04"]},
    {"codec": "jpeg2000", "options": {"target_psnr": [["kodim07", 30.0]]}, "ids": ["kodim07"]},
    {"codec": "webp", "quality": 50, "ids": ["kodim05"]},
    {"codec": "jpeg", "quality": 40, "ids": ["kodim01"], "corruption": "gaussian_noise"},
    {"codec": "jpeg2000", "quality": 48.0, "ids": ["kodim02"], "maps": True},
    {"codec": "jpeg", "quality": 30, "ids": ["kodim03"], "corruption": "fog", "maps": True},
    {"codec": "nic:sh-mse-0.0067", "ids": ["kodim08"]},
]


def main(out: str | None = None) -> int:
    """Compute the entries and write the bundle (default ``data/results/sample``)."""
    from nicspec_utils.bundle import write_bundle
    from nicspec_utils.engines.evaluate import evaluate, load_point

    with tempfile.TemporaryDirectory(prefix="nicspec-sample-") as tmp:
        keys = []
        for spec in ENTRIES:
            started = time.perf_counter()
            path = evaluate(
                spec["codec"],
                "kodak",
                image_ids=spec["ids"],
                corruption=spec.get("corruption"),
                severity=3 if spec.get("corruption") else None,
                quality=spec.get("quality"),
                bpp=spec.get("bpp"),
                codec_options=spec.get("options"),
                out=tmp,
                progress=False,
                maps=bool(spec.get("maps")),
            )
            keys.append(load_point(path).metrics["key"])
            print(f"{keys[-1]} {spec} {time.perf_counter() - started:.1f} s", flush=True)
        manifest = write_bundle("sample", out, keys, results=Path(tmp))
    print(f"{manifest['n_entries']} entries, {manifest['size_bytes'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
