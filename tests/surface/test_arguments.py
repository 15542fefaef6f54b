"""Wrong arguments, generated for every tool from its own schema: each gets one line that names the
argument, says what was wrong and what to pass, with no validator internals; and nothing is stored."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from surfacekit import COORDINATOR_TOOLS, REPO

from maestro_mcp.models import Role

if TYPE_CHECKING:
    from harness import Agent, Team

pytestmark = pytest.mark.anyio

_fresh = itertools.count()
# JSON numbers beyond 64 bits do not survive every MCP transport: keep wrong numbers ordinary.
INTS = st.integers(-(10**6), 10**6)
# Letters no lax parser reads as a number, a boolean (t, f, y, n, on, off, ...) or inf/nan.
WORDS = st.text(alphabet="bcdghjklmpqrsvwxz", min_size=2, max_size=8)
NOT_A_STRING = st.one_of(
    INTS, st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.lists(INTS, max_size=2)
)
INTERNALS = ("pydantic", "http", "validation error", "Arguments", "Input should", "type=", "further information")


def wrong_values(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that do not fit `spec`, whatever a lax validator would coerce."""
    if "enum" in spec:
        return st.one_of(WORDS.filter(lambda w: w not in spec["enum"]), INTS)
    if "anyOf" in spec:  # a string or a list of strings
        return st.one_of(INTS, st.booleans(), st.dictionaries(WORDS, INTS, min_size=1), st.just([5]))
    kind = spec.get("type")
    if kind == "string":
        return NOT_A_STRING
    if kind == "integer":
        return st.one_of(WORDS, st.integers(-1000, 1000).map(lambda i: i + 0.5), st.lists(INTS, min_size=1))
    if kind == "number":
        return st.one_of(WORDS, st.lists(INTS, min_size=1), st.dictionaries(WORDS, INTS, min_size=1))
    if kind == "boolean":
        return st.one_of(WORDS, st.integers(2, 10**6), st.lists(st.booleans(), min_size=1))
    if kind == "array" and spec.get("items", {}).get("type") == "object":
        return st.one_of(WORDS, INTS, st.just([5]), st.just([{}]), st.just([{"title": 5}]))
    if kind == "array":
        return st.one_of(INTS, st.booleans(), st.just([5]), st.just([["x"]]))
    raise AssertionError(f"no wrong values for {spec}")


WRONG_EXAMPLES: dict[str, list[Any]] = {
    "string": [5, True, ["x"]],
    "integer": ["many", 2.5, [1]],
    "number": ["soon", [1], {"s": 1}],
    "boolean": ["maybe", 7, [True]],
    "array": [5, "x y", [5]],
    "anyOf": [5, {"to": 1}, [5]],
}
"""Per JSON type, values no lax validator accepts; a string for an array stays a string (it is no JSON)."""


def valid(spec: dict[str, Any]) -> Any:
    """A value that fits `spec`, for the arguments a call must have besides the wrong one."""
    if "enum" in spec:
        return spec["enum"][0]
    kind = spec.get("type") or spec["anyOf"][0]["type"]
    items = spec.get("items", {})
    return {"string": "x", "integer": 1, "number": 1, "boolean": True}.get(kind) or [
        {"title": "x"} if items.get("type") == "object" else "x"
    ]


@pytest.fixture
async def lead(team: Team) -> Agent:
    # A coordinator: every tool's role gate lets it through, so its arguments are what is judged.
    lead = await team.agent("lead", Role.coordinator)
    await team.agent("w1", Role.worker, parent="lead")
    return lead


async def schemas_of(agent: Agent) -> dict[str, dict[str, Any]]:
    listed = await agent.client._client.list_tools()
    return {t.name: t.input_schema for t in listed.tools}


async def refused_one_line(
    team: Team, lead: Agent, tool: str, arguments: dict[str, Any], arg: str, missing: bool
) -> None:
    before = team.view.snapshot()

    text = await lead.error(tool, **arguments)

    assert "\n" not in text, text
    assert text.startswith(f"`{arg}"), text
    assert ("is required" in text) if missing else ("must be" in text or "pass" in text), text
    assert not any(word in text for word in INTERNALS), text
    assert team.view.snapshot() == before, f"{tool}({arguments}) changed the store"


