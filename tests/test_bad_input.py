"""Bad input through the whole CLI: one ``nicspec: error:`` line, the right exit code, no litter.

Every case runs ``cli.main([...])`` in-process (one case runs the real command in a subprocess,
where warnings reach stderr). Usage errors exit 2, data errors exit 1; a failed run leaves no
``metrics.json`` and no ``*.tmp`` in ``--out``. Odd but readable images (greyscale, RGBA,
16-bit, sizes that are not multiples of 64) are converted with a warning and evaluated.

"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicspec_utils import cli

REPO = Path(__file__).resolve().parent.parent
NIC = "nic:sh-mse-0.0067"
NIC_VR = "nic:sh-vr-mse"
JPEG = ["--codec", "jpeg", "--quality", "50"]

torch.set_num_threads(1)


# --- helpers -------------------------------------------------------------------------------------
def _smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A small natural-ish RGB image: gradients plus mild noise (uint8, HxWx3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / w, y / h, (x + y) / (h + w)], axis=-1) * 200 + 20
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


def _png16_rgb(path: Path, arr: np.ndarray) -> None:
    """Write a 16-bit-per-channel RGB PNG (Pillow cannot write one) by hand."""
    h, w, _ = arr.shape
    rows = b"".join(b"\x00" + arr[r].astype(">u2").tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16 bit, colour type 2 (RGB)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small folder dataset per kind of input, built once."""
    root = tmp_path_factory.mktemp("bad-input")
    d: dict[str, Path] = {}

    d["good"] = _folder(root, "good")
    Image.fromarray(_smooth(64, 64)).save(d["good"] / "a.png")

    d["truncated"] = _folder(root, "truncated")
    Image.fromarray(_smooth(64, 64)).save(d["truncated"] / "a.png")
    Image.fromarray(_smooth(64, 64, 1)).save(d["truncated"] / "b.png")
    data = (d["truncated"] / "b.png").read_bytes()
    (d["truncated"] / "b.png").write_bytes(data[: len(data) // 2])

    d["text"] = _folder(root, "text")
    Image.fromarray(_smooth(64, 64)).save(d["text"] / "a.png")
    (d["text"] / "b.png").write_text("this is not a PNG\n")

    d["tiny"] = _folder(root, "tiny")
    Image.fromarray(_smooth(64, 64)).save(d["tiny"] / "a.png")
    Image.fromarray(_smooth(20, 64)).save(d["tiny"] / "b.png")

    d["grey"] = _folder(root, "grey")
    Image.fromarray(_smooth(64, 64)[..., 0], mode="L").save(d["grey"] / "a.png")

    d["rgba"] = _folder(root, "rgba")
    alpha = np.full((64, 64, 1), 128, np.uint8)
    rgba = np.concatenate([_smooth(64, 64), alpha], axis=-1)
    Image.fromarray(rgba, mode="RGBA").save(d["rgba"] / "a.png")

    d["grey16"] = _folder(root, "grey16")
    Image.fromarray(_smooth(64, 64)[..., 0].astype(np.uint16) * 257).save(d["grey16"] / "a.png")

    d["rgb16"] = _folder(root, "rgb16")
    _png16_rgb(d["rgb16"] / "a.png", _smooth(64, 64).astype(np.uint16) * 257)

    d["dark16"] = _folder(root, "dark16")  # a nearly black 16-bit image: every value < 256
    Image.fromarray(np.full((64, 64), 200, np.uint16)).save(d["dark16"] / "a.png")

    d["odd"] = _folder(root, "odd")  # 100x130: not a multiple of 64 either way
    Image.fromarray(_smooth(100, 130)).save(d["odd"] / "a.png")
    return d


def _run(argv: list[str]) -> int:
    """``cli.main(argv)``; an escaping exception is a failure (it would print a traceback)."""
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse: keep its code, its stderr is checked by the caller
        return int(exc.code or 0)
    except Exception as exc:  # any escaping exception is the bug under test
        pytest.fail(f"traceback instead of one error line: {type(exc).__name__}: {exc}")


def _no_litter(out: Path) -> None:
    if out.exists():
        assert not list(out.rglob("metrics.json")), "a failed run left metrics.json"
        assert not list(out.rglob("*.tmp")), "a failed run left a temporary file"


def _expect_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int, out: Path | None = None
) -> str:
    """Run the CLI; check exit ``code``, exactly one ``nicspec: error:`` line, no litter."""
    rc = _run(argv)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert rc == code, f"exit {rc}, wanted {code}; stderr: {err!r}"
    assert len(lines) == 1, f"wanted one stderr line, got {len(lines)}: {err!r}"
    assert lines[0].startswith("nicspec: error: "), err
    if out is not None:
        _no_litter(out)
    return lines[0]


def _eval(out: Path, *args: str) -> list[str]:
    return ["eval", "--no-progress", "--out", str(out), *args]


# --- usage errors: exit 2 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--codec", "no-such-codec"], "unknown codec"),
        ([*JPEG, "--corruption", "no_such", "--severity", "3"], "unknown corruption"),
        ([*JPEG, "--corruption", "snow", "--severity", "0"], "severity 0"),
        ([*JPEG, "--corruption", "snow", "--severity", "6"], "severity 6"),
        ([*JPEG, "--corruption", "snow"], "--severity"),
        ([*JPEG, "--severity", "3"], "--corruption"),
        (["--codec", "jpeg", "--bpp", "30"], "outside the range"),
        (["--codec", "nic:unknown-model"], "unknown model"),
        (["--codec", NIC_VR], "lmbda"),
        (["--codec", NIC_VR, "--lmbda", "5"], "lmbda must be in"),
        (["--codec", NIC, "--lmbda", "0.0067"], "not a variable-rate model"),
        (["--codec", "jpeg", "--estimate", "--quality", "50"], "neural codecs only"),
    ],
    ids=[
        "unknown-codec",
        "unknown-corruption",
        "severity-0",
        "severity-6",
        "corruption-without-severity",
        "severity-without-corruption",
        "jpeg-bpp-30",
        "nic-unknown-model",
        "vr-without-lmbda",
        "vr-lmbda-out-of-range",
        "fixed-rate-with-lmbda",
        "estimate-on-classic",
    ],
)
def test_usage_error(args, needle, folders, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _eval(out, *args, "--dataset", f"folder:{folders['good']}")
    line = _expect_error(capsys, argv, 2, out)
    assert needle in line


def test_unknown_dataset(tmp_path, capsys):
    out = tmp_path / "out"
    line = _expect_error(capsys, _eval(out, *JPEG, "--dataset", "no-such-dataset"), 2, out)
    assert "unknown dataset" in line


# --- data errors: exit 1 -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "needle"),
    [("truncated", "truncated"), ("text", "cannot identify"), ("tiny", "at least 32 px")],
)
def test_unreadable_or_tiny_image(kind, needle, folders, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _eval(out, *JPEG, "--dataset", f"folder:{folders[kind]}")
    line = _expect_error(capsys, argv, 1, out)
    assert "b.png" in line and needle in line


def test_missing_folder(tmp_path, capsys):
    out = tmp_path / "out"
    argv = _eval(out, *JPEG, "--dataset", f"folder:{tmp_path / 'nowhere'}")
    assert "not a folder" in _expect_error(capsys, argv, 1, out)


# --- checkpoints ---------------------------------------------------------------------------------
def _tiny_sh_checkpoint(path: Path, meta: dict) -> None:
    from compressai.models import ScaleHyperprior

    from nicspec_utils.nic.models import save_checkpoint

    save_checkpoint(ScaleHyperprior(16, 24), path, meta)


def _checkpoint_error(tmp_path, capsys, ckpt: Path, folders) -> str:
    out = tmp_path / "out"
    argv = _eval(out, "--codec", f"checkpoint:{ckpt}", "--dataset", f"folder:{folders['good']}")
    return _expect_error(capsys, argv, 1, out)


def test_checkpoint_missing(tmp_path, capsys, folders):
    line = _checkpoint_error(tmp_path, capsys, tmp_path / "none.safetensors", folders)
    assert "not found" in line


def test_checkpoint_corrupt_bytes(tmp_path, capsys, folders):
    ckpt = tmp_path / "garbage.safetensors"
    ckpt.write_bytes(b"\x00\x01 definitely not safetensors " * 8)
    assert "cannot read checkpoint" in _checkpoint_error(tmp_path, capsys, ckpt, folders)


def test_checkpoint_truncated(tmp_path, capsys, folders):
    ckpt = tmp_path / "half.safetensors"
    _tiny_sh_checkpoint(ckpt, {"architecture": "scale-hyperprior", "N": 16, "M": 24})
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    assert "cannot read checkpoint" in _checkpoint_error(tmp_path, capsys, ckpt, folders)


def test_checkpoint_wrong_size_in_metadata(tmp_path, capsys, folders):
    ckpt = tmp_path / "n16-says-n32.safetensors"
    _tiny_sh_checkpoint(ckpt, {"architecture": "scale-hyperprior", "N": 32, "M": 24})
    assert "does not match architecture" in _checkpoint_error(tmp_path, capsys, ckpt, folders)


def test_checkpoint_vr_tensors_under_fixed_rate_metadata(tmp_path, capsys, folders):
    from nicspec_utils.nic.models import VariableRateScaleHyperprior, save_checkpoint

    ckpt = tmp_path / "vr-says-sh.safetensors"
    model = VariableRateScaleHyperprior(16, 24, 0.001, 0.1, film_hidden=8)
    save_checkpoint(model, ckpt, {"architecture": "scale-hyperprior", "N": 16, "M": 24})
    assert "does not match architecture" in _checkpoint_error(tmp_path, capsys, ckpt, folders)


def test_checkpoint_fixed_rate_tensors_under_vr_metadata(tmp_path, capsys, folders):
    ckpt = tmp_path / "sh-says-vr.safetensors"
    meta = {"architecture": "scale-hyperprior-vr", "N": 16, "M": 24}
    _tiny_sh_checkpoint(ckpt, {**meta, "lmbda_min": 0.001, "lmbda_max": 0.1})
    assert "does not match architecture" in _checkpoint_error(tmp_path, capsys, ckpt, folders)


def test_checkpoint_without_nicspec_metadata(tmp_path, capsys, folders):
    from safetensors.torch import save_file

    ckpt = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(3)}, str(ckpt))
    assert "not a nicspec checkpoint" in _checkpoint_error(tmp_path, capsys, ckpt, folders)


