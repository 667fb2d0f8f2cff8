"""One consumer replica: its parts (poll loop, partitions, in-flight records, commits, drain,
quota share, readiness), wired together in one place (``wiring``) and run by ``service``."""
