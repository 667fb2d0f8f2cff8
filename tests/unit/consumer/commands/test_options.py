"""Unit tests of the `docmill` command line: one-line usage errors, secrets, flag-over-env settings.

No broker is needed: every command here fails (or prints help) before touching Kafka.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from consumer.commands.options import load_settings, redacted
from schemas.settings import ConsumerSettings, FetchSettings, KafkaSettings

DOCMILL = Path(sys.executable).with_name("docmill")
SECRET = "hunter2secret"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment minus any DOCMILL_* a developer may have exported, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCMILL_")}
    # Any accidental connection attempt would go nowhere fast.
    env["DOCMILL_BOOTSTRAP_SERVERS"] = "127.0.0.1:1"
    env.update(extra)
    return env


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert DOCMILL.exists() or shutil.which("docmill"), "install the project: pip install -e ."
    return subprocess.run(
        [str(DOCMILL), *args],
        capture_output=True,
        text=True,
        env=_clean_env(**env),
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _assert_one_line_usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("docmill")
    return lines[0]


def test_consume_with_non_integer_flag_is_one_line_usage_error() -> None:
    """`docmill consume --max-in-flight abc` exits 2 with one line on stderr naming the flag."""
    line = _assert_one_line_usage_error(_run("consume", "--max-in-flight", "abc"))
    assert "--max-in-flight" in line


def test_produce_with_unknown_flag_is_one_line_usage_error() -> None:
    """`docmill produce --bogus` exits 2 with one line naming the unknown option."""
    line = _assert_one_line_usage_error(_run("produce", "--bogus"))
    assert "--bogus" in line


def test_produce_without_sources_is_one_line_usage_error() -> None:
    """`docmill produce` with nothing to publish exits 2 with one line saying what to give."""
    line = _assert_one_line_usage_error(_run("produce"))
    assert "SOURCE" in line


def test_invalid_setting_from_environment_is_one_line_naming_it() -> None:
    """DOCMILL_MAX_IN_FLIGHT=0 makes `docmill consume` exit 2 with one line naming the setting."""
    line = _assert_one_line_usage_error(_run("consume", DOCMILL_MAX_IN_FLIGHT="0"))
    assert "DOCMILL_MAX_IN_FLIGHT" in line
    assert "--max-in-flight" in line


def test_unknown_subcommand_is_one_line_usage_error() -> None:
    """An unknown subcommand exits 2 with one line, no traceback."""
    _assert_one_line_usage_error(_run("frobnicate"))


def test_consume_help_does_not_show_secrets_from_environment() -> None:
    """`docmill consume --help` lists the SASL password flag but never the password itself."""
    result = _run("consume", "--help", DOCMILL_SASL_PASSWORD=SECRET)
    assert result.returncode == 0, result.stderr
    assert "--sasl-password" in result.stdout
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr


# --- load_settings -----------------------------------------------------------------


def test_flag_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag's value overrides the same setting from DOCMILL_* in the environment."""
    monkeypatch.setenv("DOCMILL_MAX_IN_FLIGHT", "10")
    monkeypatch.setenv("DOCMILL_GROUP_ID", "from-env")
    settings = load_settings(ConsumerSettings, {"max_in_flight": 64, "group_id": None})
    assert settings.max_in_flight == 64
    assert settings.group_id == "from-env"  # an absent flag (None) leaves the environment in charge


def test_environment_wins_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a flag, the environment's value is used instead of the field default."""
    monkeypatch.setenv("DOCMILL_MAX_IN_FLIGHT", "10")
    assert load_settings(ConsumerSettings, {}).max_in_flight == 10
    monkeypatch.delenv("DOCMILL_MAX_IN_FLIGHT")
    assert load_settings(ConsumerSettings, {}).max_in_flight == 32


def test_flags_of_other_settings_classes_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags that belong to another settings class do not leak into this one."""
    monkeypatch.delenv("DOCMILL_MAX_IN_FLIGHT", raising=False)
    settings = load_settings(ConsumerSettings, {"bootstrap_servers": "elsewhere:9092", "drain": True})
    assert settings.max_in_flight == 32


def test_false_boolean_flag_overrides_true_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-allow-http (False) is a real value and beats DOCMILL_ALLOW_HTTP=true."""
    monkeypatch.setenv("DOCMILL_ALLOW_HTTP", "true")
    assert load_settings(FetchSettings, {}).allow_http is True
    assert load_settings(FetchSettings, {"allow_http": False}).allow_http is False


def test_allowed_roots_split_on_colons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """DOCMILL_ALLOWED_ROOTS and --allowed-roots are colon-separated lists; the flag wins."""
    monkeypatch.setenv("DOCMILL_ALLOWED_ROOTS", f"{tmp_path}/a:{tmp_path}/b")
    assert load_settings(FetchSettings, {}).allowed_roots == [tmp_path / "a", tmp_path / "b"]
    flagged = load_settings(FetchSettings, {"allowed_roots": f"{tmp_path}/c"})
    assert flagged.allowed_roots == [tmp_path / "c"]


def test_invalid_flag_is_a_usage_error_naming_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag value the settings refuse becomes click.UsageError naming the flag and variable."""
    monkeypatch.delenv("DOCMILL_MAX_IN_FLIGHT", raising=False)
    with pytest.raises(click.UsageError, match=r"--max-in-flight / DOCMILL_MAX_IN_FLIGHT"):
        load_settings(ConsumerSettings, {"max_in_flight": 0})


def test_secret_settings_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SASL password from the environment is usable but masked in repr and redacted()."""
    monkeypatch.setenv("DOCMILL_SASL_PASSWORD", SECRET)
    settings = load_settings(KafkaSettings, {})
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    assert SECRET not in str(redacted(settings))
