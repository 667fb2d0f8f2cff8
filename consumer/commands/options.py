"""What every subcommand shares: settings as flags, and failures as one line on stderr."""

from __future__ import annotations

import contextlib
import logging
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings
from rich.console import Console

from schemas.settings import environment_variable
from schemas.validation import validation_problems

S = TypeVar("S", bound=BaseSettings)
F = TypeVar("F", bound=Callable[..., Any])


def quiet_library_logs() -> None:
    """Command-line tools report failures themselves, as one line; silence the clients' own."""
    logging.basicConfig(level=logging.CRITICAL)
    for name in ("aiokafka", "kafka", "pypdf"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


# --- settings as flags -------------------------------------------------------


def _flag_type(annotation: Any) -> tuple[click.ParamType[Any] | None, bool]:
    """The click type for a settings field, and whether it is a boolean switch."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return None, True
    if origin is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)]), False
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _flag_type(args[0])
    if annotation is int:
        return click.INT, False
    if annotation is float:
        return click.FLOAT, False
    return click.STRING, False


def settings_options(
    *classes: type[BaseSettings] | tuple[type[BaseSettings], tuple[str, ...]],
) -> Callable[[F], F]:
    """Adds a ``--flag`` for every field of the given settings classes.

    A ``(class, ("field", ...))`` pair adds only those fields. Flags default to
    None so that an absent flag leaves the environment (or the field's default)
    in charge; ``load_settings`` builds the objects.
    """

    def decorate(function: F) -> F:
        for entry in reversed(classes):
            settings_class, only = entry if isinstance(entry, tuple) else (entry, None)
            for name, field in reversed(settings_class.model_fields.items()):
                if only is not None and name not in only:
                    continue
                flag = "--" + name.replace("_", "-")
                click_type, is_switch = _flag_type(field.annotation)
                env = environment_variable(name)
                help_text = f"{field.description or ''} [env {env}]"
                if is_switch:
                    option = click.option(
                        f"{flag}/--no-{name.replace('_', '-')}", name, default=None, help=help_text
                    )
                else:
                    option = click.option(flag, name, type=click_type, default=None, help=help_text)
                function = option(function)
        return function

    return decorate


def load_settings(settings_class: type[S], flags: dict[str, Any]) -> S:
    """Builds one settings object from the environment with the given flags on top."""
    overrides = {
        name: value
        for name, value in flags.items()
        if name in settings_class.model_fields and value is not None
    }
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        first = validation_problems(error, limit=1)[0]
        field = first.where or settings_class.__name__
        raise click.UsageError(
            f"invalid setting {field} (--{field.replace('_', '-')} / {environment_variable(field)}): "
            f"{first.message}"
        ) from None


@contextlib.contextmanager
def kafka_errors(bootstrap_servers: str) -> Iterator[None]:
    """Turns Kafka client failures into one-line CLI errors naming the cause."""
    from aiokafka.errors import KafkaConnectionError, KafkaError

    try:
        yield
    except KafkaConnectionError as error:
        raise click.ClickException(f"cannot reach Kafka at {bootstrap_servers}: {error}") from None
    except KafkaError as error:
        raise click.ClickException(f"Kafka error: {type(error).__name__}: {error}") from None


def redacted(settings: BaseSettings) -> dict[str, Any]:
    """A settings object as a dict that is safe to log: secrets stay masked."""
    return {
        name: ("**********" if isinstance(value, SecretStr) else value)
        for name, value in settings.model_dump().items()
    }


def say(console: Console, line: str) -> None:
    """One line on a console, printed as is (no markup, no highlighting, no wrapping)."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)
