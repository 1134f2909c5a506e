"""nicspec_utils.engines."""
