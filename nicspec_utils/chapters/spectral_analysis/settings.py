"""Chapter 3's settings: the sides and matchings, the keys of a row, the artefact threshold of
claim 5, the bootstrap's size, and how NIC variants are named."""

from __future__ import annotations

from ... import findings
from ...errors import UsageError

J2K = "jpeg2000"
NIC = "NIC"
JPEG2000 = "JPEG2000"
VTM = "VTM"  # VVC intra, where NICSPEC_VTM_DIR names a build (the VTM study)
# band shares of two D spectra that differ by more than this (total variation) count as different
ARTEFACT_TV = 0.05
ROW_KEYS = (
    "dataset", "model", "codec", "corruption", "group", "severity", "bpp", "psnr", "psnr_wrt_clean",
)  # fmt: skip
# a NIC row's JPEG2000 matched in PSNR image by image (a Point; not a table column)
PSNR_KEY = "psnr_matched"
MATCHINGS = ("bpp", "psnr")
UNMATCHED_PSNR = 99.0  # the target of a lossless NIC image: out of JPEG2000's reach, unmatched


# --- studies --------------------------------------------------------------------------------------


def parse_variant(spec: str, default_lmbda: float | None = None) -> tuple[str, float | None]:
    """``"sh-vr-mse@0.0067"`` -> ``("sh-vr-mse", 0.0067)``; a variable-rate model named without
    ``@`` takes ``default_lmbda``; a fixed-rate model takes none."""
    from ...labels import CURVE_VR, nic_kind

    name, sep, lam = spec.strip().partition("@")
    name = name.strip().removeprefix("nic:")
    variable = nic_kind(name) == CURVE_VR
    if sep:
        if not variable:
            raise UsageError(f"{name} is a fixed-rate model; it takes no @lambda")
        try:
            return name, float(lam)
        except ValueError:
            raise UsageError(f"lambda of {name} must be a number, got {lam!r}") from None
    if variable and default_lmbda is None:
        raise UsageError(f"{name} is variable-rate: write {name}@LAMBDA")
    return name, (float(default_lmbda) if variable and default_lmbda is not None else None)


def model_label(model: str, lmbda: float | None = None) -> str:
    """A model's name in tables (a variable-rate model with its lambda)."""
    return model if lmbda is None else f"{model} λ={lmbda:g}"


def model_lmbda(model: str) -> float | None:
    """The training lambda of a shipped fixed-rate model (manifest), None if unknown."""
    from ...nic.models import shipped_models

    value = shipped_models().get(model, {}).get("lmbda")
    return None if value is None else float(value)


# --- verdicts with weight (issue #16): per-image paired effects -----------------------------------

SIDES = (NIC, "bpp", "psnr")  # the NIC, JPEG2000 at its bpp, JPEG2000 at its PSNR (per image)
UNIT_KEYS = findings.UNIT_KEYS
ROUNDINGS = findings.ROUNDINGS
N_BOOT = 2000
