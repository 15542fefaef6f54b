"""An example scripted coordinator: plans, spawns two workers, and follows them through mail.

    python examples/agents/coordinator.py [PROJECT_DIR]

PROJECT_DIR (default: a new temporary directory) becomes a maestro project: its store is
PROJECT_DIR/.maestro/maestro.db and the workers write the todo app there. The coordinator is an
MCP client of its own `maestro serve`, exactly as an agent CLI would be, and uses only tools:

    task_create -> spawn_worker x2 -> loop on mail_wait until both workers have ended -> task_list

Every report and lifecycle event (a task completed, a worker exited) reaches the coordinator as
mail, so the one mail_wait loop sees everything; nothing polls.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import anyio

from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.plans import load_plan

HERE = Path(__file__).resolve().parent
PLAN = HERE.parent / "plans" / "todo-app.yaml"
# spawn_worker runs scripts that live inside the project, by a path relative to its root.
WORKER = "examples/agents/worker.py"
WORKERS = ("ada", "grace")
ENDED = ("exited", "failed", "stopped")


async def main(project: Path) -> int:
    (project / WORKER).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "worker.py", project / WORKER)
    db = str(project / ".maestro" / "maestro.db")

    async with AgentClient(serve_params(db=db, name="lead", cwd=str(project))) as maestro:
        # 1. The plan, in one call: keys and depends_on become a DAG of tasks with waves.
        specs = [spec.model_dump() for spec in load_plan(PLAN)]
        created = await maestro.call("task_create", tasks=specs)
        print(f"planned {len(created['tasks'])} tasks from {PLAN.name}")

        # 2. Two workers; they claim ready tasks themselves. spawn_worker returns at once.
        for name in WORKERS:
            spawned = await maestro.call(
                "spawn_worker",
                agent=f"script:{WORKER}",
                name=name,
                directive="Build the todo app: take ready tasks until none is left.",
            )
            print(f"spawned {spawned['name']} (pid {spawned['pid']}, log {spawned['log_path']})")

        # 3. Follow the team through mail until both workers have ended. A worker's end arrives as an
        #    event whose subject starts with its name: "ada exited with exit code 0" (or failed/stopped).
        ended: set[str] = set()
        while ended != set(WORKERS):
            waited = await maestro.call("mail_wait", timeout_s=60)
            for message in waited["messages"]:
                print(f"[{message['type']}] {message['sender']}: {message['subject']}")
                name, _, what = message["subject"].partition(" ")
                if message["type"] == "event" and name == message["sender"] and what.startswith(ENDED):
                    ended.add(name)
            if waited["messages"]:
                await maestro.call("mail_ack", message_ids=[m["message_id"] for m in waited["messages"]])

        # 4. Mail said what happened; task_list says where things stand.
        tasks = (await maestro.call("task_list"))["tasks"]

    unfinished = [f"{t['key']} ({t['status']})" for t in tasks if t["status"] != "done"]
    if unfinished:
        print(f"both workers have ended, but these tasks are not done: {', '.join(unfinished)}")
        return 1
    for task in tasks:
        print(f"{task['key']:8} {task['status']:6} by {task['assignee']}: {', '.join(task['files'])}")
    print(f"the todo app is in {project}")
    return 0


if __name__ == "__main__":
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="maestro-example-"))
    sys.exit(anyio.run(main, where.resolve()))
