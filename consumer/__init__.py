"""The extraction service and the tools that need it, by stage: commands/, replica/, records/,
extract/, fetch/, throttle/, checkpoint/, fate/, ops/ (see each package's docstring)."""
