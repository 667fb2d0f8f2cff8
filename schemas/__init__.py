"""Contracts only: messages, topics and headers, settings, error classes, the commit-metadata
format, metric definitions, size limits and extraction schemas. Imports nothing else of docmill."""
