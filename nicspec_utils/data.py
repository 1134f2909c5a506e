"""Datasets: Kodak, CLIC 2020, the CLIC 2025 stand-in, ImageNet validation, training sets, folders.

Every dataset is a :class:`Dataset`: an ordered list of image files, the paper's transform for
that dataset, its per-channel normalisation and, where known, labels. Data comes from the repo
(Kodak), from a local mirror named by ``NICSPEC_DATA_MIRROR`` (laid out like ``shared/data``), or
from the official URLs through pooch with a cache (``NICSPEC_CACHE``, default the OS cache).
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import DataError, UsageError
from .io import image_size, read_image, sha256_file

MIRROR_ENV = "NICSPEC_DATA_MIRROR"
CACHE_ENV = "NICSPEC_CACHE"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
REPO_DATA = Path(__file__).resolve().parent.parent / "data"

KODAK_URL = "https://r0k.us/graphics/kodak/kodak/{name}"
KODAK_DESCRIPTION = "Kodak Lossless True Color Image Suite (24 images, portrait ones transposed)"
CLIC2020_URLS = {
    "test": [
        "https://data.vision.ee.ethz.ch/cvl/clic/test/CLIC2020Mobile_test.zip",
        "https://data.vision.ee.ethz.ch/cvl/clic/test/CLIC2020Professional_test.zip",
    ],
    "valid": [
        "https://data.vision.ee.ethz.ch/cvl/clic/mobile_valid_2020.zip",
        "https://data.vision.ee.ethz.ch/cvl/clic/professional_valid_2020.zip",
    ],
    "train": [
        "https://data.vision.ee.ethz.ch/cvl/clic/mobile_train_2020.zip",
        "https://data.vision.ee.ethz.ch/cvl/clic/professional_train_2020.zip",
    ],
}


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean and std of RGB in [0, 1], used before spectra."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalise an ...xHxWx3 float array in [0, 1]."""
        return (x - np.asarray(self.mean)) / np.asarray(self.std)


KODAK_NORM = Normalisation(
    (0.46581238, 0.43006341, 0.35991835), (0.21588426, 0.22908859, 0.22003406)
)
CLIC_NORM = Normalisation((0.48456091, 0.4452615, 0.41254892), (0.28845296, 0.27559498, 0.28540007))
IMAGENET_NORM = Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def transform_landscape(img: np.ndarray) -> np.ndarray:
    """Kodak: make every image landscape by transposing portrait ones (H, W swapped)."""
    if img.shape[0] > img.shape[1]:
        img = np.ascontiguousarray(img.transpose(1, 0, 2))
    return img


def transform_clic(img: np.ndarray, height: int = 512, width: int = 768) -> np.ndarray:
    """CLIC: transpose portrait images, then take the central ``height`` x ``width`` crop."""
    img = transform_landscape(img)
    h, w = img.shape[:2]
    if h < height or w < width:
        raise DataError(f"image of {w}x{h} is smaller than the {width}x{height} CLIC crop")
    top, left = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(img[top : top + height, left : left + width])


def transform_imagenet(img: np.ndarray) -> np.ndarray:
    """ImageNet: Resize(256) -> CenterCrop(224) -> Resize(256), as torchvision does it."""
    import torch
    from torchvision.transforms import v2

    pipeline = v2.Compose(
        [v2.Resize(256, antialias=True), v2.CenterCrop(224), v2.Resize(256, antialias=True)]
    )
    t = torch.from_numpy(img).permute(2, 0, 1)
    return pipeline(t).permute(1, 2, 0).contiguous().numpy()


def transform_landscape_crop(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """A folder of mixed sizes: landscape as Kodak, then the central ``height`` x ``width``."""
    img = transform_landscape(img)
    h, w = img.shape[:2]
    if h < height or w < width:
        raise DataError(f"image of {w}x{h} is smaller than the common {width}x{height} crop")
    top, left = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(img[top : top + height, left : left + width])


CROP_PREFIX = "landscape-crop:"


def apply_transform(name: str, img: np.ndarray) -> np.ndarray:
    """Apply a named transform (:data:`TRANSFORMS`, or ``landscape-crop:HxW``)."""
    if name.startswith(CROP_PREFIX):
        h, _, w = name.removeprefix(CROP_PREFIX).partition("x")
        return transform_landscape_crop(img, int(h), int(w))
    return TRANSFORMS[name](img)


def transform_none(img: np.ndarray) -> np.ndarray:
    """Leave the image as read."""
    return img


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "landscape": transform_landscape,
    "clic": transform_clic,
    "imagenet": transform_imagenet,
    "none": transform_none,
}


