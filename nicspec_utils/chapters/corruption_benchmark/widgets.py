"""Chapter 1's gallery: previews of the corrupted images and a kernel-free widget over them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import corruptions as C
from ...data import get_dataset
from ...errors import DataError, UsageError
from ...io import read_image
from ...selection import dataset_label
from ...widgets import PREVIEW_FORMAT, PREVIEW_FORMATS, encode_preview, linked_stack
from .settings import _fmt_name, set_dir

# --- gallery ---------------------------------------------------------------------------------


def thumbnail(
    img: np.ndarray,
    width: int = 192,
    detail: int = 128,
    fmt: str = PREVIEW_FORMAT,
    quality: int = 70,
) -> bytes:
    """Encoded preview (WebP at ``quality`` by default, :func:`widgets.encode_preview`): the
    whole image scaled to ``width`` px wide, and beside it a ``detail`` x ``detail`` crop from
    the centre at 1:1 (noise and blur show only there). At quality 70 the quick profile's 92
    previews weigh 0.56 MB (0.70 at 80, 1.04 as JPEG at 75), which keeps the page under 3 MB."""
    from PIL import Image

    if fmt not in PREVIEW_FORMATS:
        raise UsageError(f"thumbnail format must be one of {', '.join(PREVIEW_FORMATS)}, "
                         f"got {fmt!r}")  # fmt: skip
    h, w = img.shape[:2]
    height = max(1, round(h * width / w))
    small = np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.LANCZOS))
    d = min(detail, h, w)
    top, left = (h - d) // 2, (w - d) // 2
    crop = img[top : top + d, left : left + d]
    rows = max(height, d)
    canvas = np.full((rows, width + 6 + d, 3), 255, dtype=np.uint8)
    canvas[:height, :width] = small
    canvas[:d, width + 6 :] = crop
    return encode_preview(canvas, fmt, quality)


def gallery_picks(selected: Mapping[str, Sequence[str]], count: int) -> list[tuple[str, str]]:
    """Up to ``count`` (dataset, image id) pairs, taken in turn from each dataset's selection."""
    if int(count) < 0:
        raise UsageError(f"gallery_images must be 0 or more, got {count}")
    queues = [[(name, i) for i in ids] for name, ids in selected.items()]
    picks: list[tuple[str, str]] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        picks += [q[rank] for q in queues if rank < len(q)]
    return picks[: int(count)]


def gallery_thumbnails(
    picks: Sequence[tuple[str, str]],
    corruptions: Sequence[str],
    severities: Sequence[int],
    cache_dir: str | os.PathLike[str] | None,
    **kwargs: Any,
) -> dict[tuple[str, str | None, int | None], bytes]:
    """Previews ``{(label, corruption, severity): bytes}`` of (dataset, image id) ``picks`` from
    their built sets; ``label`` is ``"<dataset label>: <image id>"`` and the clean image is
    ``(label, None, None)``. Keyword arguments go to :func:`thumbnail`."""
    out: dict[tuple[str, str | None, int | None], bytes] = {}
    for dataset_name, image_id in picks:
        dataset = get_dataset(dataset_name)
        folder = set_dir(cache_dir, dataset.name)
        label = f"{dataset_label(dataset.name)}: {image_id}"
        out[(label, None, None)] = thumbnail(dataset.load(image_id), **kwargs)
        for name in corruptions:
            for severity in severities:
                path = folder / name / str(severity) / f"{image_id}.png"
                if not path.is_file():
                    raise DataError(f"{path} is missing; build the corrupted set first")
                out[(label, name, severity)] = thumbnail(read_image(path), **kwargs)
    return out


def gallery_widget(
    thumbs: Mapping[tuple[str, str | None, int | None], bytes],
    fmt: str = PREVIEW_FORMAT,
) -> Any:
    """Dropdowns (image, corruption, severity) driving nested ``Stack``s of precomputed images.

    Every dropdown's ``index`` is ``jslink``-ed to the ``selected_index`` of the stacks it
    controls, so the widget works from its embedded state in a static page, with no kernel.
    """
    try:
        import ipywidgets as w
    except ImportError:
        raise UsageError(
            "the gallery needs ipywidgets (pip install 'nicspec-utils[book]')"
        ) from None

    images = list(dict.fromkeys(k[0] for k in thumbs))
    names = [n for n in C.corruption_names() if any(k[1] == n for k in thumbs)]
    sevs = sorted({k[2] for k in thumbs if k[2] is not None})
    if not images or not names or not sevs:
        raise UsageError("the gallery needs at least one image, corruption and severity")

    def pic(key: tuple[str, str | None, int | None]) -> Any:
        if key not in thumbs:
            raise DataError(f"no preview for {key}")
        # at most its column's width, scaled down with its aspect ratio kept (narrow pages)
        return w.Image(
            value=thumbs[key], format=fmt, layout={"max_width": "100%", "height": "auto"}
        )

    layout = {"width": "max-content", "max_width": "100%"}
    # Rows wrap and the whole widget is at most as wide as the text column it sits in: the two
    # previews side by side (~660 px) and the three menus do not fit a narrow column on one line.
    row = {"flex_flow": "row wrap", "max_width": "100%"}
    column = {"max_width": "100%", "min_width": "0"}
    pick_image = w.Dropdown(options=images, description="image", layout=layout)
    pick_corruption = w.Dropdown(
        options=[f"{C.get_corruption(n).number}. {_fmt_name(n)} ({C.get_corruption(n).group})"
                 for n in names],
        description="corruption",
        layout=layout,
    )  # fmt: skip
    pick_severity = w.Dropdown(
        options=[str(s) for s in sevs], description="severity", layout={"max_width": "100%"}
    )
    clean = linked_stack([pic((i, None, None)) for i in images], pick_image)
    per_image = []
    for i in images:
        per_corruption = []
        for n in names:
            per_corruption.append(linked_stack([pic((i, n, s)) for s in sevs], pick_severity))
        per_image.append(linked_stack(per_corruption, pick_corruption))
    corrupted = linked_stack(per_image, pick_image)
    caption = "left: whole image (downscaled); right: the centre at 1:1"
    return w.VBox(
        [
            w.HBox([pick_image, pick_corruption, pick_severity], layout=row),
            w.HBox(
                [
                    w.VBox([w.HTML("<b>clean</b>"), clean], layout=column),
                    w.VBox([w.HTML("<b>corrupted</b>"), corrupted], layout=column),
                ],
                layout=row,
            ),
            w.HTML(f"<small>{caption}</small>"),
        ],
        layout={"max_width": "100%"},
    )
