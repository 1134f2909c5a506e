"""Kernel-free ipywidgets: stacks switched by dropdowns through browser-side links only, so a
page built from an executed notebook stays interactive without a running kernel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def linked_stack(children: Iterable[Any], picker: Any) -> Any:
    """A ``Stack`` of ``children`` whose visible child follows ``picker.index`` (a ``jslink``)."""
    import ipywidgets as w

    stack = w.Stack(list(children), selected_index=0)
    w.jslink((picker, "index"), (stack, "selected_index"))
    return stack
