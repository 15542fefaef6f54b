"""`maestro tasks`: the plan by wave, plan import, retry and cancel."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from maestro_mcp.cli.app import app
from maestro_mcp.cli.common import operator, run, services
from maestro_mcp.errors import InvalidArgument
from maestro_mcp.models import Task, TaskStatus
from maestro_mcp.plans import load_plan

tasks_app = typer.Typer(help="The task DAG: list it by wave, import a plan, retry or cancel a task.")
app.add_typer(tasks_app, name="tasks")

MARK = {
    TaskStatus.pending: "·",
    TaskStatus.ready: "○",
    TaskStatus.in_progress: "◐",
    TaskStatus.blocked: "!",
    TaskStatus.done: "●",
    TaskStatus.failed: "✗",
    TaskStatus.cancelled: "-",
}


def render_waves(tasks: Sequence[Task]) -> str:
    """The plan as waves: wave 0 needs nothing; wave n waits on earlier waves."""
    waves: dict[int, list[Task]] = defaultdict(list)
    for task in tasks:
        waves[task.wave].append(task)
    lines = []
    for wave in sorted(waves):
        lines.append(f"wave {wave}")
        for t in waves[wave]:
            who = f" @{t.assignee}" if t.assignee else ""
            deps = f" after {', '.join(t.depends_on)}" if t.depends_on else ""
            lines.append(f"  {MARK[t.status]} {t.id} [{t.status.value}]{who} {t.title}{deps}")
            if t.blocked_reason:
                lines.append(f"      blocked: {t.blocked_reason}")
    return "\n".join(lines) if lines else "no tasks"


@tasks_app.callback(invoke_without_command=True)
def tasks_list(
    ctx: typer.Context,
    status: Annotated[TaskStatus | None, typer.Option(help="Only tasks with this status.")] = None,
) -> None:
    """Show the task DAG by wave, with status and assignee."""
    if ctx.invoked_subcommand is not None:
        return

    async def body() -> str:
        async with services() as svc:
            return render_waves(await svc.tasks.views(await svc.tasks.list_tasks(status)))

    typer.echo(run(body))


@tasks_app.command("import")
def tasks_import(
    plan: Annotated[Path, typer.Argument(help="A .yaml, .json or .md plan (format: docs/plans.md).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the waves; store nothing.")] = False,
) -> None:
    """Import a plan file as tasks (one transaction), or preview its waves with --dry-run.

    A plan is a list of tasks, each with a `title` and optionally a `key`, `depends_on` (keys), `files`,
    `acceptance`, `description`, `assignee`, `priority`; or Markdown with one `## Phase N: Title` section
    per task. The whole format, with examples, is in docs/plans.md.
    """

    async def body() -> str:
        specs = load_plan(plan)
        async with services(create=not dry_run, scratch_if_missing=dry_run) as svc:
            if dry_run:
                planned = await svc.tasks.plan(None, specs)
                ids = {t.id: (t.key or t.id) for t in planned.tasks}
                views = [
                    Task(
                        id=t.key or t.id,
                        key=t.key,
                        title=t.title,
                        description=t.description,
                        acceptance=t.acceptance,
                        status=TaskStatus.pending,
                        wave=t.wave,
                        depends_on=[ids.get(d, d) for d in t.depends_on],
                        files=t.files,
                        assignee=None,
                        result=None,
                        artifacts=[],
                    )
                    for t in planned.tasks
                ]
                return f"{len(views)} tasks in {len({v.wave for v in views})} waves (dry run)\n" + render_waves(
                    sorted(views, key=lambda v: v.wave)
                )
            me = await operator(svc)
            created = await svc.tasks.create(me, specs)
            return f"imported {len(created)} tasks\n" + render_waves(await svc.tasks.views(created))

    typer.echo(run(body))


RETRYABLE = (TaskStatus.failed, TaskStatus.blocked)


def _set_status(task_id: str, status: TaskStatus, reason: str) -> str:
    async def body() -> str:
        async with services() as svc:
            me = await operator(svc)
            if status is TaskStatus.ready:
                current = await svc.tasks.get(task_id)
                if current.status not in RETRYABLE:
                    raise InvalidArgument(
                        f"Task {current.id} ({current.title}) is {current.status.value}, not failed or blocked:"
                        " there is nothing to retry.",
                        "`maestro tasks` shows which tasks failed or are blocked.",
                    )
            change = await svc.tasks.update(me, task_id, status=status, result=reason or None)
            task = change.task
            return f"{task.id} is now {task.status.value}"

    return run(body)


@tasks_app.command("retry")
def tasks_retry(task_id: Annotated[str, typer.Argument(help="A failed or blocked task.")]) -> None:
    """Put a failed or blocked task back to ready (its dependents unblock)."""
    typer.echo(_set_status(task_id, TaskStatus.ready, ""))


@tasks_app.command("cancel")
def tasks_cancel(
    task_id: Annotated[str, typer.Argument(help="The task to cancel.")],
    reason: Annotated[str, typer.Option(help="Why; recorded as the result.")] = "cancelled by the operator",
) -> None:
    """Cancel a task; its waiting dependents become blocked until retried, cancelled or rewired."""
    typer.echo(_set_status(task_id, TaskStatus.cancelled, reason))