@dataclass(frozen=True)
class Dataset:
    """An ordered set of images with the paper's transform and normalisation."""

    name: str
    files: tuple[Path, ...]
    transform: str = "none"
    normalisation: Normalisation = KODAK_NORM
    labels: dict[str, int] | None = None
    description: str = ""
    manifest: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # True: the images are not on this machine, only the checksum catalogue the repository
    # ships (data/catalogue/<name>): ids and digests (store keys) work, pixels do not
    catalogue: bool = False

    @property
    def image_ids(self) -> list[str]:
        """Image identifiers: the file names without suffix."""
        return [f.stem for f in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def path(self, image_id: str) -> Path:
        """The file behind an image id."""
        for f in self.files:
            if f.stem == image_id:
                return f
        raise UsageError(f"dataset {self.name!r} has no image {image_id!r}")

    def load(self, image_id: str) -> np.ndarray:
        """Read one image and apply the dataset's transform: HxWx3 uint8."""
        if self.catalogue:
            self.path(image_id)  # an unknown id says so first
            raise DataError(
                f"{self.name}: image {image_id} is not on this machine (only its checksum "
                f"catalogue, data/catalogue/{self.name}, is); results not in the bundle need "
                f"the images: set {MIRROR_ENV}"
            )
        return apply_transform(self.transform, read_image(self.path(image_id)))

    def label(self, image_id: str) -> int | None:
        """The class label of an image, if the dataset has labels."""
        return None if self.labels is None else self.labels.get(image_id)

    def select(self, image_ids: Sequence[str] | None = None, limit: int | None = None) -> Dataset:
        """A sub-dataset with the named images (in the given order) and/or the first ``limit``."""
        files = self.files
        if image_ids:
            repeated = sorted({i for i in image_ids if list(image_ids).count(i) > 1})
            if repeated:
                raise UsageError(
                    f"image ids given more than once: {', '.join(repeated[:5])}"
                    + (f" and {len(repeated) - 5} more" if len(repeated) > 5 else "")
                )
            files = tuple(self.path(i) for i in image_ids)
        if limit is not None:
            if limit < 1:
                raise UsageError(f"--limit must be at least 1, got {limit}")
            files = files[:limit]
        return replace(self, files=files)

    def verify(self) -> list[str]:
        """Check every file against the SHA256SUMS manifest; return the problems found."""
        if self.catalogue:
            return [f"dataset {self.name!r}: the images are not on this machine"]
        if self.manifest is None or not self.manifest.exists():
            return [f"dataset {self.name!r} has no SHA256SUMS manifest"]
        expected = read_sha256sums(self.manifest)
        problems = []
        for f in self.files:
            want = expected.get(f.name)
            if want is None:
                problems.append(f"{f.name}: not in manifest")
            elif sha256_file(f) != want:
                problems.append(f"{f.name}: sha256 mismatch")
        names = {f.name for f in self.files}
        problems += [f"{n}: missing" for n in sorted(set(expected) - names) if _is_image(n)]
        return problems


_SHA256_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *]?(\S.*)")


def _read_text(path: Path, what: str) -> str:
    """A UTF-8 text file's contents; DataError naming the line of binary or undecodable bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise DataError(f"{path}:{line}: binary content, not a text {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({what})") from None


def read_sha256sums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-style manifest into {file name: hex digest}."""
    out: dict[str, str] = {}
    for number, line in enumerate(_read_text(path, "SHA256SUMS").splitlines(), start=1):
        if not line.strip():
            continue
        match = _SHA256_LINE.fullmatch(line.rstrip())
        if match is None:
            raise DataError(
                f"{path}:{number}: not a '<64 hex digits>  <file name>' line: {line[:60]!r}"
            )
        name = match[2].strip()
        if name in out and out[name] != match[1].lower():
            raise DataError(f"{path}:{number}: {name} is listed again with another digest")
        out[name] = match[1].lower()
    return out


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def list_images(folder: Path) -> tuple[Path, ...]:
    """Image files in a folder, sorted by name."""
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    files = tuple(sorted(p for p in folder.iterdir() if p.is_file() and _is_image(p.name)))
    if not files:
        raise DataError(f"no images in {folder}")
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        by_stem.setdefault(f.stem, []).append(f)
    clashes = [group for group in by_stem.values() if len(group) > 1]
    if clashes:
        first = " and ".join(f.name for f in clashes[0])
        more = f" (and {len(clashes) - 1} more such groups)" if len(clashes) > 1 else ""
        raise DataError(
            f"{folder}: {first} share the image id {clashes[0][0].stem!r}{more}; "
            "an image id is the file name without its suffix, so keep one of them"
        )
    return files


