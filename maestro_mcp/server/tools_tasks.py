"""Task tools: task_create, task_ready, task_list, task_get, task_update, report_progress."""

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp.models import ReportKind, TaskSpec, TaskStatus

from .results import Created, CreatedTask, OneTask, ReadyTasks, ReportResult, TaskList, Updated
from .runtime import Runtime

StatusName = Literal["pending", "ready", "in_progress", "blocked", "done", "failed", "cancelled"]
KindName = Literal["progress", "complete", "blocked", "needs_input", "failed"]


def register(mcp: MCPServer[Any], rt: Runtime) -> None:
    services = rt.services
    task_service = services.tasks

    @mcp.tool()
    async def task_create(
        ctx: Context[Any, Any],
        tasks: Annotated[
            list[TaskSpec],
            Field(
                description="One task or a whole plan. Give tasks a `key` and name keys in `depends_on`.",
            ),
        ],
    ) -> Created:
        """Create one task or a whole DAG in one call (all or nothing). A task becomes ready when every task
        it depends on is done. Cycles and unknown dependencies are refused with the offending keys named."""
        async with rt.call(ctx) as me:
            created = await task_service.create(me, tasks)
            return Created(
                tasks=[CreatedTask(id=t.id, key=t.key, status=t.status, wave=t.wave) for t in created],
                unread=await services.mail.unread(me),
            )

    @mcp.tool()
    async def task_ready(
        ctx: Context[Any, Any],
        claim: Annotated[bool, Field(description="Take the first ready task: it becomes yours, in_progress.")] = False,
        limit: Annotated[int, Field(description="Most ready tasks to list (1-500).")] = 10,
    ) -> ReadyTasks:
        """Tasks whose dependencies are all done (priority, then age). With claim=true the first one you may
        take is assigned to you atomically: no other agent can get it. Tasks whose declared files overlap work
        in progress by someone else are skipped, and `skipped` says why."""
        async with rt.call(ctx) as me:
            ready = await task_service.ready(me, claim, limit)
            return ReadyTasks(
                tasks=ready.tasks, claimed=ready.claimed, skipped=ready.skipped, unread=await services.mail.unread(me)
            )

    @mcp.tool()
    async def task_list(
        ctx: Context[Any, Any],
        status: Annotated[StatusName | None, Field(description="Only tasks with this status.")] = None,
        assignee: Annotated[str | None, Field(description="Only tasks of this session (name or id).")] = None,
        parent_id: Annotated[str | None, Field(description="Only subtasks of this task.")] = None,
    ) -> TaskList:
        """The plan: tasks by wave (wave 0 has no dependencies; wave n waits on wave n-1), with status and
        assignee."""
        async with rt.call(ctx) as me:
            found = await task_service.list_tasks(TaskStatus(status) if status else None, assignee, parent_id)
            return TaskList(tasks=await task_service.views(found), unread=await services.mail.unread(me))

    @mcp.tool()
    async def task_get(
        ctx: Context[Any, Any],
        task_id: Annotated[str, Field(description="The task's id.")],
    ) -> OneTask:
        """One task with its description, acceptance criteria, dependencies, files, result and artifacts."""
        async with rt.call(ctx) as me:
            task = await task_service.view(await task_service.get(task_id))
            return OneTask(task=task, unread=await services.mail.unread(me))

    @mcp.tool()
    async def task_update(
        ctx: Context[Any, Any],
        task_id: Annotated[str, Field(description="The task's id.")],
        status: Annotated[
            StatusName | None,
            Field(
                description="New status: in_progress -> done|failed|blocked|ready; blocked -> in_progress (its"
                " assignee resumes) or ready; failed -> ready (retry); cancelled is for coordinators."
            ),
        ] = None,
        result: Annotated[str | None, Field(description="What was done (required for done), or why not.")] = None,
        artifacts: Annotated[list[str] | None, Field(description="Files or links produced.")] = None,
        note: Annotated[str | None, Field(description="A remark for the task's timeline.")] = None,
    ) -> Updated:
        """Change a task you are assigned (or any task, as a coordinator). Transitions are enforced; a task
        reaching done makes its dependents ready. Prefer report_progress(kind="complete") to finish your task."""
        async with rt.call(ctx) as me:
            change = await task_service.update(
                me, task_id, status=TaskStatus(status) if status else None, result=result, artifacts=artifacts
            )
            if note:
                await services.reports.note(me, change.task.id, note)
            return Updated(
                task=await task_service.view(change.task),
                now_ready=[t.id for t in change.now_ready],
                now_blocked=[t.id for t in change.now_blocked],
                unread=await services.mail.unread(me),
            )

    @mcp.tool()
    async def report_progress(
        ctx: Context[Any, Any],
        kind: Annotated[KindName, Field(description="progress | complete | blocked | needs_input | failed")],
        summary: Annotated[str, Field(description="What happened, in a sentence or two.")],
        task_id: Annotated[str | None, Field(description="The task this is about.")] = None,
        artifacts: Annotated[list[str] | None, Field(description="Files or links produced.")] = None,
        percent: Annotated[float | None, Field(description="How far along (0-100).")] = None,
    ) -> ReportResult:
        """Report on your work. complete/failed/blocked of your in-progress task also finish/fail/block that
        task; complete, blocked, needs_input and failed reach your coordinator as an event mail."""
        async with rt.call(ctx) as me:
            reported = await services.reports.report(
                me, ReportKind(kind), summary, task_id=task_id, artifacts=artifacts, percent=percent
            )
            return ReportResult(
                report_id=reported.report.id,
                task=await task_service.view(reported.task) if reported.task else None,
                notified=reported.notified,
                unread=await services.mail.unread(me),
            )
