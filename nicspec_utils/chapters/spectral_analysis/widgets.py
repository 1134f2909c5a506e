"""Chapter 3's kernel-free browser of the pre-rendered maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...engines.evaluate import Point
from ...errors import UsageError
from ...widgets import PREVIEW_FORMAT
from .plots import colour_range, render_maps
from .settings import NIC


@dataclass
class MapBrowser:
    """Pre-rendered D/G/R maps of chapter 3's rows, by condition (dataset and corruption),
    severity, model and codec (see :func:`browser_panels`)."""

    conditions: list[tuple[str, str | None]]  # (dataset, corruption or None for clean)
    severities: list[int]
    models: list[str]
    codecs: list[str]
    scales: dict[str, tuple[float, float]]  # per measure: shared colour range
    panels: dict[tuple[str, str | None, int | None, str, str], dict[str, Any]]
    block: int = 4
    fmt: str = PREVIEW_FORMAT  # how the maps are encoded (render_maps)

    @property
    def nbytes(self) -> int:
        """Image bytes the widget embeds (before base64)."""
        return sum(len(p["image"]) for p in self.panels.values())

    def panel(
        self, dataset: str, corruption: str | None, severity: int | None, model: str, codec: str
    ) -> dict[str, Any] | None:
        """The panel of one combination (clean conditions ignore the severity); None if absent."""
        sev = None if corruption is None else severity
        return self.panels.get((dataset, corruption, sev, model, codec))


def _caption(row: Mapping[str, Any], measures: Sequence[str]) -> str:
    p: Point = row["point"]
    who = f"{row['codec']} at the bpp of {row['model']}" if row["codec"] != NIC else row["model"]
    text = f"{who}: {row['bpp']:.3f} bpp, PSNR {row['psnr']:.2f} dB"
    if row.get("psnr_wrt_clean") is not None:
        text += f" ({row['psnr_wrt_clean']:.2f} dB w.r.t. clean)"
    for m in measures:
        s = p.band_shares(m)
        text += (f"<br>{m}: low / medium / high {100 * s['low']:.0f} / {100 * s['medium']:.0f} / "
                 f"{100 * s['high']:.0f} %, energy {p.energy(m):.3g}")  # fmt: skip
    return text


def browser_panels(
    rows: Sequence[Mapping[str, Any]],
    block: int = 4,
    max_bytes: int | None = 2_000_000,
    fmt: str = PREVIEW_FORMAT,
) -> MapBrowser:
    """Render every row's maps (D for a clean row, G and R for a corrupted one) on one colour
    range per measure shared by all rows, so any two panels compare; duplicates (the same
    combination twice) keep the first. The maps are WebP by default (``fmt``: ``"png"`` for
    palette PNGs, four times the bytes). Over ``max_bytes``, the maps are rendered again with
    twice the tile size (down to 16 px tiles)."""
    browser = _browser_panels(rows, block, fmt)
    while max_bytes is not None and browser.nbytes > max_bytes and browser.block < 16:
        browser = _browser_panels(rows, browser.block * 2, fmt)
    return browser


def _browser_panels(
    rows: Sequence[Mapping[str, Any]], block: int, fmt: str = PREVIEW_FORMAT
) -> MapBrowser:
    from ...corruptions import corruption_info

    measures_of = {True: ("D",), False: ("G", "R")}
    scales = {}
    for m in ("D", "G", "R"):
        specs = [r["point"].spectra[m] for r in rows if m in measures_of[r["corruption"] is None]]
        if specs:
            scales[m] = colour_range(specs)
    clean = list(dict.fromkeys((r["dataset"], None) for r in rows if r["corruption"] is None))
    corrupted = sorted(
        {(r["dataset"], r["corruption"]) for r in rows if r["corruption"] is not None},
        key=lambda c: (c[0], corruption_info(str(c[1]))[0]),
    )
    panels: dict[tuple[str, str | None, int | None, str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["dataset"], r["corruption"], r["severity"], r["model"], r["codec"])
        if key in panels:
            continue
        measures = measures_of[r["corruption"] is None]
        specs = [(r["point"].spectra[m], *scales[m]) for m in measures]
        panels[key] = {
            "measures": list(measures),
            "image": render_maps(specs, block=block, fmt=fmt),
            "caption": _caption(r, measures),
        }
    severities = sorted({int(r["severity"]) for r in rows if r["corruption"] is not None})
    return MapBrowser(
        conditions=[*clean, *corrupted],
        severities=severities,
        models=list(dict.fromkeys(r["model"] for r in rows)),
        codecs=list(dict.fromkeys(r["codec"] for r in rows)),
        scales=scales,
        panels=panels,
        block=block,
        fmt=fmt,
    )


def _condition_label(dataset: str, corruption: str | None) -> str:
    from ...corruptions import corruption_info
    from ...labels import dataset_label

    ds = dataset_label(dataset).split(" (")[0]
    if corruption is None:
        return f"{ds}: clean"
    number, group = corruption_info(corruption)
    return f"{ds}: {number}. {corruption.replace('_', ' ')} ({group})"


def _stack_or_one(
    children: Sequence[Any], picker: Any, memo: dict[tuple[int, ...], Any] | None = None
) -> Any:
    """:func:`widgets.linked_stack` of ``children``, or the child itself when all are one widget
    (a clean map under every severity, a combination missing for every codec); with ``memo``,
    the same children under the same picker give the same stack. Fewer widgets to embed."""
    from ...widgets import linked_stack

    if all(c is children[0] for c in children):
        return children[0]
    if memo is None:
        return linked_stack(children, picker)
    key = (id(picker), *map(id, children))
    if key not in memo:
        memo[key] = linked_stack(children, picker)
    return memo[key]


def spectra_browser(browser: MapBrowser, map_width: int = 330) -> Any:
    """Dropdowns (input, severity, model, codec) switching ``Stack``s of the pre-rendered maps,
    linked in the browser (:func:`widgets.linked_stack`), so the page needs no kernel; each map
    is shown ``map_width`` px wide. Widgets share their layouts and identical branches collapse,
    which keeps the embedded widget state small."""
    try:
        import ipywidgets as w
    except ImportError:
        raise UsageError(
            "the browser needs ipywidgets (pip install 'nicspec-utils[book]')"
        ) from None

    b = browser
    plain = w.Layout()
    wide = w.Layout(width="max-content")
    picture = {n: w.Layout(width=f"{n * map_width}px") for n in (1, 2, 3)}
    pick_cond = w.Dropdown(
        options=[_condition_label(*c) for c in b.conditions], description="input", layout=wide
    )
    sev_options = [f"severity {s}" for s in b.severities] or ["(clean only)"]
    pick_sev = w.Dropdown(options=sev_options, description="severity", layout=wide)
    pick_model = w.Dropdown(options=b.models, description="rate of", layout=wide)
    codec_names = [c if c == NIC else f"{c} at the model's bpp" for c in b.codecs]
    pick_codec = w.Dropdown(options=codec_names, description="codec", layout=wide)
    missing = w.HTML("<i>not computed in this profile</i>", layout=plain)

    def card(panel: dict[str, Any] | None) -> Any:
        if panel is None:
            return missing
        measures = panel["measures"]
        head = " | ".join(f"<b>{m}</b>" for m in measures)
        img = w.Image(value=panel["image"], format=b.fmt, layout=picture[min(len(measures), 3)])
        text = w.HTML(f"{head} (left to right)<br><small>{panel['caption']}</small>", layout=plain)
        return w.VBox([img, text], layout=plain)

    cards: dict[tuple[str, str | None, int | None, str, str], Any] = {}

    def cached_card(ds: str, corr: str | None, sev: int | None, model: str, codec: str) -> Any:
        key = (ds, corr, None if corr is None else sev, model, codec)
        if key not in cards:  # a clean card appears under every severity: one widget
            cards[key] = card(b.panel(*key))
        return cards[key]

    sevs: list[int | None] = list(b.severities) or [None]
    memo: dict[tuple[int, ...], Any] = {}
    by_cond = []
    for ds, corr in b.conditions:
        by_sev = []
        for sev in sevs:
            by_model = [
                _stack_or_one(
                    [cached_card(ds, corr, sev, m, c) for c in b.codecs], pick_codec, memo
                )
                for m in b.models
            ]
            by_sev.append(_stack_or_one(by_model, pick_model, memo))
        by_cond.append(_stack_or_one(by_sev, pick_sev, memo))
    maps = _stack_or_one(by_cond, pick_cond, memo)
    ranges = "; ".join(f"{m}: {lo:.3g} to {hi:.3g}" for m, (lo, hi) in b.scales.items())
    note = (
        "Mean |F| (DC zeroed), centre = lowest frequency, axes ±0.5 cycles/px; averaged over "
        f"{b.block}x{b.block} frequency tiles. One logarithmic viridis scale per measure for every "
        f"panel ({ranges}). Clean inputs have no severity."
    )
    box = w.VBox(
        [
            w.HTML("<style>.nicspec-spectra img {image-rendering: pixelated;}</style>"),
            w.HBox([pick_cond, pick_sev, pick_model, pick_codec], layout={"flex_flow": "row wrap"}),
            maps,
            w.HTML(f"<small>{note}</small>", layout=plain),
        ]
    )
    box.add_class("nicspec-spectra")
    return box
