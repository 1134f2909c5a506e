"""Chapter 4: why an MSE-trained compressor of natural images is a low-pass filter (claim 4).

The argument, piece by piece, each one measured here:

1. **Natural images have power spectra that fall as a power law**, ``S(rho) ~ rho**-alpha``
   with ``alpha`` near 2 (:func:`radial_power_spectrum`, :func:`fit_power_law`).
2. **So their principal components are low-frequency first.** Patches of a stationary process
   have (nearly) Fourier modes as principal components, ordered by the power at their frequency;
   the eigenvalues then fall as a power law of the rank, ``lambda_n ~ n**-(alpha / 2)`` (the
   ``n`` lowest frequencies fill a disc of area ``n``). :func:`patch_pca`,
   :func:`eigen_power_law`, :func:`fourier_closeness`.
3. **A linear autoencoder of rank k trained with MSE learns the projection onto the top-k
   components** (Baldi & Hornik 1989): :func:`train_linear_ae` (Adam on minibatches, torch),
   compared with PCA by :func:`subspace_overlap`.
4. **That projection is a low-pass filter** whose cut-off grows with k, the analogue of rate:
   :func:`frequency_response`, :func:`radial_gain`, :func:`cutoff` (and the isotropic guess
   :func:`predicted_cutoff` ``= sqrt(k / pi) / s``).
5. **Distribution shifts.** With ``x~ = x + delta`` and a projection ``P``: ``G = x_hat - x~ =
   -(I - P) x - (I - P) delta`` and ``R = x_hat - x = -(I - P) x + P delta``. A shift the filter
   stops (``P delta ~ 0``, high frequencies) leaves R at the clean distortion and adds its whole
   energy to G; a shift it passes (low frequencies) does the opposite. :func:`closed_form_shift`
   computes the pass fraction ``pi = |P delta|**2 / |delta|**2`` exactly; :class:`PatchCodec`
   applies a linear model patch-wise so that :func:`evaluate.evaluate_with_codec` measures G and R
   exactly as it does for NIC; :func:`shift_table` puts both kinds of codec side by side.

Units. Patches and spectra use luma (``spectral.LUMA``) of RGB in [0, 1]. Linear models are
trained on luma patches and applied to each RGB channel. MSEs of codecs are per-pixel RGB MSEs in
[0, 1] units, from the per-image PSNRs of :mod:`evaluate` (8-bit rounded, as everywhere).

Everything expensive is cached under ``<results>/lowpass/`` by a hash of its configuration.
"""

from __future__ import annotations

from .claims import claim4_checks, follow_lines, shift_checks
from .plots import (
    plot_components,
    plot_eigen_spectra,
    plot_power_spectra,
    plot_response,
    plot_shift,
    plot_training,
)
from .settings import CUTOFF_LEVEL, SCHEMA, TRAIN_DATASETS
from .study import (
    PCA,
    LinearAE,
    PatchCodec,
    PowerLaw,
    TrainingSet,
    ae_codec,
    ae_study,
    ae_table,
    apply_patchwise,
    closed_form_shift,
    closeness_summary,
    corruption_energy,
    cutoff,
    eigen_power_law,
    fit_power_law,
    fourier_closeness,
    frequency_response,
    image_power_profile,
    luma,
    mean_mse,
    patch_pca,
    pca_codec,
    pca_from_moments,
    pca_study,
    power_spectrum_table,
    powerlaw_noise,
    predicted_cutoff,
    radial_gain,
    radial_power_spectrum,
    reconstruction_mse,
    response_table,
    sample_patches,
    shift_prediction,
    shift_table,
    spearman,
    subspace_overlap,
    train_linear_ae,
)

__all__ = [
    "CUTOFF_LEVEL",
    "SCHEMA",
    "TRAIN_DATASETS",
    "LinearAE",
    "PCA",
    "PatchCodec",
    "PowerLaw",
    "TrainingSet",
    "ae_codec",
    "ae_study",
    "ae_table",
    "apply_patchwise",
    "closed_form_shift",
    "closeness_summary",
    "corruption_energy",
    "cutoff",
    "eigen_power_law",
    "fit_power_law",
    "fourier_closeness",
    "frequency_response",
    "image_power_profile",
    "luma",
    "mean_mse",
    "patch_pca",
    "pca_codec",
    "pca_from_moments",
    "pca_study",
    "power_spectrum_table",
    "powerlaw_noise",
    "predicted_cutoff",
    "radial_gain",
    "radial_power_spectrum",
    "reconstruction_mse",
    "response_table",
    "sample_patches",
    "shift_prediction",
    "shift_table",
    "spearman",
    "subspace_overlap",
    "train_linear_ae",
    "claim4_checks",
    "follow_lines",
    "shift_checks",
    "plot_components",
    "plot_eigen_spectra",
    "plot_power_spectra",
    "plot_response",
    "plot_shift",
    "plot_training",
]
