"""labels: one colour per codec / NIC curve / model on every page, and the reader's column
names that report.show puts on every table."""

from __future__ import annotations

import pandas as pd
import pytest

from nicspec_utils import labels, report
from nicspec_utils.labels import (
    CURVE_LADDER,
    CURVE_MSSSIM,
    CURVE_PRUNED,
    CURVE_VR,
    colour,
    column_label,
    style,
)


def test_a_codec_has_one_colour_whatever_its_spelling() -> None:
    assert colour("JPEG2000") == colour("jpeg2000") == labels.CODEC_COLOURS["jpeg2000"]
    assert colour("HEVC (x265)") == colour("hevc")
    assert colour("VTM (published)") == colour("vtm") == colour("VTM")
    assert colour("BPG (x265, 4:4:4) (published)") == labels.CODEC_COLOURS["bpg"]


def test_models_take_their_curves_hue_and_pairs_share_it() -> None:
    a, b = colour("sh-mse-0.0025"), colour("sh-mse-0.0483")
    assert a != b  # two ladder models told apart ...
    assert colour("nic:sh-mse-0.0067") == colour("NIC sh-mse-0.0067") == colour("sh-mse-0.0067")
    # ... a NIC model and the JPEG2000 matched to it read as a pair
    assert colour("JPEG2000 @ sh-mse-0.0067") == colour("NIC sh-mse-0.0067")
    assert colour("JPEG2000 @ sh-mse-0.0067 (PSNR)") == colour("sh-mse-0.0067")
    assert colour("sh-vr-mse") == labels.CURVE_COLOURS[CURVE_VR]
    curves = [colour(c) for c in (CURVE_LADDER, CURVE_VR, CURVE_PRUNED, CURVE_MSSSIM)]
    assert len(set(curves)) == 4 and labels.CODEC_COLOURS["jpeg2000"] not in curves
    nic, j2k = style("NIC sh-mse-0.0067"), style("JPEG2000 @ sh-mse-0.0067")
    assert nic["facecolor"] == j2k["edgecolor"] == colour("sh-mse-0.0067")
    assert j2k["hatch"] and "hatch" not in nic and j2k["facecolor"] != nic["facecolor"]
    assert style("JPEG2000 @ sh-mse-0.0067", "line")["ls"] == "--"


def test_unknown_names_get_a_stable_colour() -> None:
    assert colour("my-codec") == colour("my-codec") in labels.FALLBACK_COLOURS


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("bd_rate_psnr_pct", "BD-rate, PSNR (%)"),
        ("delta_psnr_clean", "ΔPSNR vs clean, NIC − JPEG2000 (dB)"),
        ("psnr", "PSNR (dB)"),
        ("psnr_wrt_clean NIC", "PSNR vs clean (dB) NIC"),
        ("gaussian_noise", "gaussian noise"),
        ("model", "model"),
        ("PSNR (dB)", "PSNR (dB)"),
        (3, 3),
    ],
)
def test_column_label(raw: object, shown: object) -> None:
    assert column_label(raw) == shown


def test_show_puts_the_readers_names_on_a_table() -> None:
    df = pd.DataFrame({"curve": ["a"], "bd_rate_psnr_pct": [-1.234], "high energy": [1234.5]})
    html = report.styled(df, precision=2).to_html()
    assert "BD-rate, PSNR (%)" in html and "bd_rate_psnr_pct" not in html
    assert "-1.23" in html and "1.234e+03" in html  # rounding and scientific columns kept
    raw = report.styled(df, rename=False).to_html()
    assert "bd_rate_psnr_pct" in raw
    assert list(df.columns) == ["curve", "bd_rate_psnr_pct", "high energy"]  # not renamed in place


def test_encode_preview_formats() -> None:
    import io

    import numpy as np
    from PIL import Image

    from nicspec_utils.errors import UsageError
    from nicspec_utils.widgets import encode_preview

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    sizes = {}
    for fmt, name in (("webp", "WEBP"), ("jpeg", "JPEG"), ("png", "PNG")):
        data = encode_preview(img, fmt, quality=80)
        with Image.open(io.BytesIO(data)) as back:
            assert back.format == name and back.size == (64, 48)
        sizes[fmt] = len(data)
    assert sizes["webp"] < sizes["png"]
    with pytest.raises(UsageError, match="preview format"):
        encode_preview(img, "gif")
