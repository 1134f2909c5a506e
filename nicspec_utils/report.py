"""What the chapters display: one ``show`` for every table of the book."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TABLE_CLASS = "nicspec-table"


def styled(df: Any, precision: int = 3, scientific: Sequence[str] | None = None) -> Any:
    """A pandas Styler: no index, numbers rounded, missing values as "–", ``scientific``
    columns (default: those named "... energy" without a "/") in scientific notation."""
    style = df.style.format(precision=precision, na_rep="–")
    if scientific is None:
        scientific = [c for c in df.columns if "energy" in str(c) and "/" not in str(c)]
    if scientific:
        style = style.format("{:.3e}", subset=list(scientific), na_rep="–")
    return style.hide(axis="index")


def show(df: Any, precision: int = 3, scientific: Sequence[str] | None = None) -> None:
    """Display a table (see :func:`styled`) in a box that scrolls sideways when it is wider
    than the text column (book/_static/nicspec.css), so no column is cut off the page."""
    from IPython.display import HTML, display

    html = styled(df, precision, scientific).to_html()
    display(HTML(f'<div class="{TABLE_CLASS}">{html}</div>'))
