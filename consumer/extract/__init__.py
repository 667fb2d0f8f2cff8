"""Extractors: `claude` (the Messages API) and `local` (a zero-cost reader of text layers), and pricing."""
