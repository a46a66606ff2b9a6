"""Recipes: a set of napari-xray operations and their parameters as a small JSON file,
saved from a viewer's results and run again on other images, by ``compare --recipe``
and by ``batch --recipe``.

A recipe names its schema (:data:`RECIPE_SCHEMA`); a file of a newer schema, an
unknown operation or a parameter the operation does not accept is refused with a
message that names the file and the step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_xray.engine.operations import OPERATIONS, ComparisonPanel
from napari_xray.errors import XrayError

__all__ = [
    "RECIPE_SCHEMA",
    "RecipeError",
    "RecipeStep",
    "batch_selection",
    "comparison_panels",
    "read_recipe",
    "write_recipe",
]

#: The schema this version writes and the newest it reads.
RECIPE_SCHEMA = 1
#: The key that marks a napari-xray recipe and holds its schema number.
SCHEMA_KEY = "napari_xray_recipe"


class RecipeError(XrayError):
    """A recipe file cannot be read or run: not a recipe, too new, or a bad step."""


@dataclass(frozen=True)
class RecipeStep:
    """One operation of a recipe: its key, its parameters (all of them, resolved) and
    the colormap its result is shown with (None: the operation's own)."""

    operation: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    colormap: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The step as the recipe file holds it."""
        entry: dict[str, Any] = {"operation": self.operation, "parameters": dict(self.parameters)}
        if self.colormap is not None:
            entry["colormap"] = self.colormap
        return entry


def write_recipe(path: str | os.PathLike, steps: Sequence[RecipeStep]) -> Path:
    """Write ``steps`` as a recipe (JSON), whole or not at all; returns the path."""
    from napari_xray import __version__
    from napari_xray.io.paths import write_replacing

    if not steps:
        raise RecipeError("there is nothing to save: the viewer holds no napari-xray result")
    document = {SCHEMA_KEY: RECIPE_SCHEMA, "napari_xray_version": __version__,
                "steps": [step.as_dict() for step in steps]}  # fmt: skip
    return write_replacing(path, lambda handle: handle.write(json.dumps(document, indent=2)
                                                             + "\n"))  # fmt: skip


def read_recipe(path: str | os.PathLike) -> list[RecipeStep]:
    """The steps of the recipe file at ``path``, each checked against its operation.

    Raises
    ------
    RecipeError
        The file cannot be read or is not a recipe; its schema is newer than
        :data:`RECIPE_SCHEMA`; a step names an unknown operation, parameter or
        colormap, or a bad value.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RecipeError(f"cannot read the recipe {path}: {error.strerror or error}",
                          path) from error  # fmt: skip
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecipeError(f"{path} is not a napari-xray recipe (JSON): {error}", path) from error
    schema = document.get(SCHEMA_KEY) if isinstance(document, dict) else None
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise RecipeError(f"{path} is not a napari-xray recipe: it has no {SCHEMA_KEY!r} "
                          "schema number; save one with napari_xray.save_recipe", path)
    if schema > RECIPE_SCHEMA:
        raise RecipeError(
            f"{path} was written by a newer napari-xray (recipe schema {schema}); this "
            f"version reads schema {RECIPE_SCHEMA} and older: upgrade napari-xray "
            "(pip install -U napari-xray)", path)
    entries = document.get("steps")
    if not isinstance(entries, list) or not entries:
        raise RecipeError(f"{path} holds no steps: a recipe lists at least one operation", path)
    steps: list[RecipeStep] = []
    for number, entry in enumerate(entries, start=1):
        step = _step(entry, number, path)
        if step not in steps:  # the same step twice computes, and shows, the same result
            steps.append(step)
    return steps


def _check_json_type(parameter, value: Any) -> None:
    """A recipe's value must already be of the parameter's kind (JSON true/false for a
    switch, a finite number for a number, a string for a choice); nothing is guessed."""
    import math

    if value is None and parameter.optional:
        return
    if parameter.kind is bool:
        good = isinstance(value, bool)
    elif parameter.kind is str:
        good = isinstance(value, str)
    else:
        good = (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value))  # fmt: skip
    if not good:
        kind = {bool: "true or false", str: "a string"}.get(parameter.kind, "a finite number")
        raise ValueError(f"{parameter.name} must be {kind}, got {json.dumps(value)}")


def _step(entry: Any, number: int, path: Path) -> RecipeStep:
    where = f"step {number} of {path}"
    if not isinstance(entry, dict) or not isinstance(entry.get("operation"), str):
        raise RecipeError(f"{where} names no operation", path)
    key = entry["operation"]
    operation = OPERATIONS.get(key)
    if operation is None:
        raise RecipeError(f"{where}: unknown operation {key!r}; the operations are "
                          f"{', '.join(OPERATIONS)}", path)  # fmt: skip
    parameters = entry.get("parameters", {})
    if not isinstance(parameters, dict):
        raise RecipeError(f"{where} ({key}): parameters must be a mapping of names to values",
                          path)  # fmt: skip
    try:
        for name, value in parameters.items():
            _check_json_type(operation.parameter(name), value)
        resolved = operation.resolve(parameters)
        problem = operation.problem(resolved)
    except (KeyError, ValueError, TypeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise RecipeError(f"{where} ({key}): {message}", path) from error
    if problem:
        raise RecipeError(f"{where} ({key}): {problem}", path)
    colormap = entry.get("colormap")
    if colormap is not None and colormap not in operation.colormaps:
        raise RecipeError(f"{where} ({key}): colormap {colormap!r} is not one of "
                          f"{', '.join(operation.colormaps)}", path)  # fmt: skip
    return RecipeStep(key, resolved, colormap)


def comparison_panels(steps: Sequence[RecipeStep]) -> tuple[ComparisonPanel, ...]:
    """The panels ``compare --recipe`` shows: the original, then each step."""
    return (ComparisonPanel(None),
            *(ComparisonPanel(s.operation, dict(s.parameters), s.colormap) for s in steps))


def batch_selection(steps: Sequence[RecipeStep], path: str | os.PathLike | None = None):
    """``(filters, params)`` for :func:`napari_xray.batch.run.run_batch`: one array per
    operation, so an operation may appear twice only with the same parameters."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for step in steps:
        earlier = chosen.setdefault(step.operation, step.parameters)
        if dict(earlier) != dict(step.parameters):
            raise RecipeError(
                f"{path or 'the recipe'} runs {step.operation!r} twice with different "
                "parameters, and a batch store holds one result per operation: split the "
                "recipe in two", path)
    return list(chosen), {key: dict(values) for key, values in chosen.items()}
