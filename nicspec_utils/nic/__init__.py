"""nicspec_utils.nic."""
