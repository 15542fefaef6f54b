"""A test worker that does real work with its team.

It claims its tasks as they become ready, writes each declared file (content names the task and the
worker), mails `siblings` after each task (waking a team mate that waits on it), and reports `complete`
per task. Directive words:
  expect=NAME   a team mate it must hear from before it exits (bounded); repeatable
  commit        `git commit` its work in its workspace after each task (worktree isolation)
Its last report is `complete` without a task, with a JSON summary {"heard_from": [names]}.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import anyio

from maestro_mcp.client import AgentClient, ToolCallError

WAIT_S = 30


async def commit(message: str) -> None:
    git = ["git", "-c", "user.name=maestro test", "-c", "user.email=test@example.invalid"]
    await anyio.run_process([*git, "add", "-A"])
    await anyio.run_process([*git, "commit", "-q", "-m", message])


async def main() -> int:
    async with AgentClient.from_env() as agent:
        me = await agent.call("whoami")
        words = (me["directive"] or "").split()
        expect = {w.split("=", 1)[1] for w in words if w.startswith("expect=")}
        heard: set[str] = set()

        async def read_mail(timeout_s: float) -> None:
            for m in (await agent.call("mail_wait", timeout_s=timeout_s))["messages"]:
                heard.add(m["sender"])

        with anyio.fail_after(WAIT_S):
            # Team mates named in the directive must be registered before the first `siblings` mail.
            while not expect <= {s["name"] for s in (await agent.call("whoami"))["siblings"]}:
                await read_mail(0.2)
            while True:
                claimed = (await agent.call("task_ready", claim=True))["claimed"]
                if claimed is None:
                    if not (await agent.call("whoami"))["tasks"]:
                        break  # nothing of ours is left
                    await read_mail(5)  # a dependency is still running: a team mate's mail wakes us
                    continue
                for name in claimed["files"]:
                    path = Path.cwd() / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(f"# {claimed['title']} by {me['name']}\n", encoding="utf-8")
                if "commit" in words:
                    await commit(f"{claimed['id']}: {claimed['title']}")
                await agent.call(
                    "report_progress",
                    kind="complete",
                    task_id=claimed["id"],
                    summary=f"wrote {', '.join(claimed['files'])}",
                    artifacts=claimed["files"],
                )
                with contextlib.suppress(ToolCallError):  # no live team mate left to tell
                    await agent.call("mail_send", to="siblings", subject=f"done {claimed['id']}", body=claimed["title"])
            while not expect <= heard:
                await read_mail(5)
        await agent.call("report_progress", kind="complete", summary=json.dumps({"heard_from": sorted(heard)}))
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
