"""Task tools: task_create, task_ready, task_list, task_get, task_update, report_progress.

Lists show tasks lean (`TaskBrief`: what to pick from); the task you hold or ask for is whole.
"""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp.errors import InvalidArgument
from maestro_mcp.models import ReportKind, TaskSpec, TaskStatus

from .results import Created, CreatedTask, OneTask, ReadyTasks, ReportResult, TaskBrief, TaskList, Updated
from .runtime import Runtime
from .toolkit import ToolSet

StatusName = Literal["pending", "ready", "in_progress", "blocked", "done", "failed", "cancelled"]
KindName = Literal["progress", "complete", "blocked", "needs_input", "failed"]
MAX_LIST = 500


def register(tools: ToolSet, rt: Runtime) -> None:
    services = rt.services
    task_service = services.tasks

    @tools.tool()
    async def task_create(
        ctx: Context[Any, Any],
        tasks: Annotated[list[TaskSpec], Field(description="One task or a plan; name `key`s in `depends_on`.")],
    ) -> Created:
        """Create a task or a whole DAG, all or nothing; a task is ready once all it depends on is done."""
        async with rt.call(ctx) as me:
            created = await task_service.create(me, tasks)
            return Created(
                tasks=[CreatedTask(id=t.id, key=t.key, status=t.status, wave=t.wave) for t in created],
                unread=await services.mail.unread(me),
            )

    @tools.tool()
    async def task_ready(
        ctx: Context[Any, Any],
        claim: Annotated[bool, Field(description="true: take the first one (yours, in_progress).")] = False,
        limit: Annotated[int, Field(description="Most tasks to list (1-500).")] = 10,
    ) -> ReadyTasks:
        """Ready tasks (dependencies done). claim=true atomically takes the first you may; `skipped` says
        what was passed over and why."""
        async with rt.call(ctx) as me:
            ready = await task_service.ready(me, claim, limit)
            return ReadyTasks(
                tasks=[TaskBrief.of(t) for t in ready.tasks],
                claimed=ready.claimed,
                skipped=ready.skipped,
                unread=await services.mail.unread(me),
            )

    @tools.tool(read_only=True)
    async def task_list(
        ctx: Context[Any, Any],
        status: Annotated[StatusName | None, Field(description="Only this status.")] = None,
        assignee: Annotated[str | None, Field(description="Only this session's (name or id).")] = None,
        parent_id: Annotated[str | None, Field(description="Only subtasks of this task.")] = None,
        limit: Annotated[int, Field(description="Most tasks (1-500).")] = 50,
    ) -> TaskList:
        """The plan by wave (wave 0 has no dependencies), lean: task_get shows one whole."""
        async with rt.call(ctx) as me:
            if not 1 <= limit <= MAX_LIST:
                raise InvalidArgument(f"limit={limit} is out of range.", f"Use 1 to {MAX_LIST}.")
            found = await task_service.list_tasks(TaskStatus(status) if status else None, assignee, parent_id)
            shown = await task_service.views(found[:limit], me)
            return TaskList(
                tasks=[TaskBrief.of(t) for t in shown],
                more=len(found) - len(shown),
                unread=await services.mail.unread(me),
            )

    @tools.tool(read_only=True)
    async def task_get(
        ctx: Context[Any, Any],
        task_id: Annotated[str, Field(description="The task's id.")],
    ) -> OneTask:
        """One task, whole: description, acceptance, dependencies, files, result, artifacts."""
        async with rt.call(ctx) as me:
            task = await task_service.view(await task_service.get(task_id))
            return OneTask(task=task, unread=await services.mail.unread(me))

    @tools.tool()
    async def task_update(
        ctx: Context[Any, Any],
        task_id: Annotated[str, Field(description="The task's id.")],
        status: Annotated[
            StatusName | None,
            Field(description="Transitions are enforced (a refusal names the allowed ones)."),
        ] = None,
        result: Annotated[str | None, Field(description="What was done (needed for done), or why not.")] = None,
        artifacts: Annotated[list[str] | None, Field(description="Files or links produced.")] = None,
        note: Annotated[str | None, Field(description="A remark for the task's timeline.")] = None,
    ) -> Updated:
        """Change a task you hold (any, as coordinator). To finish yours, prefer
        report_progress(kind="complete")."""
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

    @tools.tool()
    async def report_progress(
        ctx: Context[Any, Any],
        kind: Annotated[KindName, Field(description="complete marks your task done.")],
        summary: Annotated[str, Field(description="What happened, in a sentence or two.")],
        task_id: Annotated[str | None, Field(description="The task it is about.")] = None,
        artifacts: Annotated[list[str] | None, Field(description="Files or links produced.")] = None,
        percent: Annotated[float | None, Field(description="How far along (0-100).")] = None,
    ) -> ReportResult:
        """Report on your work. complete/failed/blocked also move your in-progress task; all but
        progress reach your coordinator as mail."""
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
