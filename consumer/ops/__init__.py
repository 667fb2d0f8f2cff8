"""Operator tools: dead-letter inspection and replay, group status, job progress, topic creation."""
