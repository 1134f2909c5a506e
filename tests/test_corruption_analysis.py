"""Chapter 1 analysis: corruption spectra, band tables, grouping agreement, caching, gallery."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicspec_utils import corruptions as C
from nicspec_utils.cache import project_root
from nicspec_utils.chapters.corruption_benchmark import claims, plots, settings, study, widgets
from nicspec_utils.errors import UsageError
from nicspec_utils.io import write_png_atomic
from nicspec_utils.labels import dataset_label
from nicspec_utils.spectral import (
    BAND_EDGES,
    BAND_NAMES,
    band_energies,
    radial_frequency,
    zero_dc,
)

# The paper's grouping (shared/PAPER_PROTOCOL.md), written out independently of the package.
PAPER_GROUPS = {
    "snow": "low",
    "frost": "low",
    "fog": "low",
    "brightness": "low",
    "contrast": "low",
    "motion_blur": "medium",
    "zoom_blur": "medium",
    "defocus_blur": "medium",
    "glass_blur": "medium",
    "elastic_transform": "medium",
    "jpeg_compression": "medium",
    "pixelate": "medium",
    "gaussian_noise": "high",
    "shot_noise": "high",
    "impulse_noise": "high",
}
H, W = 64, 96


def _synthetic(img: np.ndarray, name: str, severity: int, seed: int = 0, image_key: str = ""):
    """Stand-in corruptions with known spectra: a pixel checkerboard (the highest frequency),
    a sinusoid of period 8 px (medium) and a smooth ramp (low)."""
    y, x = np.mgrid[: img.shape[0], : img.shape[1]]
    amp = 10.0 * severity
    if name == "gaussian_noise":
        delta = amp * np.where((x + y) % 2 == 0, 1.0, -1.0)
    elif name == "defocus_blur":
        delta = amp * np.sin(2 * np.pi * x / 8.0)
    else:
        delta = amp * (x / img.shape[1] - 0.5)
    out = img.astype(np.float64) + delta[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.fixture()
def tiny_dataset(tmp_path: Path) -> str:
    """Two flat grey 64x96 images (no clipping of the synthetic corruptions), as a folder."""
    rng = np.random.default_rng(0)
    for i in range(2):
        img = np.full((H, W, 3), 100 + 20 * i, dtype=np.uint8)
        img += rng.integers(0, 3, size=img.shape, dtype=np.uint8)
        write_png_atomic(tmp_path / "clean" / f"img{i}.png", img)
    return f"folder:{tmp_path / 'clean'}"


@pytest.fixture()
def synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(C, "corrupt", _synthetic)


def _spectra(dataset: str, cache: Path, **kwargs) -> study.CorruptionSpectra:
    return study.corruption_spectra(
        dataset, "fog,defocus_blur,gaussian_noise", kwargs.pop("severities", "1,3"),
        None, 0, cache, jobs=1, **kwargs,
    )  # fmt: skip


def test_synthetic_corruptions_land_in_their_band(
    tiny_dataset: str, synthetic: None, tmp_path: Path
) -> None:
    spectra = _spectra(tiny_dataset, tmp_path / "cache")
    assert spectra.shape == (H, W) and spectra.severities == [1, 3]
    assert spectra.corruptions == ["fog", "defocus_blur", "gaussian_noise"]
    table = claims.grouping_agreement(study.band_table(spectra))
    shares = table.set_index("corruption")
    assert shares.loc["gaussian_noise", "high"] > 0.99
    assert shares.loc["defocus_blur", "medium"] > 0.99
    assert shares.loc["fog", "low"] > 0.5
    assert table["agree"].all()
    np.testing.assert_allclose(table[list(BAND_NAMES)].sum(axis=1), 1.0)


def test_caching_returns_identical_arrays_without_recomputing(
    tiny_dataset: str, synthetic: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = _spectra(tiny_dataset, cache)
    assert first.computed == 6

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached spectrum")

    monkeypatch.setattr(study, "_compute_entry", fail)
    second = _spectra(tiny_dataset, cache)
    assert second.computed == 0
    for key, entry in first.entries.items():
        again = second.entries[key]
        np.testing.assert_array_equal(again.magnitude, entry.magnitude)
        np.testing.assert_array_equal(again.ring_energy, entry.ring_energy)
        assert again.bands == entry.bands and again.key == entry.key


def test_cache_is_keyed_by_configuration(
    tiny_dataset: str, synthetic: None, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = _spectra(tiny_dataset, cache, severities="3")
    other_seed = study.corruption_spectra(
        tiny_dataset, "fog,defocus_blur,gaussian_noise", "3", None, 1, tmp_path / "c2", jobs=1
    )
    assert other_seed.computed == 3
    assert {e.key for e in other_seed.entries.values()}.isdisjoint(
        e.key for e in first.entries.values()
    )
    # a damaged cache file is recomputed, not trusted
    path = next((cache / "spectra").rglob("fog-s3-*.npz"))
    path.write_bytes(b"not an npz")
    again = _spectra(tiny_dataset, cache, severities="3")
    assert again.computed == 1
    np.testing.assert_array_equal(again[("fog", 3)], first[("fog", 3)])


def test_rings_reproduce_band_energies_exactly() -> None:
    rng = np.random.default_rng(3)
    power = rng.random((H, W))
    rings = np.bincount(
        study.ring_index(power.shape).ravel(),
        weights=zero_dc(power).ravel(),
        minlength=settings.N_RINGS,
    )
    expected = band_energies(power, power=True)
    got = study.shares_from_rings(rings, BAND_EDGES)
    for band in BAND_NAMES:
        assert got[band] == pytest.approx(expected[band], rel=1e-12)
    assert study.ring_index(power.shape).max() < settings.N_RINGS
    assert np.all(
        study.ring_index(power.shape) * settings.RING_STEP <= radial_frequency(power.shape)
    )
    with pytest.raises(UsageError):
        study.shares_from_rings(rings, (0.03, 1 / 3))


def _fake(
    dataset: str = "kodak", dominant: dict[str, str] | None = None
) -> study.CorruptionSpectra:
    """All 15 corruptions x severities 1, 5 with chosen band shares (no images involved)."""
    spectra = study.CorruptionSpectra(dataset, ["a", "b"], 0)
    for name in C.corruption_names():
        band = (dominant or {}).get(name, PAPER_GROUPS[name])
        for severity, main in ((1, 0.6), (5, 0.8)):
            rings = np.zeros(settings.N_RINGS)
            rest = (1 - main) / 2
            bands = dict.fromkeys(BAND_NAMES, rest) | {band: main}
            for b, ring in zip(BAND_NAMES, (4, 40, 200), strict=True):
                rings[ring] = bands[b]
            spectra.entries[(name, severity)] = study.SeveritySpectrum(
                name, severity, np.full((8, 12), float(severity), np.float32), bands, rings, 2, "k"
            )
    return spectra


def test_band_table_has_the_15_corruptions_with_the_papers_groups() -> None:
    table = study.band_table(_fake())
    assert len(table) == 15
    assert list(table["number"]) == list(range(1, 16))
    assert dict(zip(table["corruption"], table["group"], strict=True)) == PAPER_GROUPS
    # mean over severities: 0.6 and 0.8 in the paper's band
    for name, group in PAPER_GROUPS.items():
        assert table.set_index("corruption").loc[name, group] == pytest.approx(0.7)
    per = study.band_table(_fake(), by_severity=True)
    assert len(per) == 30 and set(per["severity"]) == {1, 5}
    agreement = claims.grouping_agreement(table)
    assert agreement["agree"].all() and (agreement["dominant"] == agreement["group"]).all()


def test_disagreements_are_reported() -> None:
    agreement = claims.grouping_agreement(study.band_table(_fake(dominant={"snow": "medium"})))
    assert int(agreement["agree"].sum()) == 14
    row = agreement.set_index("corruption").loc["snow"]
    assert row["dominant"] == "medium" and row["paper_share"] == pytest.approx(0.15)
    sentence = claims.agreement_sentence(agreement, "Kodak")
    assert sentence.startswith("On Kodak, 14 of 15 corruptions")
    assert "snow (paper: low; measured: medium, 70 %, 15 % in low)" in sentence
    word, text = claims.verdict({"Kodak": agreement, "CLIC": agreement})
    assert word == "partly reproduced" and "28 of 30" in text and "snow" in text
    assert (
        claims.verdict({"Kodak": claims.grouping_agreement(study.band_table(_fake()))})[0]
        == "reproduced"
    )
    everything_wrong = {n: "high" if g != "high" else "low" for n, g in PAPER_GROUPS.items()}
    bad = claims.grouping_agreement(study.band_table(_fake(dominant=everything_wrong)))
    assert claims.verdict({"Kodak": bad})[0] == "not reproduced"
    counts = claims.group_counts({"Kodak": agreement})
    assert counts.loc["low", "Kodak"] == "4 / 5" and counts.loc["high", "Kodak"] == "3 / 3"


def test_severity_pivot_and_edge_sensitivity() -> None:
    spectra = _fake(dominant={"zoom_blur": "low"})
    pivot = claims.severity_pivot(spectra)
    assert list(pivot.columns[-2:]) == ["severity 1", "severity 5"]
    assert list(pivot.columns[:3]) == ["#", "corruption", "paper's group"]
    assert pivot.set_index("corruption").loc["zoom blur", "severity 5"] == "low 80%"
    sentence = claims.severity_exceptions(spectra, "Kodak")
    assert sentence == (
        "On Kodak, 2 of 30 (corruption, severity) pairs disagree: "
        "zoom blur at severities 1, 5 (low)."
    )
    assert claims.severity_exceptions(_fake(), "Kodak").endswith(
        "0 of 30 (corruption, severity) pairs disagree."
    )
    grid = claims.edge_sensitivity(spectra)
    assert grid.shape == (3, 3)
    # rings 4, 40 and 200 (x 1/384) stay in low / medium / high for every edge pair on the grid
    assert (grid.to_numpy() == 14).all()
    sentence = claims.sensitivity_sentence({"Kodak": grid})
    assert "9 pairs" in sentence and "number 14 of 15 on Kodak." in sentence


def test_severity_span() -> None:
    assert settings.severity_span([1, 2, 3, 5]) == "1-3, 5"
    assert settings.severity_span([3]) == "3" and settings.severity_span([1, 3, 5]) == "1, 3, 5"


def test_select_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nicspec_utils.data import get_dataset

    kodak = get_dataset("kodak")
    assert len(settings.select_image_ids(kodak, None)) == 24
    assert settings.select_image_ids(kodak, 2) == ["kodim01", "kodim02"]
    assert settings.select_image_ids(kodak, 0) == []
    assert len(settings.select_image_ids(kodak, 99)) == 24
    with pytest.raises(UsageError):
        settings.select_image_ids(kodak, -1)
    assert settings.set_dir(tmp_path, "folder:/a/b") == tmp_path / "folder_a_b"
    assert settings.resolve_cache_dir("results/x") == project_root() / "results/x"
    # The default is the store's folder: <results>/corrupted, wherever $NICSPEC_RESULTS points.
    monkeypatch.setenv("NICSPEC_RESULTS", str(tmp_path / "store"))
    assert settings.resolve_cache_dir(None) == tmp_path / "store" / "corrupted"
    assert settings.set_dir(None, "kodak") == tmp_path / "store" / "corrupted" / "kodak"
    assert settings.display_path(project_root() / "results" / "x") == "results/x"
    assert settings.display_path(tmp_path) == str(tmp_path.resolve())
    assert dataset_label("clic2025-val") == "CLIC 2025 (stand-in for CLIC 2020)"


def test_gallery_picks_alternate_between_datasets() -> None:
    picks = widgets.gallery_picks({"kodak": ["k1", "k2", "k3"], "clic": ["c1"]}, 3)
    assert picks == [("kodak", "k1"), ("clic", "c1"), ("kodak", "k2")]
    assert widgets.gallery_picks({"kodak": ["k1"]}, 0) == []
    with pytest.raises(UsageError):
        widgets.gallery_picks({}, -1)


def test_format_agreement_for_display() -> None:
    shown = claims.format_agreement(claims.grouping_agreement(study.band_table(_fake())))
    assert list(shown.columns) == [
        "corruption", "paper's group", "low", "medium", "high", "dominant band", "agrees"
    ]  # fmt: skip
    assert shown.loc[13, "corruption"] == "gaussian noise" and shown.loc[13, "high"] == "70.0 %"
    assert set(shown["agrees"]) == {"yes"}


def test_thumbnail_shows_whole_image_and_a_1_to_1_detail() -> None:
    img = np.zeros((H * 4, W * 4, 3), dtype=np.uint8)
    data = widgets.thumbnail(img, width=96, detail=50, fmt="png")
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.size == (96 + 6 + 50, 64)
    webp = widgets.thumbnail(img)
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"  # the default: WebP
    assert widgets.thumbnail(img, fmt="jpeg")[:2] == b"\xff\xd8"
    with pytest.raises(UsageError):
        widgets.thumbnail(img, fmt="gif")


def test_gallery_widget_links_dropdowns_to_stacks(
    tiny_dataset: str, synthetic: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ipywidgets = pytest.importorskip("ipywidgets")
    names, sevs = ["fog", "gaussian_noise"], [1, 3]
    spectra = study.corruption_spectra(tiny_dataset, names, sevs, None, 0, tmp_path, jobs=1)
    picks = widgets.gallery_picks({tiny_dataset: spectra.image_ids}, 5)
    assert picks == [(tiny_dataset, "img0"), (tiny_dataset, "img1")]
    thumbs = widgets.gallery_thumbnails(picks, names, sevs, tmp_path)
    assert len(thumbs) == 2 * (1 + 2 * 2)
    label = dataset_label(tiny_dataset)
    links: list[tuple[tuple, tuple]] = []
    real_jslink = ipywidgets.jslink

    def recording_jslink(source: tuple, target: tuple):
        links.append((source, target))
        return real_jslink(source, target)

    monkeypatch.setattr(ipywidgets, "jslink", recording_jslink)
    box = widgets.gallery_widget(thumbs)
    dropdowns, panels, _ = box.children
    image, corruption, severity = dropdowns.children
    assert list(image.options) == [f"{label}: img0", f"{label}: img1"]
    assert list(corruption.options) == ["3. fog (low)", "13. gaussian noise (high)"]
    assert list(severity.options) == ["1", "3"]
    clean = panels.children[0].children[1]
    corrupted = panels.children[1].children[1]
    assert isinstance(corrupted, ipywidgets.Stack) and len(corrupted.children) == 2
    assert len(clean.children) == 2
    leaf = corrupted.children[1].children[1].children[0]
    assert leaf.format == "webp"
    assert leaf.value == thumbs[(f"{label}: img1", "gaussian_noise", 1)]
    # client-side links only: dropdown index -> stack selected_index, one per stack it drives
    assert {(s[1], t[1]) for s, t in links} == {("index", "selected_index")}
    driven = {id(d): [t[0] for s, t in links if s[0] is d] for d in (image, corruption, severity)}
    assert len(driven[id(image)]) == 2 and clean in driven[id(image)]
    assert corrupted in driven[id(image)]
    assert len(driven[id(corruption)]) == 2 and len(driven[id(severity)]) == 2 * 2
    assert all(isinstance(t, ipywidgets.Stack) for ts in driven.values() for t in ts)
    # the gallery fits its text column: rows wrap, nothing wider than 100%, previews scale down
    assert box.layout.max_width == "100%"
    assert dropdowns.layout.flex_flow == panels.layout.flex_flow == "row wrap"
    assert leaf.layout.max_width == "100%" and leaf.layout.height == "auto"


def test_figures_render(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    fig = plots.plot_spectra_grid(_fake())
    assert len(fig.axes) >= 15
    fig.savefig(tmp_path / "grid.png")
    fig = plots.plot_radial_profiles([_fake(), _fake("clic2025-val")])
    fig.savefig(tmp_path / "radial.png")


# --- the grouping claim in the one statistical model (#16) -----------------------------------


def test_each_image_has_its_own_band_shares_and_they_survive_the_cache(
    tiny_dataset: str, synthetic: None, tmp_path: Path
) -> None:
    first = _spectra(tiny_dataset, tmp_path / "cache")
    again = _spectra(tiny_dataset, tmp_path / "cache")
    assert first.computed == 6 and again.computed == 0
    images = study.image_table([again])
    assert len(images) == 3 * 2 * 2 and set(images["image"]) == {"img0", "img1"}
    np.testing.assert_allclose(images[list(BAND_NAMES)].sum(axis=1), 1.0)
    noise = images[images["corruption"] == "gaussian_noise"]
    assert (noise["high"] > 0.99).all()
    for key, entry in first.entries.items():
        np.testing.assert_array_equal(entry.image_shares, again.entries[key].image_shares)
    # two images: too few for a verdict, whatever the margins
    checks = claims.grouping_checks([again], n_boot=200)
    assert list(checks["verdict"]) == ["inconclusive"] * 3
    assert (checks["effect"].astype(float) > 0.5).all()


def _synthetic_spectra(
    margins: dict[str, float], n: int, sd: float, seed: int, datasets: int = 1
) -> list[study.CorruptionSpectra]:
    """Per-image shares with a known mean margin per corruption: the paper's band holds
    (1 + m) / 3 of the energy, the other two (1 - m / 2) / 3 each, plus image noise."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(datasets):
        ids = [f"img{i}" for i in range(n)]
        spectra = study.CorruptionSpectra(f"set{d}", ids, 0)
        for name, m in margins.items():
            own = BAND_NAMES.index(PAPER_GROUPS[name])
            for severity in (1, 3):
                shares = np.empty((n, 3))
                for i in range(n):
                    mi = m + sd * rng.standard_normal()
                    row = np.full(3, (1 - mi / 2) / 3)
                    row[own] = (1 + mi) / 3
                    shares[i] = row
                spectra.entries[(name, severity)] = study.SeveritySpectrum(
                    name, severity, np.ones((8, 12), np.float32), {}, np.zeros(3), n, "k",
                    shares, tuple(ids),
                )  # fmt: skip
        out.append(spectra)
    return out


