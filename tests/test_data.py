"""Datasets: Kodak, the mirror-backed sets, folders, checksums, robust reading, `nicspec data`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicspec_utils import data
from nicspec_utils.cli import main
from nicspec_utils.data import Dataset, get_dataset
from nicspec_utils.errors import DataError, UsageError
from nicspec_utils.io import read_image

KODAK_DIR = data.REPO_DATA / "kodak"
# raw PNG is 512 wide and 768 tall; the dataset transposes it to landscape
KODAK_PORTRAIT = "kodim04"
# CLIC 2025 validation: a portrait file (1365 wide, 2048 tall) and a landscape one (2048 x 1358)
CLIC_PORTRAIT = "100f17892cf7bb12beb12479641fcc4c"
CLIC_LANDSCAPE = "0c49a5cce349020bbba2f97ae41e90ba"


def _kodak_copy(dest: Path) -> Path:
    """A copy of the Kodak folder with its SHA256SUMS."""
    shutil.copytree(KODAK_DIR, dest)
    return dest


# --- Kodak -------------------------------------------------------------------------------------


def test_kodak_is_24_landscape_images() -> None:
    ds = get_dataset("kodak")
    assert len(ds) == 24 and ds.image_ids[0] == "kodim01" and ds.image_ids[-1] == "kodim24"
    assert ds.transform == "landscape" and ds.normalisation is data.KODAK_NORM
    portrait_raw = 0
    for image_id in ds.image_ids:
        img = ds.load(image_id)
        assert img.shape == (512, 768, 3) and img.dtype == np.uint8
        with Image.open(ds.path(image_id)) as raw:
            portrait_raw += raw.size == (512, 768)  # PIL size is (width, height)
    assert portrait_raw == 6  # kodim04, 09, 10, 17, 18, 19


def test_kodak_portrait_is_transposed() -> None:
    ds = get_dataset("kodak")
    with Image.open(ds.path(KODAK_PORTRAIT)) as raw:
        assert raw.size == (512, 768)  # 512 wide: portrait
        arr = np.asarray(raw.convert("RGB"))
    loaded = ds.load(KODAK_PORTRAIT)
    np.testing.assert_array_equal(loaded, arr.transpose(1, 0, 2))
    assert loaded.flags.c_contiguous
    # a landscape image is left alone
    with Image.open(ds.path("kodim01")) as raw:
        np.testing.assert_array_equal(ds.load("kodim01"), np.asarray(raw.convert("RGB")))


def test_select_and_unknown_image() -> None:
    ds = get_dataset("kodak")
    assert ds.select(["kodim03", "kodim01"]).image_ids == ["kodim03", "kodim01"]
    assert ds.select(limit=2).image_ids == ["kodim01", "kodim02"]
    with pytest.raises(UsageError, match="no image 'kodim99'"):
        ds.load("kodim99")
    with pytest.raises(UsageError, match="--limit"):
        ds.select(limit=0)


# --- checksums ---------------------------------------------------------------------------------


def test_kodak_verifies() -> None:
    assert get_dataset("kodak").verify() == []


def test_verify_detects_changed_missing_and_extra_files(tmp_path: Path) -> None:
    folder = _kodak_copy(tmp_path / "kodak")
    ds = get_dataset(f"folder:{folder}")
    assert ds.manifest == folder / "SHA256SUMS" and ds.verify() == []
    # flip one byte in the middle of one file
    target = folder / "kodim07.png"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    assert get_dataset(f"folder:{folder}").verify() == ["kodim07.png: sha256 mismatch"]
    # a missing file and a file the manifest does not know
    (folder / "kodim08.png").unlink()
    shutil.copy(KODAK_DIR / "kodim01.png", folder / "extra.png")
    problems = get_dataset(f"folder:{folder}").verify()
    assert sorted(problems) == sorted(
        ["kodim07.png: sha256 mismatch", "extra.png: not in manifest", "kodim08.png: missing"]
    )


def test_verify_without_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(KODAK_DIR / "kodim01.png", folder)
    problems = get_dataset(f"folder:{folder}").verify()
    assert len(problems) == 1 and "no SHA256SUMS" in problems[0]


# --- folders -----------------------------------------------------------------------------------


def test_folder_dataset_with_labels(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("b", "a", "c"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), np.uint8)).save(
            folder / "images" / f"{name}.png"
        )
    (folder / "images" / "notes.txt").write_text("not an image")
    (folder / "labels.csv").write_text("file,label,name\na.png,3,x\nb.png,7,y\n")
    ds = get_dataset(f"folder:{folder}")
    assert ds.name == f"folder:{folder}" and ds.image_ids == ["a", "b", "c"]
    assert ds.labels == {"a": 3, "b": 7}
    assert ds.label("b") == 7 and ds.label("c") is None
    assert ds.load("a").shape == (40, 48, 3) and ds.transform == "none"


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a folder"):
        get_dataset(f"folder:{tmp_path / 'nowhere'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        get_dataset(f"folder:{tmp_path / 'empty'}")
    folder = tmp_path / "badlabels"
    folder.mkdir()
    shutil.copy(KODAK_DIR / "kodim01.png", folder)
    (folder / "labels.csv").write_text("name,class\nkodim01.png,1\n")
    with pytest.raises(DataError, match="'file' and 'label'"):
        get_dataset(f"folder:{folder}")


# --- mirror-backed datasets --------------------------------------------------------------------


def test_clic2025_is_transposed_centre_crops(mirror: Path) -> None:
    ds = get_dataset("clic2025-val")
    assert len(ds) == 26 and ds.normalisation is data.CLIC_NORM
    for image_id, portrait in ((CLIC_PORTRAIT, True), (CLIC_LANDSCAPE, False)):
        raw = np.asarray(Image.open(mirror / "clic2025" / "validation" / f"{image_id}.png"))
        assert (raw.shape[0] > raw.shape[1]) == portrait
        if portrait:
            raw = raw.transpose(1, 0, 2)
        h, w = raw.shape[:2]
        top, left = (h - 512) // 2, (w - 768) // 2
        expected = raw[top : top + 512, left : left + 768]
        loaded = ds.load(image_id)
        assert loaded.shape == (512, 768, 3) and loaded.dtype == np.uint8
        np.testing.assert_array_equal(loaded, expected)


def test_clic2025_verifies(mirror: Path) -> None:
    assert get_dataset("clic2025-val").verify() == []


def test_imagenet_subset_is_256_with_labels(mirror: Path) -> None:
    ds = get_dataset("imagenet-val-subset")
    assert len(ds) == 1300 and ds.normalisation is data.IMAGENET_NORM
    assert ds.labels is not None and set(ds.labels) == set(ds.image_ids)
    with (mirror / "imagenet-val-subset" / "labels.csv").open(newline="") as f:
        first = next(csv.DictReader(f))
    first_id = Path(first["file"]).stem
    assert ds.label(first_id) == int(first["label"])
    assert all(0 <= v < 1000 for v in ds.labels.values())
    for image_id in ds.image_ids[:2]:
        img = ds.load(image_id)
        assert img.shape == (256, 256, 3) and img.dtype == np.uint8
        assert img.std() > 5  # a real picture, not a constant


def test_transform_clic_rejects_small_images() -> None:
    with pytest.raises(DataError, match="smaller than the 768x512"):
        data.transform_clic(np.zeros((600, 700, 3), np.uint8))


def test_offline_without_mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pooch

    def no_network(url: str, *args: object, **kwargs: object) -> str:
        raise ConnectionError(f"no route to {url}")

    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(pooch, "retrieve", no_network)
    # a mirror-only dataset
    with pytest.raises(DataError) as info:
        get_dataset("clic2025-val")
    msg = str(info.value)
    assert data.MIRROR_ENV in msg and "https://clic2025.compression.cc" in msg and "\n" not in msg
    # a downloadable dataset: the download fails cleanly, naming the URL
    with pytest.raises(DataError) as info:
        get_dataset("clic2020-test")
    msg = str(info.value)
    assert data.MIRROR_ENV in msg and data.CLIC2020_URLS["test"][0] in msg and "\n" not in msg
    assert "ConnectionError" in msg
    # Kodak ships with the repository
    assert len(get_dataset("kodak")) == 24


def test_mirror_that_is_not_a_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "nope"))
    with pytest.raises(DataError, match=data.MIRROR_ENV):
        get_dataset("gb82")


def test_unknown_dataset() -> None:
    with pytest.raises(UsageError, match="unknown dataset 'nope'") as info:
        get_dataset("nope")
    assert "kodak" in str(info.value) and "folder:PATH" in str(info.value)


# --- reading images ----------------------------------------------------------------------------


def test_read_greyscale_rgba_and_16_bit(tmp_path: Path) -> None:
    grey = np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) % 256
    Image.fromarray(grey.astype(np.uint8), mode="L").save(tmp_path / "grey.png")
    with pytest.warns(UserWarning, match="greyscale"):
        img = read_image(tmp_path / "grey.png")
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], grey)

    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:20, :, 3] = 255  # top half opaque, bottom half transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    with pytest.warns(UserWarning, match="alpha"):
        img = read_image(tmp_path / "rgba.png")
    assert img.shape == (40, 40, 3) and img.dtype == np.uint8
    assert (img[:20] == (10, 20, 30)).all() and (img[20:] == 255).all()  # composited on white

    deep = np.full((36, 36), 65535, np.uint16)
    deep[:, :18] = 128 * 257  # 65535 = 255 * 257: exactly 128 in 8 bits
    Image.fromarray(deep).save(tmp_path / "deep.png")
    with pytest.warns(UserWarning, match="16-bit"):
        img = read_image(tmp_path / "deep.png")
    assert img.shape == (36, 36, 3) and img.dtype == np.uint8
    assert (img[:, 18:] == 255).all() and (img[:, :18] == 128).all()


def test_read_plain_rgb_gives_no_warning(recwarn: pytest.WarningsRecorder) -> None:
    img = read_image(KODAK_DIR / "kodim01.png")
    assert img.shape == (512, 768, 3) and img.dtype == np.uint8
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_truncated_and_tiny_images(tmp_path: Path) -> None:
    raw = (KODAK_DIR / "kodim01.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DataError, match="cannot read image") as info:
        read_image(tmp_path / "cut.png")
    assert "\n" not in str(info.value)
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="cannot read image"):
        read_image(tmp_path / "junk.png")
    Image.fromarray(np.zeros((16, 64, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(DataError, match="at least 32 px"):
        read_image(tmp_path / "tiny.png")
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "absent.png")


# --- nicspec data ------------------------------------------------------------------------------


def test_cli_verify_kodak(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "verify", "kodak"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 24 images of kodak")


def test_cli_verify_broken_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _kodak_copy(tmp_path / "k")
    target = folder / "kodim05.png"
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0x01
    target.write_bytes(bytes(raw))
    assert main(["data", "verify", f"folder:{folder}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "kodim05.png: sha256 mismatch" in err
    assert err[-1].startswith("nicspec: error:") and "1 problem" in err[-1]


def test_cli_verify_unknown_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "verify", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in data.dataset_names():
        assert f"\n{name}\n" in f"\n{out}"
    assert "r0k.us" in out and "clic2025.compression.cc" in out
    assert out.count("source:") == len(data.dataset_names())


def test_cli_data_needs_an_action() -> None:
    with pytest.raises(SystemExit) as info:
        main(["data"])
    assert info.value.code == 2


def test_dataset_is_frozen() -> None:
    ds = get_dataset("kodak")
    assert isinstance(ds, Dataset)
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]


# --- silent wrong results become errors (#15) --------------------------------------------------


def _folder_of(root: Path, *names: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(KODAK_DIR / "kodim01.png", root / "tmp.png")
        Image.open(root / "tmp.png").convert("RGB").crop((0, 0, 48, 40)).save(root / name)
        (root / "tmp.png").unlink()
    return root


def test_duplicate_stems_in_a_folder(tmp_path: Path) -> None:
    folder = _folder_of(tmp_path / "set", "a.png", "a.tif", "b.png")
    with pytest.raises(DataError, match=r"a\.png and a\.tif share the image id 'a'"):
        get_dataset(f"folder:{folder}")


def test_select_refuses_repeated_ids() -> None:
    ds = get_dataset("kodak")
    with pytest.raises(UsageError, match="more than once: kodim01"):
        ds.select(["kodim01", "kodim02", "kodim01"])
    assert ds.select(["kodim02", "kodim01"]).image_ids == ["kodim02", "kodim01"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"file,label\na.png,3\nb.png,seven\n", r"labels.csv:3: label 'seven' is not an integer"),
        (b"file,label\na.png,3\nb.png\n", r"labels.csv:3: 1 field\(s\), but the header has 2"),
        (b"file,label\na.png,3\n\x00\x01\x02\xff\n", r"labels.csv:3: binary content"),
        (b"file,label\na.png,3\nb\xff\xfe.png,1\n", r"labels.csv:3: not UTF-8"),
        (b"file,label\na.png,3\n\na.png,4\n", r"labels.csv:4: image 'a' already has a label"),
        (b"file,label\na.png,3\nc.png,1\nd.png,2\n", r"names 2 image\(s\) that are not in"),
        (b"file,label\n,3\n", r"labels.csv:2: no file name"),
        (b'file,label\n"a.png,3\n', r"labels.csv:\d+: .*(CSV|field)"),
    ],
    ids=["not-integer", "short-row", "binary", "not-utf8", "twice", "missing", "no-name", "quote"],
)
def test_malformed_labels_csv(tmp_path: Path, content: bytes, needle: str) -> None:
    folder = _folder_of(tmp_path / "set", "a.png", "b.png")
    (folder / "labels.csv").write_bytes(content)
    with pytest.raises(DataError, match=needle):
        get_dataset(f"folder:{folder}")


def test_labels_naming_missing_files_lists_the_first(tmp_path: Path) -> None:
    folder = _folder_of(tmp_path / "set", "a.png")
    rows = "".join(f"x{i}.png,{i}\n" for i in range(5))
    (folder / "labels.csv").write_text(f"file,label\na.png,1\n{rows}")
    with pytest.raises(DataError, match=r"names 5 image\(s\) .*: x0, x1, x2, \.\.\."):
        get_dataset(f"folder:{folder}")


def test_labels_with_a_bom_and_blank_lines(tmp_path: Path) -> None:
    folder = _folder_of(tmp_path / "set", "a.png", "b.png")
    (folder / "labels.csv").write_bytes(b"\xef\xbb\xbffile,label\r\na.png,3\r\n\r\nb.png, 4\r\n")
    assert get_dataset(f"folder:{folder}").labels == {"a": 3, "b": 4}


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("not-a-digest  kodim01.png", "SHA256SUMS:2: not a '<64 hex digits>  <file name>' line"),
        ("a" * 64, "SHA256SUMS:2: not a"),
        ("\x00\x01", "SHA256SUMS:2: binary content"),
        ("b" * 64 + "  kodim01.png", "SHA256SUMS:2: kodim01.png is listed again"),
    ],
    ids=["bad-digest", "no-name", "binary", "twice"],
)
def test_malformed_sha256sums(tmp_path: Path, line: str, needle: str) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("a" * 64 + "  kodim01.png\n" + line + "\n")
    with pytest.raises(DataError, match=needle):
        data.read_sha256sums(sums)


def test_sha256sums_binary_mode_and_upper_case(tmp_path: Path) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("A" * 64 + " *kodim01.png\n\n" + "b" * 64 + "  with space.png\n")
    assert data.read_sha256sums(sums) == {"kodim01.png": "a" * 64, "with space.png": "b" * 64}


def _photos(folder: Path, sizes: list[tuple[int, int]]) -> None:
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i, (w, h) in enumerate(sizes):
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i}.png")


def test_a_folder_of_landscape_and_portrait_photos_is_oriented(tmp_path: Path) -> None:
    from nicspec_utils.engines.evaluate import evaluate

    _photos(tmp_path / "photos", [(200, 120), (120, 200), (200, 120)])
    ds = get_dataset(f"folder:{tmp_path / 'photos'}")
    assert ds.transform == "landscape"
    assert {ds.load(i).shape for i in ds.image_ids} == {(120, 200, 3)}
    metrics = json.loads(
        evaluate("jpeg", ds.name, quality=50, out=tmp_path / "r", progress=False).read_text()
    )
    assert metrics["n_images"] == 3 and metrics["config"]["transform"] == "landscape"


def test_a_folder_of_several_sizes_is_cropped_to_the_size_they_share(tmp_path: Path) -> None:
    from nicspec_utils.engines.evaluate import evaluate

    _photos(tmp_path / "photos", [(200, 120), (96, 180), (240, 160)])
    with pytest.warns(UserWarning, match="centre-cropped to 180x96"):
        ds = get_dataset(f"folder:{tmp_path / 'photos'}")
    assert ds.transform == "landscape-crop:96x180"
    assert {ds.load(i).shape for i in ds.image_ids} == {(96, 180, 3)}
    with pytest.warns(UserWarning):
        path = evaluate("jpeg", ds.name, quality=50, out=tmp_path / "r", progress=False)
    assert json.loads(path.read_text())["n_images"] == 3
