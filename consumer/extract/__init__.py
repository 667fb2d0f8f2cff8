"""Extractors: `claude` (the Messages API) and `local` (a zero-cost reader of text layers).

Also the Claude request builder, the structured-output schema subset and token estimates.
"""
