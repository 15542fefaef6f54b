"""A running account for a terminal while a headless agent works: reports, task changes, exits.

`maestro launch --headless` and `maestro team --headless` send the agent CLI's own output to a log (for a
headless CLI that is a stream of JSON events) and print this instead, one line per thing that happened,
driven by the store's notifier, until the agent's process exits.
"""

from __future__ import annotations

import anyio
import typer

from maestro_mcp.launch.spawner import wait_pid
from maestro_mcp.models import TaskStatus
from maestro_mcp.service import Services
from maestro_mcp.store import ALL

SAFETY_S = 5.0


async def follow_until_exit(svc: Services, pid: int) -> None:
    store = svc.store
    names: dict[str, str] = {}
    seen_reports: set[str] = set()
    statuses: dict[str, str] = {}
    tasks: dict[str, TaskStatus] = {}

    async def show() -> None:
        for s in await store.list_sessions():
            names[s.id] = s.name
            if s.role.value != "operator" and statuses.get(s.id) != s.status.value:
                if s.id in statuses or s.status.value != "spawning":
                    typer.echo(f"  {s.name}: {s.status.value}" + ("" if s.live else f" (exit {s.exit_code})"))
                statuses[s.id] = s.status.value
        for r in reversed(await store.reports(limit=50)):
            if r.id not in seen_reports:
                seen_reports.add(r.id)
                typer.echo(f"  {names.get(r.session_id, r.session_id)} reports {r.kind.value}: {r.summary}")
        for t in await store.list_tasks():
            if tasks.get(t.id) is not t.status:
                if t.id in tasks:
                    typer.echo(f"  task {t.id} ({t.title}): {t.status.value}")
                tasks[t.id] = t.status
        done = sum(s is TaskStatus.done for s in tasks.values())
        if tasks:
            typer.echo(f"  [{done}/{len(tasks)} tasks done]", err=True)

    async with anyio.create_task_group() as tg:
        await store.listen(ALL, tg)

        async def watch_exit() -> None:
            await wait_pid(pid)
            tg.cancel_scope.cancel()

        tg.start_soon(watch_exit)
        async with store.subscribe(ALL) as bell:
            while True:
                await show()
                await bell.wait(SAFETY_S)
