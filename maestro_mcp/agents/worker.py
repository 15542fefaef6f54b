"""The built-in scripted worker: claims ready tasks, writes the files each task declares, reports.

It is an MCP client of its own `maestro serve` like any agent (spawn_worker(agent="script") runs it).
A directive containing `crash-on: KEY` makes it die abruptly after claiming task KEY: the demo uses
that to show a crashed worker's task being released and picked up again.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Any

import anyio

from maestro_mcp.client import AgentClient, ToolCallError

WAITING = ("pending", "ready", "in_progress")


def _write(task: dict[str, Any], me: str) -> list[str]:
    """Write every plain path the task declares (globs and directories are skipped), inside the workspace."""
    root = Path.cwd().resolve()
    written = []
    for declared in task["files"]:
        if any(c in declared for c in "*?[") or declared.endswith("/"):
            continue
        path = (root / declared).resolve()
        if not path.is_relative_to(root):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        comment = "#" if path.suffix in (".py", ".sh", ".toml", ".yaml", ".yml") else "<!--"
        end = "" if comment == "#" else " -->"
        path.write_text(
            f"{comment} {task['title']} — written by {me} for task {task['id']}{end}\n"
            f"{comment} Acceptance: {task['acceptance'] or 'none given'}{end}\n",
            encoding="utf-8",
        )
        written.append(declared)
    return written


async def work_remains(agent: AgentClient) -> bool:
    listed = await agent.call("task_list")
    return any(t["status"] in WAITING for t in listed["tasks"])


async def run() -> int:
    async with AgentClient.from_env() as agent:
        me = await agent.call("whoami")
        name = me["name"]
        match = re.search(r"crash-on:\s*(\S+)", me.get("directive") or "")
        crash_on = match.group(1) if match else None
        done = 0
        while True:
            ready = await agent.call("task_ready", claim=True)
            task = ready["claimed"]
            if task is None:
                if not await work_remains(agent):
                    break
                # Dependencies are still running elsewhere: mail (a sibling's note, a stop) wakes us early.
                waited = await agent.call("mail_wait", timeout_s=1)
                if any(m["subject"] == "stop" for m in waited["messages"]):
                    break
                continue
            if crash_on in (task["key"], task["id"]):
                print(f"{name}: crashing on purpose in the middle of {task['id']}", flush=True)
                os._exit(3)
            await agent.call(
                "report_progress",
                kind="progress",
                summary=f"working on {task['title']}",
                task_id=task["id"],
                percent=10,
            )
            written = _write(task, name)
            await agent.call(
                "report_progress",
                kind="complete",
                task_id=task["id"],
                artifacts=written,
                summary=f"{task['title']}: wrote {', '.join(written) or 'no files'}",
            )
            # After the task is done: a sibling woken by this mail finds its dependents ready.
            with contextlib.suppress(ToolCallError):  # no live siblings to tell
                await agent.call(
                    "mail_send",
                    to="siblings",
                    subject=f"done: {task['title']}",
                    body=f"{name} finished {task['id']} and wrote {', '.join(written) or 'nothing'}.",
                    priority="low",
                    task_id=task["id"],
                )
            done += 1
        await agent.call("report_progress", kind="complete", summary=f"{name} is finished after {done} task(s)")
    return 0


def main() -> None:
    sys.exit(anyio.run(run))


if __name__ == "__main__":
    main()
