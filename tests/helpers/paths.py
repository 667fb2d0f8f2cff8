"""Where the repository's files are, for tests that check them."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
README = REPO / "README.md"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "docmill.json"