async def test_every_argument_of_every_tool_refused_when_wrong_or_missing(team: Team, lead: Agent) -> None:
    schemas = await schemas_of(lead)
    assert set(schemas) == COORDINATOR_TOOLS
    for tool, schema in sorted(schemas.items()):
        required = schema.get("required", [])
        for arg, spec in schema.get("properties", {}).items():
            arguments = {name: valid(schema["properties"][name]) for name in required}
            wrongs = WRONG_EXAMPLES[spec.get("type", "anyOf")] + (["bogus"] if "enum" in spec else [])
            for wrong in wrongs:
                await refused_one_line(team, lead, tool, {**arguments, arg: wrong}, arg, missing=False)
            if arg in required:
                rest = {k: v for k, v in arguments.items() if k != arg}
                await refused_one_line(team, lead, tool, rest, arg, missing=True)


SCHEMAS = {
    path.stem: json.loads(path.read_text(encoding="utf-8"))["inputSchema"]
    for path in sorted((REPO / "tool_schemas").glob("*.json"))
}
"""What the server lists (test_schemas.py keeps these files current): examples are drawn up front, since
a draw inside an async test body can stop it in a way that takes the event loop's test runner down."""


@st.composite
def wrong_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any], str, bool]:
    """(tool, arguments, the wrong argument, whether it is left out instead of wrong)."""
    tool = draw(st.sampled_from(sorted(t for t, s in SCHEMAS.items() if s.get("properties"))))
    schema = SCHEMAS[tool]
    props: dict[str, dict[str, Any]] = schema["properties"]
    required = schema.get("required", [])
    arg = draw(st.sampled_from(sorted(props)))
    arguments = {name: valid(props[name]) for name in required}
    missing = arg in required and draw(st.booleans())
    if missing:
        del arguments[arg]
    else:
        arguments[arg] = draw(wrong_values(props[arg]))
    return tool, arguments, arg, missing


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=wrong_calls())
async def test_generated_wrong_arguments_get_one_line_naming_them_and_change_nothing(
    team: Team, call: tuple[str, dict[str, Any], str, bool]
) -> None:
    tool, arguments, arg, missing = call
    # Each example its own coordinator: fixtures are shared by all examples of a test.
    n = next(_fresh)
    lead = await team.agent(f"lead{n}", Role.coordinator)
    await team.agent(f"w{n}", Role.worker, parent=f"lead{n}")

    await refused_one_line(team, lead, tool, arguments, arg, missing)


async def test_range_errors_name_the_argument_and_the_range(lead: Agent) -> None:
    for tool, arg, value in (
        ("mail_inbox", "limit", 0),
        ("mail_wait", "max_messages", 501),
        ("mail_wait", "timeout_s", -1),
        ("task_list", "limit", 0),
        ("task_ready", "limit", 9999),
        ("report_progress", "percent", 101),
    ):
        extra = {"kind": "progress", "summary": "s"} if tool == "report_progress" else {}
        text = await lead.error(tool, **{arg: value}, **extra)
        assert f"{arg}=" in text and "out of range" in text and "Use " in text and "\n" not in text, text


async def test_a_coordinators_tool_called_by_a_worker_says_whose_it_is_and_what_to_do(team: Team, lead: Agent) -> None:
    worker = await team.agent("w2", Role.worker, parent="lead")
    before = team.view.snapshot()

    for tool in ("spawn_worker", "stop_worker", "approval_list", "approval_decide"):
        text = await worker.error(tool, session_id="w1", request_id="a-x", allow=True, agent="script", directive="d")
        assert text.startswith(f"{tool} is for coordinators and operators; you (w2) are a worker."), text
        assert "mail_send(to='coordinator'" in text
    assert team.view.snapshot() == before


async def test_an_error_about_another_session_names_it(team: Team, lead: Agent) -> None:
    worker = await team.agent("w2", Role.worker, parent="lead")
    created = await lead.call("task_create", tasks=[{"title": "Held", "assignee": "w1"}])
    task_id = created["tasks"][0]["id"]

    text = await worker.error("task_update", task_id=task_id, status="cancelled")

    assert f"Task {task_id} is not yours (assignee: w1)." in text
