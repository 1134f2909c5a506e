"""nicspec_utils: the engine behind the nicspec book (Lieberman et al., NeurIPS 2023)."""

__version__ = "0.1.0"
