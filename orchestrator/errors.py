"""One clear line for bad input: the file, the dotted key, what is wrong and what is allowed."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


class StudyError(Exception):
    """Bad study input, reported before anything runs as ``file: where: key: problem``."""

    def __init__(self, file: str, message: str, *, key: str = "", where: str = "") -> None:
        self.file, self.message, self.key, self.where = file, message, key, where
        super().__init__(": ".join(part for part in (file, where, key, message) if part))


class BadOption(Exception):
    """A command-line option that cannot work, reported before anything runs as ``option: problem``."""

    def __init__(self, option: str, message: str) -> None:
        self.option, self.message = option, message
        super().__init__(f"{option}: {message}")


def study_error(
    file: str, error: ValidationError, model: type[BaseModel], *, where: str = "", prefix: str = ""
) -> StudyError:
    """The first problem of ``error`` (raised validating ``model``) as a :class:`StudyError`."""
    described = [describe(detail, model) for detail in error.errors()]
    key = described[0][0]
    # A value tried against each branch of a union fails once per branch: one line says them all.
    message = " or ".join(dict.fromkeys(m for k, m in described if k == key))
    others = sum(k != key for k, _ in described)
    if others:
        message += f" (and {others} more problem{'s' if others > 1 else ''})"
    key = ".".join(part for part in (prefix, key) if part)
    return StudyError(file, message, key=key, where=where)


def describe(detail: dict[str, Any], model: type[BaseModel]) -> tuple[str, str]:
    """(dotted key, message) for one pydantic error ``detail`` raised by ``model``."""
    kind, context = detail["type"], detail.get("ctx") or {}
    parts, parent = _walk(model, detail["loc"])
    key = ".".join(parts)
    if kind == "config":
        return context["path"], context["message"]
    if kind == "extra_forbidden":
        allowed = ", ".join(_fields(parent[-2] if len(parent) > 1 else model))
        return key, f"unknown key {parts[-1]!r}; allowed: {allowed}"
    if kind == "union_tag_invalid":
        return key, f"unknown {parts[-1] if parts else 'name'} {context['tag']!r}; allowed: {context['expected_tags']}"
    if kind == "union_tag_not_found":
        return key, "needs a 'name'"
    if kind == "literal_error":
        return key, f"{detail['input']!r} is not allowed; allowed: {context['expected']}"
    if kind == "missing":
        return key, "required key is missing"
    if kind == "value_error":
        return key, str(context.get("error", detail["msg"]))
    return key, f"{detail['msg'][0].lower()}{detail['msg'][1:]} (got {detail['input']!r})"


def _walk(model: type[BaseModel], loc: tuple) -> tuple[list[str], list[Any]]:
    """Dotted-key parts of ``loc`` without pydantic's union tags, and the type at each step."""
    parts: list[str] = []
    types: list[Any] = [model]
    current: Any = model
    for item in loc:
        models = _models(current)
        if not models and len(_branches(current)) > 1 and isinstance(item, str):
            continue  # pydantic's label of a union branch (``float``, ``literal['auto']``), not a key
        tagged = {_tag(m): m for m in models if _tag(m) is not None}
        if len(models) > 1 and item in tagged:
            current = tagged[item]  # pydantic's discriminator step, not a key of the file
            types[-1] = current
            continue
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
            current = _item_type(current)
        else:
            parts.append(str(item))
            model_here = models[0] if len(models) == 1 else None
            field = model_here.model_fields.get(item) if model_here else None
            current = field.annotation if field else _item_type(current)
        types.append(current)
    return parts, types


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation admits (through Annotated, Optional and Union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def _branches(annotation: Any) -> list[Any]:
    """The non-None members of a union annotation (through Annotated); [] for anything else."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return []
    return [arg for arg in typing.get_args(annotation) if arg is not type(None)]


def _item_type(annotation: Any) -> Any:
    """The element type of list[X] / dict[str, X] (through Annotated and Optional)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (list, tuple, dict):
        return args[-1] if args else Any
    if len(args) == 1:
        return _item_type(args[0])
    return Any


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("name")
    if field is None or typing.get_origin(field.annotation) is not typing.Literal:
        return None
    return typing.get_args(field.annotation)[0]


def _fields(annotation: Any) -> list[str]:
    models = _models(annotation)
    return list(models[0].model_fields) if len(models) == 1 else []