@pytest.mark.parametrize(
    "raw",
    [
        "not json {",
        "[1, 2]",
        "{}",
        '{"architecture": "scale-hyperprior", "N": "many", "M": 24}',
        '{"architecture": "scale-hyperprior-vr", "N": 16, "M": 24}',
    ],
    ids=["not-json", "not-an-object", "no-architecture", "bad-N", "vr-without-lmbda-range"],
)
def test_checkpoint_malformed_metadata(raw, tmp_path, capsys, folders):
    from safetensors.torch import save_file

    ckpt = tmp_path / "bad-meta.safetensors"
    save_file({"x": torch.zeros(3)}, str(ckpt), metadata={"nicspec": raw})
    _checkpoint_error(tmp_path, capsys, ckpt, folders)


# --- odd but readable images: converted with a warning, evaluated -------------------------------
CONVERSIONS = {"grey": "greyscale", "rgba": "alpha", "grey16": "16-bit", "rgb16": "16-bit"}


@pytest.mark.parametrize("codec", ["jpeg", "nic"])
@pytest.mark.parametrize("kind", ["grey", "rgba", "grey16", "rgb16", "odd"])
def test_converted_images_are_evaluated(kind, codec, folders, tmp_path, capsys):
    out = tmp_path / "out"
    codec_args = JPEG if codec == "jpeg" else ["--codec", NIC, "--estimate"]
    argv = _eval(out, *codec_args, "--dataset", f"folder:{folders[kind]}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = _run(argv)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    messages = [str(w.message) for w in caught]
    if kind in CONVERSIONS:
        assert any(CONVERSIONS[kind] in m for m in messages), messages
    found = list(out.rglob("metrics.json"))
    assert len(found) == 1 and not list(out.rglob("*.tmp"))
    metrics = json.loads(found[0].read_text())
    assert metrics["n_images"] == 1
    record = metrics["per_image"][0]
    h, w = (100, 130) if kind == "odd" else (64, 64)
    assert (record["height"], record["width"]) == (h, w)  # NIC padding is cropped away again
    assert record["bpp"] == pytest.approx(record["bits"] / (h * w))
    assert np.isfinite(metrics["psnr"]) and metrics["psnr"] > 15


def test_dark_16bit_image_scaled_by_bit_depth(folders):
    from nicspec_utils.data import get_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = get_dataset(f"folder:{folders['dark16']}").load("a")
    assert int(img.max()) == round(200 / 65535 * 255)  # 1, not 200


# --- nicspec corrupt -----------------------------------------------------------------------------
def _corrupt(out: Path, dataset: str, severities: str = "1") -> list[str]:
    return [
        "corrupt",
        "--no-progress",
        "--jobs",
        "1",
        "--corruptions",
        "brightness",
        "--severities",
        severities,
        "--dataset",
        dataset,
        "--out",
        str(out),
    ]


def test_corrupt_unknown_dataset(tmp_path, capsys):
    out = tmp_path / "set"
    line = _expect_error(capsys, _corrupt(out, "no-such-dataset"), 2, out)
    assert "unknown dataset" in line
    assert not out.exists()


def test_corrupt_bad_severities(folders, tmp_path, capsys):
    out = tmp_path / "set"
    line = _expect_error(capsys, _corrupt(out, f"folder:{folders['good']}", "1-9"), 2, out)
    assert "severity 9" in line
    assert not out.exists()


def test_corrupt_truncated_image(folders, tmp_path, capsys):
    out = tmp_path / "set"
    line = _expect_error(capsys, _corrupt(out, f"folder:{folders['truncated']}"), 1, out)
    assert "b.png" in line
    assert not (out / "brightness" / "1" / "b.png").exists()


def test_corrupt_unwritable_out(folders, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _expect_error(capsys, _corrupt(blocker / "set", f"folder:{folders['good']}"), 1)


def test_eval_unwritable_out(folders, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    argv = _eval(blocker / "out", *JPEG, "--dataset", f"folder:{folders['good']}")
    _expect_error(capsys, argv, 1)


# --- the real command: warnings reach stderr there ----------------------------------------------
def test_real_command_prints_one_line(folders, tmp_path):
    argv = _eval(tmp_path / "out", "--codec", NIC_VR, "--dataset", f"folder:{folders['good']}")
    proc = subprocess.run(
        [sys.executable, "-m", "nicspec_utils.cli", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nicspec: error: "), proc.stderr


# --- #15: silent wrong results, memory runaways and tracebacks, each one line -------------------
def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG of a few KB whose header claims ``width`` x ``height``."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" + bytes(3 * width)))
        + chunk(b"IEND", b"")
    )


def _bad_folder(root: Path, kind: str) -> Path:
    """A folder dataset with one kind of problem (#15)."""
    folder = root / kind
    folder.mkdir()
    Image.fromarray(_smooth(64, 64)).save(folder / "a.png")
    Image.fromarray(_smooth(64, 64, 1)).save(folder / "b.png")
    labels = {
        "labels-not-integer": "file,label\na.png,1\nb.png,two\n",
        "labels-short-row": "file,label\na.png,1\nb.png\n",
        "labels-missing-files": "file,label\na.png,1\nb.png,2\nghost.png,3\n",
        "labels-twice": "file,label\na.png,1\na.png,2\n",
    }
    if kind in labels:
        (folder / "labels.csv").write_text(labels[kind])
    elif kind == "labels-binary":
        (folder / "labels.csv").write_bytes(b"file,label\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    elif kind == "duplicate-stems":
        Image.fromarray(_smooth(64, 64, 2)).save(folder / "a.tif")
    elif kind == "huge":
        _png_header_only(folder / "b.png", 4000, 4000)
    elif kind == "bomb":
        _png_header_only(folder / "b.png", 20000, 20000)
    return folder


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("duplicate-stems", "a.png and a.tif share the image id 'a'"),
        ("labels-not-integer", "labels.csv:3: label 'two' is not an integer"),
        ("labels-short-row", "labels.csv:3: 1 field(s)"),
        ("labels-binary", "labels.csv:4: binary content"),
        ("labels-missing-files", "names 1 image(s) that are not in the folder: ghost"),
        ("labels-twice", "labels.csv:3: image 'a' already has a label (line 2)"),
        ("huge", "4000x4000 (16.0 MP), above the limit"),
        ("bomb", "NICSPEC_MAX_PIXELS"),
    ],
)
@pytest.mark.parametrize("command", ["eval", "corrupt"])
def test_bad_folder(kind, needle, command, tmp_path, capsys):
    folder = _bad_folder(tmp_path, kind)
    out = tmp_path / "out"
    dataset = f"folder:{folder}"
    argv = _eval(out, *JPEG, "--dataset", dataset) if command == "eval" else _corrupt(out, dataset)
    line = _expect_error(capsys, argv, 1, out)
    assert needle in line
    assert not list(out.rglob("b.png")), "a failed run left an output of the image"


def test_repeated_image_ids(folders, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _eval(out, *JPEG, "--dataset", f"folder:{folders['good']}", "--images", "a,a")
    assert "more than once: a" in _expect_error(capsys, argv, 2, out)
    argv = [*_corrupt(out, f"folder:{folders['good']}"), "--images", "a,a"]
    assert "more than once: a" in _expect_error(capsys, argv, 2, out)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("deadbeef  a.png", "SHA256SUMS:2: not a '<64 hex digits>  <file name>' line"),
        ("\x00\x00", "SHA256SUMS:2: binary content"),
    ],
    ids=["short-digest", "binary"],
)
def test_malformed_sha256sums(line, needle, folders, tmp_path, capsys):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "a.png").write_bytes((folders["good"] / "a.png").read_bytes())
    (folder / "SHA256SUMS").write_text("0" * 64 + "  a.png\n" + line + "\n")
    assert needle in _expect_error(capsys, ["data", "verify", f"folder:{folder}"], 1)


