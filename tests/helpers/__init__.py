"""What tests share, in one place: document builders, Kafka tools, the CLI runner, a manual clock, paths.

Test files import from here, never from one another.
"""
