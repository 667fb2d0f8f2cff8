"""The extraction service: intake, fetch, extract, emit, commit, metrics."""
