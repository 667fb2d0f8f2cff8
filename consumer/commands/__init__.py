"""The `docmill` command: a root group whose subcommands each live in a module of this package.

Subcommands are imported lazily so that ``docmill produce`` never pays for
importing the consumer's SDKs. Every error reaches the user as one line and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> "module:attribute" of a click command
SUBCOMMANDS = {
    "produce": "consumer.commands.produce:produce",
    "topics": "consumer.commands.topics:topics",
    "consume": "consumer.commands.consume:consume",
    "status": "consumer.commands.status:status",
    "dlq": "consumer.commands.dlq:dlq",
    "models": "consumer.commands.models:models",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="docmill")
def cli() -> None:
    """docmill: extract structured data from documents at scale with Claude and Kafka."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    try:
        code = cli.main(args=argv, prog_name="docmill", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("docmill: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        context = getattr(error, "ctx", None)
        click.echo(f"{_command_path(context, argv)}: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _command_path(context: click.Context | None, argv: list[str] | None) -> str:
    """'docmill <subcommand>' for an error, also when it was raised outside click's parsing."""
    if context is not None:
        return context.command_path
    args = sys.argv[1:] if argv is None else argv
    name = next((arg for arg in args if not arg.startswith("-")), None)
    return f"docmill {name}" if name in SUBCOMMANDS else "docmill"
