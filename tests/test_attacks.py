"""What a hostile agent tries, against real `maestro serve` processes: each hole below was open once.

- An agent registering as `operator` would read the operator's mail, and the human CLI would act as it.
- Any session could read (or reply in) a thread between two others.
- `profile="../../…"` read a file outside the profiles folder into the manifest.
- A symbolic link planted under `.maestro/` made maestro write a launch file outside the project.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from projectkit import db_of, maestro, new_project

from maestro_mcp.client import AgentClient, ToolCallError, serve_params

pytestmark = pytest.mark.anyio

START_S = 20
CALL_S = 15


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return new_project(tmp_path)


@contextlib.asynccontextmanager
async def agent(project: Path, **params: Any) -> AsyncIterator[AgentClient]:
    server = serve_params(db=db_of(project), cwd=str(project), **params)
    async with AgentClient(server, read_timeout_s=START_S) as client:
        with anyio.fail_after(CALL_S):
            await client.call("whoami")  # registers it
        yield client


async def error(client: AgentClient, tool: str, **arguments: Any) -> str:
    with pytest.raises(ToolCallError) as info, anyio.fail_after(CALL_S):
        await client.call(tool, **arguments)
    return info.value.text


async def test_no_agent_can_take_the_operators_name(project: Path) -> None:
    for name in ("operator", "Operator"):
        done = maestro(project, "serve", "--name", name)
        assert done.returncode == 2 and "reserved for the human operator" in done.stderr, done.stderr
    async with agent(project, name="lead") as lead:
        text = await error(lead, "spawn_worker", agent="script", directive="x", name="operator")
        assert "reserved for the human operator" in text


async def test_a_thread_is_visible_only_to_its_participants_their_coordinators_and_the_operator(
    project: Path,
) -> None:
    async with (
        agent(project, name="lead") as lead,
        agent(project, name="w1", role="worker", parent="lead") as w1,
        agent(project, name="w2", role="worker", parent="lead") as w2,
        agent(project, name="boss2") as boss2,
    ):
        sent = await w1.call("mail_send", to="lead", body="the secret is 42")
        for outsider in (w2, boss2):
            text = await error(outsider, "mail_thread", thread_id=sent["thread_id"])
            assert "between other agents" in text and "42" not in text, text
            text = await error(outsider, "mail_send", to="lead", body="me too", reply_to=sent["message_id"])
            assert "between other agents" in text, text
            text = await error(outsider, "mail_send", to="lead", body="me too", thread_id=sent["thread_id"])
            assert "between other agents" in text, text
        for insider in (lead, w1):
            with anyio.fail_after(CALL_S):
                thread = await insider.call("mail_thread", thread_id=sent["thread_id"])
            assert [m["body"] for m in thread["messages"]] == ["the secret is 42"]
        with anyio.fail_after(CALL_S):
            await lead.call("mail_send", to="w1", body="ok", reply_to=sent["message_id"])
    # The operator sees every thread.
    shown = maestro(project, "mail", "thread", sent["thread_id"])
    assert shown.returncode == 0 and "the secret is 42" in shown.stdout, shown.stderr


@pytest.mark.parametrize("profile", ["../../../etc/hostname", "../profiles/dev", "/etc/passwd", "dev/../../x"])
async def test_a_profile_is_a_name_never_a_path(project: Path, profile: str) -> None:
    async with agent(project, name="lead") as lead:
        text = await error(lead, "spawn_worker", agent="script", directive="x", profile=profile)
        assert "is not a profile name" in text, text
    assert not (project / ".maestro" / "manifests").exists(), "nothing was written"


@pytest.mark.parametrize("planted", ["manifests", "manifests/w9.md", "logs"])
async def test_maestro_never_writes_through_a_planted_symbolic_link(
    project: Path, tmp_path: Path, planted: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "w9.md"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    link = project / ".maestro" / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(victim if planted.endswith(".md") else outside)
    if planted == "logs":
        (outside / "w9.log").symlink_to(victim)
    async with agent(project, name="lead") as lead:
        text = await error(lead, "spawn_worker", agent="script", directive="x", name="w9")
        assert "symbolic link" in text, text
        sessions = (await lead.call("list_sessions"))["sessions"]
    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644, "its mode was not changed either"
    assert [s["name"] for s in sessions if s["live"]] == ["lead"], "no worker was left behind"
