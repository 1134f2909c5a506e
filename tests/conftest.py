"""Test set-up: the data mirror beside the repo (../shared/data) replaces the network.

Torch runs single-threaded for the whole suite: on the shared 2-core machines, intra-op
threads fight with other jobs (MS-SSIM measured ~100x slower with 2 threads under load).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = REPO.parent / "shared" / "data"

if "NICSPEC_DATA_MIRROR" not in os.environ and DEFAULT_MIRROR.is_dir():
    os.environ["NICSPEC_DATA_MIRROR"] = str(DEFAULT_MIRROR)

# Sweeps run in-process unless a test asks for a cluster (tests/test_engine.py): test doubles
# that a test monkeypatches in exist only in this process.
os.environ.setdefault("NICSPEC_SCHEDULER", "serial")

# Subprocesses (the CLI tests, corruption workers) inherit these; torch itself is set below.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

try:
    import torch
except ImportError:  # the suite's torch-free parts still run
    torch = None
else:
    torch.set_num_threads(1)

SHARED_REFERENCE = REPO.parent / "shared" / "reference" / "compressai-kodak"


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The data mirror; tests that need it are skipped without it."""
    path = Path(os.environ.get("NICSPEC_DATA_MIRROR", DEFAULT_MIRROR))
    if not path.is_dir():
        pytest.skip("no data mirror (set NICSPEC_DATA_MIRROR)")
    return path