def read_labels_csv(path: Path) -> dict[str, int]:
    """Read a labels.csv (columns file,label,...) into {image id: label}; DataError with the
    line number for a short row, a label that is not an integer or a file named twice."""
    reader = csv.reader(io.StringIO(_read_text(path, "labels.csv"), newline=""))
    try:
        header = next(reader, None)
        if header is None or not {"file", "label"} <= {h.strip() for h in header}:
            raise DataError(f"{path}: labels.csv needs the columns 'file' and 'label'")
        columns = [h.strip() for h in header]
        i_file, i_label = columns.index("file"), columns.index("label")
        labels: dict[str, int] = {}
        first_line: dict[str, int] = {}
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(i_file, i_label):
                raise DataError(
                    f"{path}:{number}: {len(row)} field(s), but the header has {len(columns)}"
                )
            name, value = row[i_file].strip(), row[i_label].strip()
            if not name:
                raise DataError(f"{path}:{number}: no file name")
            try:
                label = int(value)
            except ValueError:
                raise DataError(
                    f"{path}:{number}: label {value[:40]!r} is not an integer"
                ) from None
            stem = Path(name).stem
            if stem in labels:
                raise DataError(
                    f"{path}:{number}: image {stem!r} already has a label (line {first_line[stem]})"
                )
            labels[stem], first_line[stem] = label, number
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    return labels


def _check_labels(labels: dict[str, int], files: Sequence[Path], path: Path) -> None:
    """DataError when labels.csv names images that are not in the dataset's folder."""
    absent = sorted(set(labels) - {f.stem for f in files})
    if absent:
        shown = ", ".join(absent[:3]) + (", ..." if len(absent) > 3 else "")
        raise DataError(f"{path} names {len(absent)} image(s) that are not in the folder: {shown}")


def mirror_root() -> Path | None:
    """The local mirror named by NICSPEC_DATA_MIRROR, if set."""
    value = os.environ.get(MIRROR_ENV)
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise DataError(f"{MIRROR_ENV}={value} is not a folder")
    return root


def cache_root() -> Path:
    """Where downloads are kept (NICSPEC_CACHE, or the OS cache folder)."""
    import pooch

    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path(pooch.os_cache("nicspec"))


def _from_mirror(relative: str, what: str, url: str) -> Path:
    root = mirror_root()
    if root is None:
        raise DataError(
            f"{what} is not available offline: tried {url}; set {MIRROR_ENV} to a local mirror"
        )
    folder = root / relative
    if not folder.is_dir():
        raise DataError(f"{what}: the mirror {root} has no folder {relative}")
    return folder


def _download_zip(url: str, dest: Path) -> Path:
    """Download and unpack one archive with pooch; a clear error when offline."""
    import pooch

    try:
        # The organisers publish no checksums; pooch records the file's hash in its log.
        archive = pooch.retrieve(url, known_hash=None, path=dest, progressbar=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"could not download {url} ({type(exc).__name__}); set {MIRROR_ENV} to a local mirror"
        ) from None
    out = dest / Path(url).stem
    if not out.exists():
        tmp = dest / (Path(url).stem + ".partial")
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        tmp.rename(out)
    return out


def _clic2020_description(split: str) -> str:
    return f"CLIC 2020 {split} split (mobile + professional), centre-cropped to 512x768"


def _clic2020(split: str) -> Dataset:
    root = mirror_root()
    files: list[Path] = []
    mirror = root / "clic2020" / split if root is not None else None
    if mirror is not None and mirror.is_dir():
        files = list(list_images(mirror))
    else:
        for url in CLIC2020_URLS[split]:
            folder = _download_zip(url, cache_root() / "clic2020")
            files += [p for p in folder.rglob("*") if p.is_file() and _is_image(p.name)]
    return Dataset(
        name=f"clic2020-{split}",
        files=tuple(sorted(files, key=lambda p: p.name)),
        transform="clic",
        normalisation=CLIC_NORM,
        description=_clic2020_description(split),
    )


