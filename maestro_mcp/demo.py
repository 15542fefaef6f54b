"""`maestro demo`: a real team of scripted agents finishes a plan while you watch.

A scripted coordinator (this process, an MCP client of its own `maestro serve`)
imports a plan of 8 tasks in 3 waves, spawns 3 scripted workers through
`spawn_worker` (each a separate process with its own `maestro serve`), and
reacts to every report and event from its `mail_wait` loop. One worker is made
to crash in the middle of a task: its task is released and picked up again, and
the coordinator spawns a replacement. Everything runs offline on SQLite in a
scratch directory, which is kept so you can look at it afterwards.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
from rich.console import Console
from rich.live import Live

from maestro_mcp.adapters.base import serve_binary
from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.errors import MaestroError
from maestro_mcp.plans import parse_yaml
from maestro_mcp.service import Services
from maestro_mcp.store import ALL, create_store
from maestro_mcp.view import collect, follow, render

DEADLINE_S = 55.0
CRASH_TASK = "api"
WORKERS = ("worker-1", "worker-2", "worker-3")


class Demo:
    def __init__(self, project: Path, console: Console, live: Live | None) -> None:
        self.project = project
        self.db = str(project / ".maestro" / "maestro.db")
        self.console = console
        self.live = live
        self.spawned: list[str] = []
        self.crashed: list[str] = []
        self.events = 0
        self.finished = anyio.Event()

    def log(self, text: str) -> None:
        if self.live is None:
            print(text, flush=True)
        else:
            self.live.console.print(text)

    async def spawn(self, lead: AgentClient, name: str, directive: str, task_ids: list[str] | None = None) -> None:
        spawned = await lead.call("spawn_worker", agent="script", name=name, directive=directive, task_ids=task_ids)
        self.spawned.append(name)
        self.log(f"lead: spawn_worker -> {spawned['name']} (pid {spawned['pid']})")

    async def coordinate(self) -> None:
        plan = resources.files("maestro_mcp") / "data" / "demo_plan.yaml"
        specs = parse_yaml(plan.read_text(encoding="utf-8"), "demo_plan.yaml")
        params = serve_params(db=self.db, name="lead", role="coordinator", cwd=str(self.project))
        async with AgentClient(params) as lead:
            await lead.call("whoami")
            created = await lead.call("task_create", tasks=[s.model_dump(exclude_none=True) for s in specs])
            ids = {t["key"]: t["id"] for t in created["tasks"]}
            waves = 1 + max(t["wave"] for t in created["tasks"])
            self.log(f"lead: task_create -> {len(ids)} tasks in {waves} waves")
            await self.spawn(lead, WORKERS[0], "Build the kv service: claim ready tasks until none are left.")
            await self.spawn(
                lead,
                WORKERS[1],
                f"Build the kv service. For the demo, crash-on: {CRASH_TASK}",
                task_ids=[ids[CRASH_TASK]],
            )
            await self.spawn(lead, WORKERS[2], "Build the kv service: claim ready tasks until none are left.")
            replaced = False
            while True:
                waited = await lead.call("mail_wait", timeout_s=5)
                # mail_wait hands urgent mail first; the feed tells what happened in the order it happened.
                for m in sorted(waited["messages"], key=lambda m: m["created_at"]):
                    self.events += 1
                    self.log(f"lead: mail_wait <- [{m['type']}] {m['sender']}: {m['subject']}")
                    if m["type"] == "event" and m["subject"].endswith("exit code 3") and not replaced:
                        self.crashed.append(m["sender"])
                        replaced = True
                        await self.spawn(lead, "worker-4", "Replace a crashed worker: claim ready tasks.")
                if waited["messages"]:
                    await lead.call("mail_ack", message_ids=[m["message_id"] for m in waited["messages"]])
                tasks = (await lead.call("task_list"))["tasks"]
                sessions = (await lead.call("list_sessions", role="worker"))["sessions"]
                if all(t["status"] == "done" for t in tasks) and not any(s["live"] for s in sessions):
                    break
        self.finished.set()

    async def watch(self, svc: Services) -> None:
        """Re-render the live view whenever the store changes (at most ~10 times a second)."""
        live = self.live
        assert live is not None
        await follow(
            svc, lambda status: live.update(render(status, title="maestro demo")), until=self.finished, refresh_s=1.0
        )


async def run_demo(keep: bool = True) -> int:
    project = Path(tempfile.mkdtemp(prefix="maestro-demo-"))
    console = Console()
    interactive = console.is_terminal
    started = time.perf_counter()
    print(f"maestro demo: a coordinator and 3 scripted workers in {project}", flush=True)
    store = create_store(str(project / ".maestro" / "maestro.db"))
    live = Live(console=console, refresh_per_second=8, transient=False) if interactive else None
    demo = Demo(project, console, live)
    try:
        await store.open()
        svc = Services.create(store)
        failure: Exception | None = None
        with anyio.fail_after(DEADLINE_S):
            async with anyio.create_task_group() as tg:
                await store.listen(ALL, tg)
                if live is not None:
                    live.start()
                    tg.start_soon(demo.watch, svc)
                try:
                    await demo.coordinate()
                except Exception as exc:  # re-raised below, unwrapped from the task group
                    failure = exc
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        summary = await _summary(svc, demo, project, time.perf_counter() - started)
    except TimeoutError:
        print(f"maestro demo: did not finish within {DEADLINE_S:.0f} s; the project is at {project}", file=sys.stderr)
        return 1
    except MaestroError as exc:
        print(f"maestro demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if live is not None:
            live.stop()
        await store.close()
    print(summary, flush=True)
    if not keep:
        import shutil

        shutil.rmtree(project, ignore_errors=True)
    return 0


def _maestro() -> str:
    """The `maestro` command to print: plain when it is on PATH as this install, else its full path (after
    `make demo` it lives in .venv/bin, which is not on PATH until the venv is activated)."""
    own = serve_binary(sys.executable)
    found = shutil.which("maestro")
    return "maestro" if found and Path(found).resolve() == Path(own).resolve() else shlex.quote(own)


def _written_files(project: Path) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file() and ".maestro" not in p.parts)


async def _summary(svc: Services, demo: Demo, project: Path, wall: float) -> str:
    status = await collect(svc)
    done = sum(1 for t in status.tasks if t.status.value == "done")
    files = await anyio.to_thread.run_sync(_written_files, project)
    c = status.counts
    lines: list[Any] = [
        "",
        "summary",
        f"  tasks:     {done}/{len(status.tasks)} done",
        f"  messages:  {c['messages']} (receipts: {c['sent']} unread, {c['delivered']} delivered, {c['acked']} acked)",
        f"  workers:   {len(demo.spawned)} spawned, {len(demo.crashed)} crashed ({', '.join(demo.crashed) or '-'})",
        f"  events:    {demo.events} seen by the coordinator's mail_wait loop",
        f"  files:     {len(files)} written: {', '.join(files)}",
        f"  wall time: {wall:.1f} s",
        f"  workspace: {project}",
        f"  store:     {project / '.maestro' / 'maestro.db'}",
        f"  look at it: cd {project} && {_maestro()} status",
    ]
    return "\n".join(lines)
