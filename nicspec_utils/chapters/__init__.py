"""nicspec_utils.chapters."""
