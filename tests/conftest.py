"""Test set-up: the data mirror beside the repo (../shared/data) replaces the network.

Torch runs single-threaded for the whole suite: on the shared 2-core machines, intra-op
threads fight with other jobs (MS-SSIM measured ~100x slower with 2 threads under load).
"""

from __future__ import annotations

import os
import sys
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


# --- a fake VTM build -------------------------------------------------------------------------
FAKE_ENCODER = """#!{python}
import sys, zlib
a = sys.argv[1:]
if "--help" in a:
    print("VVCSoftware: VTM Encoder Version 9.1-fake"); sys.exit(0)
opt = {{a[i]: a[i + 1] for i in range(len(a) - 1) if a[i].startswith("-") and "=" not in a[i]}}
assert "--InputChromaFormat=444" in a and "--InputBitDepth=8" in a, a
if opt["-q"] == "63":
    print("boom", file=sys.stderr); sys.exit(3)
w, h = int(opt["-wdt"]), int(opt["-hgt"])
data = open(opt["-i"], "rb").read()
assert len(data) == 3 * w * h
open(opt["-b"], "wb").write(b"FAKE" + opt["-q"].encode().rjust(2) + zlib.compress(data, 9))
"""
FAKE_DECODER = """#!{python}
import sys, zlib
a = sys.argv[1:]
opt = {{a[i]: a[i + 1] for i in range(len(a) - 1)}}
open(opt["-o"], "wb").write(zlib.decompress(open(opt["-b"], "rb").read()[6:]))
"""


@pytest.fixture
def fake_vtm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A VTM tree whose 'binaries' pass the YCbCr file through losslessly (zlib, so the rate is
    a real one below 24 bpp): the codec's tests and the chapters' VTM paths use it, no real VTM
    build needed."""
    root = tmp_path / "fake-vtm"
    (root / "bin").mkdir(parents=True)
    (root / "cfg").mkdir()
    for name, text in (("EncoderAppStatic", FAKE_ENCODER), ("DecoderAppStatic", FAKE_DECODER)):
        p = root / "bin" / name
        p.write_text(text.format(python=sys.executable))
        p.chmod(0o755)
    (root / "cfg" / "encoder_intra_vtm.cfg").write_text("# fake\n")
    monkeypatch.setenv("NICSPEC_VTM_DIR", str(root))
    return root
