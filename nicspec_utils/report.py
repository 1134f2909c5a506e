"""What the chapters display: one ``show`` for every table of the book, and ``show_figure``
for figures that PNG hardly compresses (maps)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from .labels import column_label, reader_columns

TABLE_CLASS = "nicspec-table"


def styled(
    df: Any,
    precision: int = 3,
    scientific: Sequence[str] | None = None,
    rename: bool = True,
) -> Any:
    """A pandas Styler: no index, numbers rounded, missing values as "–", ``scientific``
    columns (default: those named "... energy" without a "/") in scientific notation; with
    ``rename``, columns carry the reader's names and units (:func:`labels.column_label`)."""
    if rename:
        df = reader_columns(df)
        scientific = None if scientific is None else [column_label(c) for c in scientific]
    style = df.style.format(precision=precision, na_rep="–")
    if scientific is None:
        scientific = [c for c in df.columns if "energy" in str(c) and "/" not in str(c)]
    if scientific:
        style = style.format("{:.3e}", subset=list(scientific), na_rep="–")
    return style.hide(axis="index")


def show(
    df: Any,
    precision: int = 3,
    scientific: Sequence[str] | None = None,
    rename: bool = True,
) -> None:
    """Display a table (see :func:`styled`) in a box that scrolls sideways when it is wider
    than the text column, its first column kept in view (book/_static/nicspec.css), so no
    column is cut off the page and each row keeps its name."""
    from IPython.display import HTML, display

    html = styled(df, precision, scientific, rename).to_html()
    display(HTML(f'<div class="{TABLE_CLASS}">{html}</div>'))


def figure_bytes(fig: Any, fmt: str = "jpeg", quality: int = 85, dpi: int = 100) -> bytes:
    """A matplotlib figure as JPEG (``quality``) or PNG bytes; the figure is closed. Maps of
    mean |F| are noisy images that PNG hardly compresses: as JPEG they weigh about a sixth."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    if fmt == "png":
        return buf.getvalue()
    out = io.BytesIO()
    Image.open(io.BytesIO(buf.getvalue())).convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def show_figure(fig: Any, fmt: str = "jpeg", quality: int = 85, dpi: int = 100) -> int:
    """Display a figure (see :func:`figure_bytes`) in the notebook; return its size in bytes.
    The book links it to its full-resolution file and widens it when it is wider than the
    text column (book/_ext/nicspec_book.py)."""
    from IPython.display import Image, display

    data = figure_bytes(fig, fmt=fmt, quality=quality, dpi=dpi)
    display(Image(data=data, format=fmt))
    return len(data)
