"""Tool schemas every agent CLI reads the same way, derived from pydantic's: the one place they are rewritten.

pydantic's JSON schemas are correct but costly and unevenly understood. Every agent pays for the
tool list in every request, Codex renders schemas as TypeScript without resolving `$ref` (its model
saw `tasks: Array<unknown>`), and Gemini CLI has failed on `#/$defs/...`. So, for every tool:

* `$ref`/`$defs` are inlined (the shared shapes are few and small); a recursive shape is refused;
* pydantic's `title` keys go (a property *named* `title` stays);
* descriptions lose their docstring indentation;
* an optional argument is its plain type, not `anyOf [T, null]`: leaving it out means "none";
* a default that matters is also said in the description, since Codex drops `default`;
* output schemas keep each field's type, enum and nullability and name the fields of the objects
  inside; they drop the prose and defaults a client validating `structuredContent` does not need.
"""

from __future__ import annotations

import json
import re
from typing import Any

_DEFS_PREFIX = "#/$defs/"
_SPACE = re.compile(r"\s+")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "not")


def compact(text: str | None) -> str:
    """One paragraph: docstrings are indented and wrapped for the source, not for a model."""
    return _SPACE.sub(" ", text or "").strip()


def input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The arguments as agents should see them."""
    return _node(schema, schema.get("$defs", {}), (), output=False)


def output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The result's shape, for clients that validate structuredContent: its fields and their types
    (nullable ones as `anyOf [T, null]`, enums kept), and of each object inside them the names of its
    fields (`required`), not their types again. A task, a message or a session appears in several
    results; spelled out in full everywhere, the output schemas were 70% of the tool list. The top
    level lists no `required`: every field is always there, and its name and type are in `properties`."""
    top = _node(schema, schema.get("$defs", {}), (), output=True)
    top.pop("required", None)
    top["properties"] = {name: _shallow(sub) for name, sub in top.get("properties", {}).items()}
    return top


def _shallow(node: dict[str, Any]) -> dict[str, Any]:
    """An object as the names of its fields; arrays and unions of objects likewise."""
    if node.get("type") == "object" and "properties" in node:
        return {"type": "object", "required": node.get("required", list(node["properties"]))}
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        return {**node, "items": _shallow(node["items"])}
    if "anyOf" in node:
        return {**node, "anyOf": [_shallow(sub) for sub in node["anyOf"]]}
    return node


def size(value: Any) -> int:
    """Characters of `value` as compact JSON: what the budgets count."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def _resolve(
    node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node, seen
    if not ref.startswith(_DEFS_PREFIX):
        raise ValueError(f"cannot inline the non-local reference {ref!r}")
    name = ref.removeprefix(_DEFS_PREFIX)
    if name in seen:
        raise ValueError(f"{name} refers to itself: a recursive shape cannot be inlined")
    # A model's docstring is for Python readers; the field's own description, beside the reference, says
    # what the model needs.
    definition = {k: v for k, v in defs[name].items() if k != "description"}
    return {**definition, **{k: v for k, v in node.items() if k != "$ref"}}, (*seen, name)


def _nullable_branch(node: dict[str, Any]) -> dict[str, Any] | None:
    """T, when `node` is `anyOf [T, {type: null}]` (in either order)."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2:
        return None
    others = [b for b in branches if b != {"type": "null"}]
    return others[0] if len(others) == 1 else None


def _node(node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...], *, output: bool) -> dict[str, Any]:
    node, seen = _resolve(node, defs, seen)
    if not output:
        plain = _nullable_branch(node)
        if plain is not None and node.get("default", None) is None:
            rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
            node = {**_resolve(plain, defs, seen)[0], **rest}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs") or (output and key in ("description", "default")):
            continue
        if key == "properties":
            out[key] = {name: _node(sub, defs, seen, output=output) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [_node(sub, defs, seen, output=output) for sub in value]
        elif key in _SUBSCHEMAS and isinstance(value, dict):
            out[key] = _node(value, defs, seen, output=output)
        elif key == "description":
            out[key] = compact(value)
        else:
            out[key] = value
    if not output and "default" in out:
        out = _say_default(out)
    return out


def _say_default(prop: dict[str, Any]) -> dict[str, Any]:
    """State a default that changes what a call does in the description (Codex drops `default`).

    Empty defaults (None, "", [], false, 0) read as "nothing" without being told.
    """
    default = prop["default"]
    empty = default is None or default is False or default in ("", [], {})
    if empty or (type(default) in (int, float) and default == 0):
        return prop
    description = prop.get("description", "")
    if "default" in description.lower():
        return prop
    shown = json.dumps(default) if not isinstance(default, str) else default
    sentence = f"Default {shown}."
    return {**prop, "description": f"{description} {sentence}".strip()}
