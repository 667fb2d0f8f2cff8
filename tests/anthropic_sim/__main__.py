"""``python -m tests.anthropic_sim``: run the simulator as a standalone process."""

import sys

from tests.anthropic_sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
