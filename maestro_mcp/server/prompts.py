"""MCP prompts for the common shapes of team work; each renders instructions that use the tools."""

from typing import Annotated, Any

from mcp.server import MCPServer
from pydantic import Field


def register(mcp: MCPServer[Any]) -> None:
    @mcp.prompt()
    def fan_out(
        goal: Annotated[str, Field(description="What the team should achieve.")],
        workers: Annotated[int, Field(description="How many workers to spawn.")] = 3,
        agent: Annotated[str, Field(description="Agent CLI for the workers.")] = "claude",
    ) -> str:
        """Fan-out / fan-in: split the goal into independent tasks, run them in parallel, merge the results."""
        return (
            f"Goal: {goal}\n\n"
            "Fan out, then fan in:\n"
            "1. Split the goal into independent tasks that touch disjoint files. Create them in ONE "
            "task_create call, each with a key, the files it changes and acceptance criteria, plus one final "
            "'integrate' task whose depends_on lists all the others.\n"
            f"2. spawn_worker(agent={agent!r}, directive=...) {workers} times; workers claim ready tasks "
            "themselves with task_ready(claim=true).\n"
            "3. Loop on mail_wait(timeout_s=300). On `complete` events check the result against the acceptance "
            "criteria; on `blocked`/`needs_input` answer with mail_send; on a worker's exit event spawn a "
            "replacement if tasks remain.\n"
            "4. When the integrate task is ready, do it yourself or give it to one worker, then summarise."
        )

    @mcp.prompt()
    def pipeline(
        goal: Annotated[str, Field(description="What the pipeline should produce.")],
        stages: Annotated[str, Field(description="Comma-separated stages, in order.")] = "design,implement,test",
        agent: Annotated[str, Field(description="Agent CLI for the workers.")] = "claude",
    ) -> str:
        """A pipeline with stage gates: each stage starts only when the previous one is done and checked."""
        names = [s.strip() for s in stages.split(",") if s.strip()]
        chain = " -> ".join(names)
        return (
            f"Goal: {goal}\n\nRun it as a pipeline: {chain}.\n"
            "1. task_create one task per stage in one call, each depending on the stage before it (keys = stage "
            "names), with acceptance criteria that make the gate explicit.\n"
            f"2. spawn_worker(agent={agent!r}, profile=...) per stage (dev for building stages, test for testing "
            "stages); a stage's task becomes ready only when the previous stage is done.\n"
            "3. At each `complete` event from mail_wait, check the gate. If it fails, task_update the next "
            "stage to blocked (result = why), create a fix task for the failed stage, and retry the next stage "
            "with task_update(status='ready') once the fix is done.\n"
            "4. Finish when the last stage is done; summarise what each stage produced."
        )

    @mcp.prompt()
    def review_loop(
        goal: Annotated[str, Field(description="What to build and review.")],
        developers: Annotated[int, Field(description="How many developers.")] = 2,
        reviewers: Annotated[int, Field(description="How many reviewers.")] = 1,
        agent: Annotated[str, Field(description="Agent CLI for the workers.")] = "claude",
    ) -> str:
        """Developers build, reviewers review, and work loops until every review passes."""
        return (
            f"Goal: {goal}\n\n"
            "Run a review loop:\n"
            "1. task_create the build tasks, and for each a review task that depends on it (key 'review-<key>').\n"
            f"2. spawn_worker(agent={agent!r}, profile='dev') x{developers} and "
            f"spawn_worker(agent={agent!r}, profile='review') x{reviewers}.\n"
            "3. Loop on mail_wait. When a review reports `blocked` with findings, create a fix task (depends on "
            "nothing, same files) assigned to the original developer and a new review task after it.\n"
            "4. Done when every review task is done without findings; then stop_worker everyone and summarise."
        )
