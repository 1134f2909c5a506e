"""Test set-up: the data mirror beside the repo (../shared/data) replaces the network.

Torch runs single-threaded for the whole suite: on the shared 2-core machines, intra-op
threads fight with other jobs (MS-SSIM measured ~100x slower with 2 threads under load).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A 2-worker LocalCluster for one module's tests (the suite is otherwise serial)."""
    from nicspec_utils.engines import scheduler as engine

    old = os.environ.get(engine.SCHEDULER_ENV)
    os.environ[engine.SCHEDULER_ENV] = ""
    os.environ[engine.PROGRESS_ENV] = "0"
    engine.get_client(workers=2)
    yield
    engine.close()
    os.environ.pop(engine.PROGRESS_ENV, None)
    if old is None:
        os.environ.pop(engine.SCHEDULER_ENV, None)
    else:
        os.environ[engine.SCHEDULER_ENV] = old
