"""The sweep: which cells of a study run.

    sweep:
      grid:     {data.second_size: [20, 50, 80]}                      # the product of the axes
      zip:      {optim.lr: [0.5, 1.0, 2.0], train.batch_size: [128, 256, 512]}  # varied together
      variants: {simclr_t005: {loss.temperature: 0.05}, supervised: {method: supervised}}
      seeds:    [0, 1, 2]

The cells are variants × grid points × zip rows × seeds. A ``zip`` holds parallel lists of one
length n: its i-th row sets every zipped key to its i-th value, so the zip above adds the three
rows (0.5, 128), (1.0, 256), (2.0, 512) — a learning rate scaled with the batch size — rather
than the 9 pairs a grid would. Grid and zip keys are the cell's coordinates (its ``point``):
report tables and plots can use either as an axis. A trial's identity is its resolved config
alone, so how a cell was reached (grid, zip or variant) never changes its hash.
"""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

Point = tuple[tuple[str, Any], ...]


class SpecModel(BaseModel):
    """A section of a study file: unknown keys are errors, values never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def overlap(key: str, other: str) -> bool:
    """Whether setting ``key`` touches ``other`` (equal, or one inside the other)."""
    return key == other or key.startswith(f"{other}.") or other.startswith(f"{key}.")


def _error(path: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("config", "{message}", {"message": message, "path": path})


class Sweep(SpecModel):
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="key → values; the product is taken")
    zip: dict[str, list[Any]] = Field(
        default_factory=dict, description="key → values, parallel lists of one length varied together"
    )
    variants: dict[str, dict[str, Any] | None] = Field(default_factory=dict, description="name → overrides")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)

    @field_validator("grid")
    @classmethod
    def _axes_have_values(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid axis {key} has no values")
            if overlap(key, "seed"):
                raise ValueError("seeds are swept with sweep.seeds, not a grid axis")
        return grid

    @field_validator("zip")
    @classmethod
    def _zip_rows_line_up(cls, lists: dict[str, list[Any]]) -> dict[str, list[Any]]:
        lengths = {key: len(values) for key, values in lists.items()}
        for key, length in lengths.items():
            if length == 0:
                raise _error(f"sweep.zip.{key}", "has no values")
            if overlap(key, "seed"):
                raise _error(f"sweep.zip.{key}", "seeds are swept with sweep.seeds, not a zip axis")
        if len(set(lengths.values())) > 1:
            first = next(iter(lengths))
            odd = next(key for key, length in lengths.items() if length != lengths[first])
            message = (
                f"zipped lists must have one length: {first} has {lengths[first]} values, {odd} has {lengths[odd]}"
            )
            raise _error(f"sweep.zip.{odd}", message)
        for key, other in itertools.combinations(lists, 2):
            if overlap(key, other):
                raise _error(f"sweep.zip.{other}", f"overlaps the zipped key {key}")
        return lists

    @model_validator(mode="after")
    def _axes_are_set_once(self) -> Sweep:
        for key in self.zip:
            for axis in self.grid:
                if overlap(key, axis):
                    raise _error(f"sweep.zip.{key}", f"is also swept by sweep.grid.{axis}; sweep a key in one place")
        for name, overrides in self.variants.items():
            for key in overrides or {}:
                for axis in [*self.grid, *self.zip, "seed"]:
                    if overlap(key, axis):
                        raise ValueError(f"variant {name} sets {key}, which would override the sweep's {axis}")
        return self

    def axes(self) -> list[str]:
        """The swept keys, grid axes then zipped keys: the coordinates of every cell."""
        return [*self.grid, *self.zip]

    def points(self) -> list[Point]:
        """Every (grid point, zip row), grid axes varying slowest, as ``((key, value), ...)``."""
        rows = list(zip(*self.zip.values(), strict=True)) if self.zip else [()]
        zipped = list(self.zip)
        return [
            (*zip(self.grid, values, strict=True), *zip(zipped, row, strict=True))
            for values in itertools.product(*self.grid.values())
            for row in rows
        ]

    def variant_overrides(self) -> dict[str, dict[str, Any]]:
        """Variants in file order; a study without variants has one, ``base``."""
        if not self.variants:
            return {"base": {}}
        return {name: dict(overrides or {}) for name, overrides in self.variants.items()}
