"""scripts/project_paper.py: its counts follow the chapters' loops (by hand, on small
profiles), a store entry two chapters share is counted once, and the committed per-task costs
(data/benchmarks/task_costs.json, measured by the script) put the `paper` profile within 8
hours on 2 workers and `protocol` beyond it. No measuring here: the tests read the costs."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _projector():  # noqa: ANN202 - the script as a module
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "project_paper", ROOT / "scripts" / "project_paper.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SIZES = {"kodak": 24, "clic": 26, "imagenet": 1300, "cid22-train": 210, "gb82": 26}


def _chapter_2(pp, profile: str) -> dict:  # noqa: ANN001
    """A profile's chapter 2 without the corrupted RD curves and the other JPEG2000 path's
    ladder (where the chapter has them), so the hand counts below stay small."""
    params = pp.profile_parameters(profile)["02_rate_distortion"]
    params = {k: v for k, v in params.items() if not k.startswith("corrupted_rd_")}
    return {**params, "both_jpeg2000": False}


def test_projection_counts_follow_chapter_2s_loops() -> None:
    """The smoke profile's chapter 2, counted by hand from its study functions' loops."""
    pp = _projector()
    params = _chapter_2(pp, "smoke")
    units = pp.count_profile({"02_rate_distortion": params}, SIZES).units
    ch = "02_rate_distortion"
    # clean RD on 2 Kodak + 1 CLIC image: JPEG at 2 points, JPEG2000 at its 3 given ratios
    assert units[(ch, "classic-clean", False, "jpeg")] == 2 * 3
    assert units[(ch, "classic-clean", False, "jpeg2000")] == 3 * 3
    # NIC: 2 models clean on 3 images, corrupted (2 corruptions x 1 image), and the inflation
    # table's clean runs on the corrupted study's 1 image (a different entry than clean RD's)
    assert units[(ch, "nic-estimate", False, None)] == 2 * 3 + 2 * 2 + 2
    assert units[(ch, "j2k-bpp", False, None)] == 2 * 2
    # the explorer codes in the kernel: every corruption x model on one image
    assert units[(ch, "nic-estimate", True, None)] == units[(ch, "j2k-bpp", True, None)] == 4
    # inflation: each classic codec at its fixed setting, clean and under 2 corruptions
    assert units[(ch, "classic-maps", False, "jpeg")] == 3
    assert units[(ch, "classic-maps", False, "jpeg2000")] == 3


def test_projection_counts_a_shared_entry_once() -> None:
    """Chapter 3's G/R entry of a model that chapter 2's corrupted study already ran is the
    same store entry, and so is its clean D entry on Kodak, which chapter 2's inflation table
    ran, and on CLIC's one image, which its clean RD sweep ran: all counted in chapter 2 only,
    with the JPEG2000 at the G/R entry's bpp; the PSNR-matched JPEG2000 is chapter 3's alone."""
    pp = _projector()
    params = pp.profile_parameters("smoke")
    ch2 = {**_chapter_2(pp, "smoke"), "estimate": False, "corrupted_images": None,
           "corrupted_models": "sh-mse-0.0067", "corruptions": "fog", "severity": 3}  # fmt: skip
    ch3 = {**params["03_spectral_analysis"], "kodak_images": None, "gr_models": "sh-mse-0.0067",
           "corruptions": "fog", "severity": 3}  # fmt: skip
    alone = pp.count_profile({"03_spectral_analysis": ch3}, SIZES).units
    both = pp.count_profile({"02_rate_distortion": ch2, "03_spectral_analysis": ch3}, SIZES).units
    ch = "03_spectral_analysis"
    for kind, shared in (("nic-real", 24 + 24 + 1), ("j2k-bpp", 24), ("j2k-psnr", 0)):
        assert alone[ch, kind, False, None] - both[ch, kind, False, None] == shared


COSTS = ROOT / "data" / "benchmarks" / "task_costs.json"


def test_paper_profile_fits_8_hours_on_2_workers() -> None:
    """The committed per-task costs (measured by the script) put `paper` at 8 hours or less on
    2 workers; `protocol` (the whole of #19) above it. Every counted kind has a cost."""
    pp = _projector()
    costs = pp.Costs.load(COSTS)
    for path in pp.J2K_PATHS:
        assert costs.cpu[f"j2k-psnr@{path}"] > costs.cpu[f"j2k-bpp@{path}"]  # a search, measured
    paper = pp.projected_hours("paper", costs, workers=2)
    protocol = pp.projected_hours("protocol", costs, workers=2)
    assert 0 < paper <= 8.0 < protocol
    for profile in ("smoke", "quick"):
        assert pp.projected_hours(profile, costs, workers=2) < paper


def test_every_cut_of_paper_costs_hours_to_undo() -> None:
    """Setting any of `paper`'s parameters to `protocol`'s value never makes the projection
    cheaper (more work is never fewer tasks), and the heat maps' images are among the cuts."""
    pp = _projector()
    costs = pp.Costs.load(COSTS)
    rows = pp.cut_costs("paper", "protocol", costs, costs.meta["jpeg2000"], workers=2)
    assert all(extra >= -1e-9 for *_, extra in rows)
    assert ("03b_fourier_heatmaps", "kodak_images") in {(ch, key) for ch, key, *_ in rows}


def test_entries_per_chapter_and_the_logs_they_are_checked_against(tmp_path: Path) -> None:
    """Chapter 2's store entries under smoke, by hand: 5 classic points and 2 NIC models on 2
    datasets (14), 2 models x 2 corruptions x (NIC, JPEG2000 at its bpp) (8), the inflation
    table's 2 classic codecs clean and corrupted (6) and its 2 clean NIC runs on 1 image (2);
    a build's logs are read as distinct keys (a bundle's name after a tab is not a key)."""
    pp = _projector()
    params = {"02_rate_distortion": _chapter_2(pp, "smoke")}
    assert pp.entries_per_chapter(params, SIZES) == {"02_rate_distortion": 14 + 8 + 6 + 2}
    uses = tmp_path / "uses" / "smoke"
    uses.mkdir(parents=True)
    (uses / "02_rate_distortion.keys").write_text("aa\nbb\tsample\naa\n")
    (uses / "01_corruption_benchmark.keys").write_text("")
    for key in ("k1", "k2", "k3"):
        (tmp_path / key).mkdir()
        (tmp_path / key / "classify.json").write_text("{}")
    got = pp.logged_entries(uses, tmp_path)
    assert got == {"02_rate_distortion": 2, "05_classification": 3}