def _fhm(out: Path, dataset: str) -> list[str]:
    return ["fhm", "--codec", "jpeg", "--quality", "50", "--dataset", dataset, "--grid", "4",
            "--crop", "32", "--no-progress", "--out", str(out)]  # fmt: skip


@pytest.mark.parametrize("command", ["corrupt", "fhm"])
@pytest.mark.parametrize("where", ["is-a-file", "inside-a-file"])
def test_out_not_a_folder(command, where, folders, tmp_path, capsys, monkeypatch):
    from nicspec_utils.data import Dataset

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(Dataset, "load", fail)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker if where == "is-a-file" else blocker / "set"
    make = _corrupt if command == "corrupt" else _fhm
    line = _expect_error(capsys, make(out, f"folder:{folders['good']}"), 1)
    assert "not a folder" in line and blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("command", ["corrupt", "fhm"])
def test_out_unwritable(command, folders, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        make = _corrupt if command == "corrupt" else _fhm
        argv = make(locked / "set", f"folder:{folders['good']}")
        assert "not writable" in _expect_error(capsys, argv, 1)
    finally:
        locked.chmod(0o700)


# --- checkpoints: sizes are checked before anything is allocated --------------------------------
@pytest.mark.parametrize(
    ("meta", "needle"),
    [
        ({"N": 20000, "M": 20000}, "N=20000"),
        ({"N": -3, "M": 24}, "N=-3"),
        ({"N": 16, "M": 0}, "M=0"),
        ({"N": True, "M": 24}, "N=True"),
        ({"N": 16.5, "M": 24}, "N=16.5"),
        ({"N": 1000, "M": 1000}, "does not match architecture"),  # in bounds, the file is tiny
    ],
    ids=["huge", "negative", "zero", "bool", "fraction", "claims-more-than-stored"],
)
def test_checkpoint_sizes_bounded(meta, needle, tmp_path, capsys, folders):
    from safetensors.torch import save_file

    ckpt = tmp_path / "liar.safetensors"
    raw = json.dumps({"architecture": "scale-hyperprior", **meta})
    save_file({"g_a.0.weight": torch.zeros(16, 3, 5, 5)}, str(ckpt), metadata={"nicspec": raw})
    assert ckpt.stat().st_size < 8000
    assert needle in _checkpoint_error(tmp_path, capsys, ckpt, folders)


@pytest.mark.parametrize("lmbdas", [(0.1, 0.001), (-1, 0.1), ("nan", 0.1), ("low", 0.1)], ids=str)
def test_checkpoint_bad_lambda_range(lmbdas, tmp_path, capsys, folders):
    from safetensors.torch import save_file

    ckpt = tmp_path / "vr.safetensors"
    meta = {"architecture": "scale-hyperprior-vr", "N": 16, "M": 24}
    meta.update(lmbda_min=lmbdas[0], lmbda_max=lmbdas[1])
    save_file({"x": torch.zeros(3)}, str(ckpt), metadata={"nicspec": json.dumps(meta)})
    assert "lmbda_min" in _checkpoint_error(tmp_path, capsys, ckpt, folders)


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_checkpoint_non_finite_weights(value, tmp_path, capsys, folders):
    from compressai.models import ScaleHyperprior
    from safetensors.torch import load_file, save_file

    from nicspec_utils.nic.models import save_checkpoint

    ckpt = tmp_path / "diverged.safetensors"
    meta = {"architecture": "scale-hyperprior", "N": 16, "M": 24}
    save_checkpoint(ScaleHyperprior(16, 24), ckpt, meta)
    state = load_file(str(ckpt))
    state["g_s.0.bias"][3] = value
    save_file(state, str(ckpt), metadata={"nicspec": json.dumps(meta)})
    assert "NaN or infinite" in _checkpoint_error(tmp_path, capsys, ckpt, folders)


# --- a resume state that is not one ------------------------------------------------------------
class _NotWeights:
    """Pickled by torch.save; a weights-only load refuses it."""


@pytest.mark.parametrize("kind", ["garbage", "pickled-object", "wrong-dict", "wrong-shapes"])
def test_train_resume_state_not_a_weights_file(kind, tmp_path, capsys):
    runs, models = tmp_path / "runs", tmp_path / "models"
    state = runs / "sh-mse-0.018" / "last.pt"
    state.parent.mkdir(parents=True)
    if kind == "garbage":
        state.write_bytes(b"\x80\x04 not a torch file" * 10)
    elif kind == "pickled-object":
        torch.save({"model": _NotWeights()}, state)
    elif kind == "wrong-dict":
        torch.save({"model": {}, "step": 3}, state)
    else:
        torch.save(
            {
                "model": {"g_a.0.weight": torch.zeros(2, 3, 5, 5)},
                "optimizer": {},
                "aux_optimizer": {},
                "sampler_rng": torch.zeros(1),
                "lmbda_rng": torch.zeros(1),
                "torch_rng": torch.zeros(1),
                "step": 1,
                "elapsed_s": 1.0,
            },
            state,
        )
    argv = ["train", "--recipe", "sh-mse-0.018", "--runs-dir", str(runs), "--steps", "1",
            "--models-dir", str(models), "--no-progress"]  # fmt: skip
    line = _expect_error(capsys, argv, 1)
    assert str(state) in line and "weights_only" not in line
    assert not models.exists() or not list(models.iterdir())


# --- the book's profiles file -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("- smoke\n- quick\n", "the file must be a mapping"),
        ("profiles: [smoke, quick]\n", "'profiles' must be a mapping"),
        ("profiles:\n  smoke: fast\n", "profile 'smoke' must be a mapping"),
        ("profiles:\n  smoke:\n    chapters: [a, b]\n", "smoke.chapters must be a mapping"),
        ("profiles:\n  smoke:\n    chapters:\n      01_x: 3\n", "smoke.chapters.01_x must be"),
        ("profiles: {smoke: [\n", "cannot read profiles"),
        ("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "cannot read profiles"),
    ],
    ids=["list", "profiles-list", "profile-str", "chapters-list", "params-int", "yaml", "binary"],
)
def test_profiles_of_the_wrong_shape(text, needle, tmp_path, capsys, monkeypatch):
    from nicspec_utils import book

    profiles = tmp_path / "profiles.yaml"
    profiles.write_bytes(text.encode("latin-1"))
    monkeypatch.setattr(book, "PROFILES_FILE", profiles)
    argv = ["book", "--profile", "smoke", "--chapters", "01_x", "--no-html"]
    assert needle in _expect_error(capsys, argv, 1)