def _kodak() -> Dataset:
    folder = REPO_DATA / "kodak"
    return Dataset(
        name="kodak",
        files=list_images(folder),
        transform="landscape",
        normalisation=KODAK_NORM,
        manifest=folder / "SHA256SUMS",
        description=KODAK_DESCRIPTION,
        extra={"url": KODAK_URL.format(name="kodimNN.png")},
    )


def _mirror_dataset(
    name: str, relative: str, url: str, description: str, **kwargs: object
) -> Dataset:
    folder = _from_mirror(relative, name, url)
    manifest = folder / "SHA256SUMS"
    labels_file = folder.parent / "labels.csv" if folder.name == "images" else None
    labels = read_labels_csv(labels_file) if labels_file and labels_file.exists() else None
    if not manifest.exists():
        manifest = folder.parent / "SHA256SUMS"
    return Dataset(
        name=name,
        files=list_images(folder),
        manifest=manifest if manifest.exists() else None,
        labels=labels,
        description=description,
        **kwargs,  # type: ignore[arg-type]
    )


def _folder(path: str) -> Dataset:
    folder = Path(path).expanduser()
    labels_csv = folder / "labels.csv"
    images = folder / "images" if (folder / "images").is_dir() else folder
    sums = folder / "SHA256SUMS"
    files = list_images(images)
    labels = read_labels_csv(labels_csv) if labels_csv.exists() else None
    if labels is not None:
        _check_labels(labels, files, labels_csv)
    return Dataset(
        name=f"folder:{folder}",
        files=files,
        # A labelled folder is classification data, left as it is; any other is oriented as the
        # paper orients Kodak, and cropped to one size when its images differ (spectra need one).
        transform="none" if labels is not None else _folder_transform(folder, files),
        labels=labels,
        manifest=sums if sums.exists() else None,
        description=f"images from {folder}",
    )


def header_size(path: Path) -> tuple[int, int]:
    """(width, height) from an image file's header, without decoding it."""
    return image_size(path)


def _folder_transform(folder: Path, files: Sequence[Path]) -> str:
    """``landscape`` when the oriented images share one size, else ``landscape-crop:HxW`` (the
    largest centre crop all of them hold), said in a warning before any work starts."""
    import warnings

    try:
        sizes = {(max(w, h), min(w, h)) for w, h in map(header_size, files)}
    except DataError:  # an unreadable file says so when it is loaded (or verified)
        return "landscape"
    if len(sizes) == 1:
        return "landscape"
    width, height = min(w for w, _ in sizes), min(h for _, h in sizes)
    warnings.warn(
        f"folder:{folder}: {len(files)} images in {len(sizes)} sizes; each is turned landscape "
        f"and centre-cropped to {width}x{height}, the largest size they share, because spectra "
        "need one size",
        stacklevel=3,
    )
    return f"{CROP_PREFIX}{height}x{width}"


# name -> (folder in the mirror, where it comes from, description, Dataset fields)
MIRRORED: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "clic2025-val": (
        "clic2025/validation",
        "https://clic2025.compression.cc",
        "CLIC 2025 validation images (26 of 32, a stand-in for CLIC 2020), "
        "transposed to landscape and centre-cropped to 512x768",
        {"transform": "clic", "normalisation": CLIC_NORM},
    ),
    "imagenet-val-subset": (
        "imagenet-val-subset/images",
        "https://image-net.org/challenges/LSVRC/2012/",
        "1,300 ILSVRC2012 validation images with labels (pre-scaled to 227x227 by their "
        "distributor), Resize(256)-CenterCrop(224)-Resize(256)",
        {"transform": "imagenet", "normalisation": IMAGENET_NORM},
    ),
    "cid22-train": ("train/cid22", "https://cloudinary.com/labs/cid22", "CID22-512 training", {}),
    "cid22-val": (
        "train/cid22-validation",
        "https://cloudinary.com/labs/cid22",
        "CID22-512 validation",
        {},
    ),
    "gb82": (
        "train/gb82",
        "https://github.com/gianni-rosato/gb82-image-set",
        "GB82 image set",
        {},
    ),
}


