"""How a contract violation is described to a person: where it is, and what is wrong there."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class Problem:
    """One way a value fails its model: a dotted field path ("" for the value itself) and why."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where or 'value'}: {self.message}"


def validation_problems(error: ValidationError, limit: int = 5) -> list[Problem]:
    """The first ``limit`` problems of a pydantic validation error."""
    return [
        Problem(".".join(str(part) for part in problem["loc"]), problem["msg"])
        for problem in error.errors()[:limit]
    ]
