"""Wrong tool arguments as one line a model can act on: which argument, what was wrong, what to pass.

pydantic's own text runs to hundreds of characters over several lines, names internal classes
(`mail_inboxArguments`) and links its documentation. The reader here is a model choosing its next
call, so the message is built from the error's location and the argument's schema instead.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

_KINDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}
_PLURALS = {"string": "strings", "integer": "whole numbers", "number": "numbers", "boolean": "booleans"}
_SHOWN_CHARS = 40


def argument_error(exc: ValidationError, schema: dict[str, Any]) -> str:
    """The first wrong argument, said in one line; the others are counted."""
    problems: dict[str, tuple[dict[str, Any], list[ErrorDetails]]] = {}
    for error in exc.errors(include_url=False):
        path, node = _locate(error["loc"], schema)
        problems.setdefault(path, (node, []))[1].append(error)
    if not problems:
        return "The arguments are not valid: see the tool's input schema."
    (path, (node, errors)), *others = problems.items()
    line = _sentence(path, node, errors)
    if others:
        names = ", ".join(f"`{p}`" for p, _ in others)
        line += f" Also wrong: {names}."
    return line


def _locate(loc: tuple[int | str, ...], schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The argument's path (`tasks[0].title`) and its schema. pydantic's other steps (union tags such
    as `list[str]`) are its validator's, not the caller's data: at a union, the whole value is wrong."""
    path = ""
    node = schema
    for part in loc:
        if isinstance(part, int):
            node = _branch(node, "array")
            path += f"[{part}]"
            node = node.get("items", {})
            continue
        props = _branch(node, "object").get("properties", {})
        if part in props:
            path = f"{path}.{part}" if path else part
            node = props[part]
        elif "anyOf" in node:
            break  # the whole value fits none of the union's branches: say so once, of the whole
    return path or "arguments", node


def _branch(node: dict[str, Any], kind: str) -> dict[str, Any]:
    """The branch of a union that holds `kind` values (or the node itself)."""
    for sub in node.get("anyOf", []):
        if sub.get("type") == kind:
            return dict(sub)
    return node


def expected(node: dict[str, Any]) -> str:
    """What a value for `node` looks like, in words."""
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(v) for v in node["enum"])
    if "anyOf" in node:
        return " or ".join(expected(sub) for sub in node["anyOf"] if sub.get("type") != "null")
    kind = node.get("type")
    if kind == "array":
        items = node.get("items", {})
        item_kind = items.get("type")
        if item_kind in _PLURALS:
            return f"a list of {_PLURALS[item_kind]}"
        if item_kind == "object":
            required = items.get("required", [])
            fields = " with " + ", ".join(f"`{r}`" for r in required) if required else ""
            return f"a list of objects{fields}"
        return "a list"
    if kind == "object":
        required = node.get("required", [])
        if required:
            return "an object with " + ", ".join(f"`{r}`" for r in required)
        return "an object"
    return _KINDS.get(str(kind), "a value of the documented type")


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _sentence(path: str, node: dict[str, Any], errors: list[ErrorDetails]) -> str:
    want = expected(node)
    default = node.get("default")
    example = f" (default {_shown(default)})" if "default" in node and default not in (None, "", []) else ""
    if any(e["type"] == "missing" for e in errors):
        return f"`{path}` is required: pass {want}."
    given = errors[0].get("input")
    if all(e["type"] in _TYPE_ERRORS for e in errors):
        return f"`{path}` must be {want}{example}, not {_shown(given)}."
    # A value of the right type that a constraint refused: pydantic's own words say which, minus its prefix.
    reason = errors[0]["msg"].removeprefix("Value error, ").rstrip(".")
    return f"`{path}` is not valid ({reason}, got {_shown(given)}): pass {want}{example}."


_TYPE_ERRORS = {
    "string_type",
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "list_type",
    "dict_type",
    "model_type",
    "model_attributes_type",
    "literal_error",
    "enum",
    "none_required",
    "is_instance_of",
    "finite_number",
    "string_unicode",
    "bytes_type",
}
