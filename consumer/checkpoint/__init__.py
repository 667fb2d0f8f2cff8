"""Committed offsets as the checkpoint: per-partition watermarks, their metadata, and the group's lag."""
