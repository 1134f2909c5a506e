"""Test set-up: the data mirror beside the repo (../shared/data) replaces the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = REPO.parent / "shared" / "data"

if "NICSPEC_DATA_MIRROR" not in os.environ and DEFAULT_MIRROR.is_dir():
    os.environ["NICSPEC_DATA_MIRROR"] = str(DEFAULT_MIRROR)

SHARED_REFERENCE = REPO.parent / "shared" / "reference" / "compressai-kodak"


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The data mirror; tests that need it are skipped without it."""
    path = Path(os.environ.get("NICSPEC_DATA_MIRROR", DEFAULT_MIRROR))
    if not path.is_dir():
        pytest.skip("no data mirror (set NICSPEC_DATA_MIRROR)")
    return path