def test_grouping_verdicts_come_from_the_interval() -> None:
    margins = {"fog": 0.3, "gaussian_noise": -0.3, "defocus_blur": 0.0}
    checks = claims.grouping_checks(_synthetic_spectra(margins, 12, 0.05, 1), n_boot=500)
    by = checks.set_index("claim")
    # the effect is the margin: (1 + m) / 3 - (1 - m / 2) / 3 = m / 2
    assert by.loc["3. fog", "effect"] == pytest.approx(0.15, abs=0.02)
    assert by.loc["3. fog", "verdict"] == "reproduced"
    assert by.loc["3. fog", "ci_low"] > 0 and by.loc["3. fog", "n_images"] == 12
    assert by.loc["13. gaussian noise", "verdict"] == "contradicted"
    assert by.loc["8. defocus blur", "verdict"] == "inconclusive"
    assert by.loc["8. defocus blur", "ci_low"] < 0 < by.loc["8. defocus blur", "ci_high"]
    assert claims.grouping_verdict(checks) == "inconclusive"
    good = claims.grouping_checks(_synthetic_spectra({"fog": 0.3}, 12, 0.05, 2), n_boot=500)
    assert claims.grouping_verdict(good) == "reproduced"
    # seeded: the same data give the same interval
    again = claims.grouping_checks(_synthetic_spectra(margins, 12, 0.05, 1), n_boot=500)
    assert list(again["ci_low"]) == list(checks["ci_low"])


def test_grouping_pools_datasets_stratified_and_states_the_change() -> None:
    spectra = _synthetic_spectra({"fog": 0.3, "snow": 0.0}, 4, 0.02, 3, datasets=2)
    checks = claims.grouping_checks(spectra, n_boot=300)
    fog = checks.set_index("claim").loc["3. fog"]
    assert fog["n_images"] == 8 and "stratified by dataset" in fog["method"]
    assert fog["verdict"] == "reproduced"
    former = ("partly reproduced", "")
    text = claims.change_sentence(former, checks)
    assert "Verdict: inconclusive" in text and "was *partly reproduced*" in text
    assert "1 reproduced, 0 contradicted, 1 inconclusive of 2" in text
    assert "changed from *partly reproduced* to *inconclusive*" in text


def test_the_interval_covers_a_known_margin_about_95_percent_of_the_time() -> None:
    covered = 0
    runs = 60
    for seed in range(runs):
        checks = claims.grouping_checks(_synthetic_spectra({"fog": 0.2}, 20, 0.1, seed), n_boot=300)
        row = checks.iloc[0]
        covered += row["ci_low"] <= 0.1 <= row["ci_high"]
    assert 0.85 * runs <= covered <= runs
