"""What YAML and pydantic let through that a study must not: duplicate keys, .inf/.nan, booleans as numbers.

Each problem is one :class:`StudyError` line naming the file and the dotted key.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from orchestrator.errors import StudyError


class DuplicateKey(yaml.YAMLError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error, not "last wins"."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise DuplicateKey(f"duplicate key {key!r} (first on line {seen[key]})", line)
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def check_finite(file: str, value: Any, key: str, *, where: str) -> None:
    """No .inf or .nan anywhere in a study: every float of a trial or a study is a finite number."""
    if isinstance(value, float) and not math.isfinite(value):
        raise StudyError(file, f"{value} is not allowed: numbers must be finite", key=key, where=where)
    if isinstance(value, dict):
        for name, item in value.items():
            check_finite(file, item, f"{key}.{name}" if key else str(name), where=where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_finite(file, item, f"{key}[{index}]", where=where)


def check_no_bool_numbers(file: str, raw: Any, validated: Any, key: str, *, where: str) -> None:
    """A YAML ``true`` where a number is expected is an error, not 1 (pydantic's lax mode coerces it)."""
    if isinstance(raw, bool):
        if not isinstance(validated, bool) and isinstance(validated, int | float):
            raise StudyError(file, f"{str(raw).lower()} is not a number; write the number itself", key=key,
                             where=where)
    elif isinstance(raw, dict) and isinstance(validated, dict):
        for name, item in raw.items():
            if name in validated:
                check_no_bool_numbers(file, item, validated[name], f"{key}.{name}" if key else str(name),
                                       where=where)
    elif isinstance(raw, list | tuple) and isinstance(validated, list | tuple) and len(raw) == len(validated):
        for index, (item, checked) in enumerate(zip(raw, validated, strict=True)):
            check_no_bool_numbers(file, item, checked, f"{key}[{index}]", where=where)
