"""A script worker for `maestro run` tests: does every task it is handed, except those whose key is
listed in the project's `fail-keys.txt`, which it reports failed (and so always fails, until the file
is fixed), and those in `hang-keys.txt`, on which it announces itself in shared state (`hanging.KEY`)
and then waits for mail until it is told to stop (or that its coordinator has ended). Those in
`crash-keys.txt` make it die at once, those in `crash-once-keys.txt` the first time only.
Between tasks it waits for the scheduler's mail, as a real worker's loop does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from maestro_mcp.client import AgentClient, ToolCallError


def told_to_stop(messages: list[dict[str, object]]) -> bool:
    """A stop, or the event that its coordinator has ended (killed, it stops nobody)."""
    return any(m["subject"] == "stop" or str(m["subject"]).endswith(" ended") for m in messages)


def listed(name: str) -> set[str]:
    path = Path(name)
    return set(path.read_text().split()) if path.exists() else set()


async def hang(agent: AgentClient, key: str) -> None:
    await agent.call("state_set", key=f"hanging.{key}", value="true")
    while True:
        waited = await agent.call("mail_wait", timeout_s=300)
        if told_to_stop(waited["messages"]):
            return


async def run() -> int:
    async with AgentClient.from_env() as agent:
        await agent.call("whoami")
        while True:
            task = (await agent.call("task_ready", claim=True))["claimed"]
            if task is None:
                waited = await agent.call("mail_wait", timeout_s=60)
                if waited["timed_out"] or told_to_stop(waited["messages"]):
                    return 0
                continue
            if task["key"] in listed("crash-keys.txt"):
                os._exit(3)
            if task["key"] in listed("crash-once-keys.txt"):
                try:
                    await agent.call("state_set", key=f"crashed.{task['key']}", value="true", if_version=0)
                except ToolCallError:
                    pass  # crashed on it before: this time it is done
                else:
                    os._exit(3)
            if task["key"] in listed("hang-keys.txt"):
                await hang(agent, task["key"])
                return 0
            if task["key"] in listed("fail-keys.txt"):
                await agent.call("report_progress", kind="failed", task_id=task["id"], summary="it broke: exit 2")
            else:
                await anyio.Path(f"out-{task['key']}.txt").write_text(task["description"] or task["title"])
                await agent.call("report_progress", kind="complete", task_id=task["id"], summary=f"did {task['key']}")


if __name__ == "__main__":
    sys.exit(anyio.run(run))