CATALOGUE = REPO_DATA / "catalogue"
# Datasets whose checksums the repository must not ship: ImageNet's terms forbid redistributing
# anything of it, so it is read from the mirror only (a bundle cannot stand in for it).
NOT_CATALOGUED = frozenset({"imagenet-val-subset"})


def catalogue_manifest(name: str) -> Path:
    """The checksum catalogue the repository ships for a mirrored dataset (its SHA256SUMS)."""
    return CATALOGUE / name / "SHA256SUMS"


def catalogued_dataset(name: str) -> Dataset:
    """A mirrored dataset without its images: ids, order and digests from the repository's
    checksum catalogue (the same as the mirror's SHA256SUMS), files only named (absent), so
    store keys can be planned and a results bundle serve them; loading pixels is a DataError."""
    if name not in MIRRORED or name in NOT_CATALOGUED:
        shipped = ", ".join(n for n in MIRRORED if n not in NOT_CATALOGUED)
        raise UsageError(f"no checksum catalogue for {name!r}: only for {shipped}")
    manifest = catalogue_manifest(name)
    if not manifest.is_file():
        raise DataError(f"{name}: the repository has no checksum catalogue {manifest}")
    relative, url, description, fields = MIRRORED[name]
    absent = Path(f"<{name}: not on this machine>") / relative
    names = sorted(n for n in read_sha256sums(manifest) if _is_image(n))
    if not names:
        raise DataError(f"{manifest} lists no images")
    return Dataset(
        name=name,
        files=tuple(absent / n for n in names),
        manifest=manifest,
        description=description,
        catalogue=True,
        **fields,
    )


def _mirrored(name: str) -> Dataset:
    relative, url, description, fields = MIRRORED[name]
    try:
        return _mirror_dataset(name, relative, url, description, **fields)
    except DataError:
        # no images here: a results bundle of the profile being built may still hold this
        # chapter's results on them (store.covers), keyed by the shipped catalogue
        from .store import covers

        if catalogue_manifest(name).is_file() and covers(name):
            return catalogued_dataset(name)
        raise


DATASETS: dict[str, Callable[[], Dataset]] = {
    "kodak": _kodak,
    "clic2020-test": lambda: _clic2020("test"),
    "clic2020-valid": lambda: _clic2020("valid"),
    "clic2020-train": lambda: _clic2020("train"),
    **{name: partial(_mirrored, name) for name in MIRRORED},
}


def dataset_names() -> list[str]:
    """Names accepted by :func:`get_dataset` (plus ``folder:PATH``)."""
    return [*DATASETS, "folder:PATH"]


def get_dataset(name: str) -> Dataset:
    """Resolve a dataset by name: a registered name or ``folder:PATH``."""
    if name.startswith("folder:"):
        return _folder(name.removeprefix("folder:"))
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(dataset_names())}")
    return DATASETS[name]()


def catalogue() -> list[tuple[str, str, str]]:
    """(name, description, where it comes from) of every dataset; opens and downloads nothing."""
    try:
        root = mirror_root()
    except DataError:
        root = None

    def in_mirror(relative: str) -> str:
        if root is None:
            return f"not found: {MIRROR_ENV} is not set"
        return "found" if (root / relative).is_dir() else f"not found in {root}"

    rows = [
        (
            "kodak",
            KODAK_DESCRIPTION,
            f"in the repository (data/kodak), from {KODAK_URL.format(name='kodimNN.png')}",
        )
    ]
    for split, urls in CLIC2020_URLS.items():
        where = f"mirror clic2020/{split} ({in_mirror(f'clic2020/{split}')}), else downloads "
        rows.append((f"clic2020-{split}", _clic2020_description(split), where + " + ".join(urls)))
    for name, (relative, url, description, _) in MIRRORED.items():
        rows.append((name, description, f"mirror {relative} ({in_mirror(relative)}); from {url}"))
    rows.append(("folder:PATH", "the images in PATH (or PATH/images), labels.csv if any", "PATH"))
    return rows


def load_rgb_tensor_batch(dataset: Dataset, image_ids: Sequence[str]) -> np.ndarray:
    """Load several same-size images as an NxHxWx3 uint8 array."""
    arrays = [dataset.load(i) for i in image_ids]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"images differ in size: {sorted(shapes)}")
    return np.stack(arrays)


def save_rgb(path: Path, arr: np.ndarray) -> None:
    """Save an RGB uint8 array as PNG (non-atomic helper for scratch files)."""
    Image.fromarray(arr).save(path)
