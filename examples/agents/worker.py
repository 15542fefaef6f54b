"""An example scripted worker: claims tasks, writes the files each names, tells its team mates, reports.

A coordinator starts it with spawn_worker(agent="script:examples/agents/worker.py"). The launcher
runs it with MAESTRO_DB, MAESTRO_SESSION and MAESTRO_TOKEN set, and AgentClient.from_env() starts
this worker's own `maestro serve` as that session: the script is an MCP client like any agent CLI.

The loop is the one every worker manifest describes:
    whoami -> task_ready(claim=true) -> work -> mail_send(to="siblings") -> report_progress -> again
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import anyio

from maestro_mcp.client import AgentClient, ToolCallError

UNFINISHED = ("pending", "ready", "in_progress", "blocked")


def write_module(path: Path, task: dict[str, Any], me: str) -> None:
    """The "work": a small real module (or a Markdown page) for one file the task declares."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".py":
        path.write_text(
            f'"""{task["title"]}.\n\nWritten by {me} for task {task["id"]}.\n'
            f'Acceptance: {task["acceptance"] or "none given"}\n"""\n\n'
            f"TASK_ID = {task['id']!r}\n\n\n"
            f"def describe() -> str:\n    return {task['title']!r}\n",
            encoding="utf-8",
        )
    else:
        path.write_text(f"# {task['title']}\n\nWritten by {me} for task {task['id']}.\n", encoding="utf-8")


async def main() -> int:
    async with AgentClient.from_env() as maestro:
        me = await maestro.call("whoami")
        print(f"I am {me['name']}, coordinated by {me['coordinator']}: {me['directive']}", flush=True)
        while True:
            claimed = (await maestro.call("task_ready", claim=True))["claimed"]
            if claimed is None:
                tasks = (await maestro.call("task_list"))["tasks"]
                if not any(t["status"] in UNFINISHED for t in tasks):
                    break  # everything is done (or cancelled): our work is over
                # The rest waits on tasks a team mate is doing. Their "done" mail wakes us at once;
                # the timeout only covers a team mate that exits without a word.
                await maestro.call("mail_wait", timeout_s=5)
                continue

            written = []
            for name in claimed["files"]:
                write_module(Path.cwd() / name, claimed, me["name"])
                written.append(name)

            # kind="complete" with a task_id marks the task done (its dependents may become ready)
            # and mails the coordinator an event.
            await maestro.call(
                "report_progress",
                kind="complete",
                task_id=claimed["id"],
                summary=f"wrote {', '.join(written)}",
                artifacts=written,
            )
            # Then tell the team: a team mate waiting in mail_wait for this task wakes up now.
            # to="siblings" reaches every live worker with the same coordinator; it is an error
            # when none is left (they may all have finished), which is fine here.
            with contextlib.suppress(ToolCallError):
                await maestro.call(
                    "mail_send",
                    to="siblings",
                    subject=f"done: {claimed['title']}",
                    body=f"{me['name']} finished {claimed['id']}: {', '.join(written)}",
                    task_id=claimed["id"],
                )
            print(f"{me['name']}: {claimed['id']} {claimed['title']} -> {', '.join(written)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
