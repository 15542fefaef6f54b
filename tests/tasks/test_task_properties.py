"""Properties of the DAG over random graphs and random histories (hypothesis).

- task_create accepts exactly the acyclic batches, and what it stores never holds a cycle;
- after any sequence of claims, completions, failures, retries and cancellations, a waiting
  task is ready exactly when all its dependencies are done (blocked when one failed or was
  cancelled, pending otherwise), and `task_ready` offers every ready task to someone.

Each example gets its own store in a fresh directory; example counts stay modest so the
suite stays fast.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maestro_mcp.errors import InvalidArgument, MaestroError
from maestro_mcp.models import Role, TaskRecord, TaskSpec, TaskStatus
from maestro_mcp.service import Services
from maestro_mcp.service.tasks import find_cycle
from maestro_mcp.store import create_store

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def on_fresh_store(body: Callable[[Services], Awaitable[None]]) -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = create_store(str(Path(tmp) / "m.db"))
            await store.open()
            try:
                with anyio.fail_after(30):
                    await body(Services.create(store))
            finally:
                await store.close()

    anyio.run(run)


def is_acyclic(n: int, edges: set[tuple[int, int]]) -> bool:
    """Kahn's algorithm: every node can be removed once what it depends on is gone."""
    deps = {i: {b for a, b in edges if a == i} for i in range(n)}
    done: set[int] = set()
    progress = True
    while progress:
        progress = False
        for node in range(n):
            if node not in done and deps[node] <= done:
                done.add(node)
                progress = True
    return len(done) == n


@st.composite
def graphs(draw: st.DrawFn, max_nodes: int = 12) -> tuple[int, set[tuple[int, int]]]:
    """(n, edges) where (a, b) means a depends on b: edges to earlier nodes (acyclic), plus maybe back-edges."""
    n = draw(st.integers(1, max_nodes))
    pairs = [(a, b) for a in range(n) for b in range(a)]
    edges = set(draw(st.lists(st.sampled_from(pairs), max_size=3 * n, unique=True))) if pairs else set()
    if n > 1 and draw(st.booleans()):
        back = [(b, a) for a in range(n) for b in range(a)]
        edges |= set(draw(st.lists(st.sampled_from(back), min_size=1, max_size=3, unique=True)))
    return n, edges


def specs_for(n: int, edges: set[tuple[int, int]]) -> list[TaskSpec]:
    return [
        TaskSpec(key=f"k{i}", title=f"Task {i}", depends_on=[f"k{b}" for a, b in sorted(edges) if a == i])
        for i in range(n)
    ]


@SETTINGS
@given(graphs())
def test_find_cycle_finds_a_real_cycle_exactly_when_there_is_one(graph: tuple[int, set[tuple[int, int]]]) -> None:
    n, edges = graph
    adjacency = {str(i): [str(b) for a, b in sorted(edges) if a == i] for i in range(n)}
    cycle = find_cycle(adjacency)
    assert (cycle is None) == is_acyclic(n, edges)
    if cycle is not None:
        assert len(cycle) >= 3 and cycle[0] == cycle[-1]
        assert len(set(cycle[:-1])) == len(cycle) - 1
        assert all(b in adjacency[a] for a, b in itertools.pairwise(cycle))


def wave_of(records: dict[str, TaskRecord], task_id: str) -> int:
    deps = records[task_id].depends_on
    return 1 + max((wave_of(records, d) for d in deps), default=-1)


@SETTINGS
@given(graphs(), st.randoms(use_true_random=False))
def test_task_create_accepts_exactly_the_acyclic_batches(graph: tuple[int, set[tuple[int, int]]], rnd: Any) -> None:
    n, edges = graph
    specs = specs_for(n, edges)
    rnd.shuffle(specs)  # the caller's order must not matter
    acyclic = is_acyclic(n, edges)

    async def body(svc: Services) -> None:
        try:
            created = await svc.tasks.create(None, specs)
        except InvalidArgument as exc:
            assert not acyclic, f"an acyclic batch was refused: {exc}"
            assert "cycle" in str(exc)
            assert await svc.store.list_tasks() == []
            return
        assert acyclic, "a cyclic batch was stored"
        assert [t.key for t in created] == [s.key for s in specs]
        stored = {t.id: t for t in await svc.store.list_tasks()}
        assert len(stored) == n
        key_of = {t.id: t.key for t in stored.values()}
        assert {(key_of[t.id], key_of[d]) for t in stored.values() for d in t.depends_on} == {
            (f"k{a}", f"k{b}") for a, b in edges
        }
        assert find_cycle({t.id: t.depends_on for t in stored.values()}) is None
        for t in stored.values():
            assert t.wave == wave_of(stored, t.id)
            assert t.status is (TaskStatus.pending if t.depends_on else TaskStatus.ready)

    on_fresh_store(body)


@st.composite
def acyclic_graphs(draw: st.DrawFn) -> tuple[int, set[tuple[int, int]], list[int | None]]:
    """An acyclic graph, and for each task the worker it is reserved for (or None: anyone)."""
    n = draw(st.integers(2, 8))
    pairs = [(a, b) for a in range(n) for b in range(a)]
    edges = set(draw(st.lists(st.sampled_from(pairs), max_size=2 * n, unique=True))) if pairs else set()
    reserved = draw(st.lists(st.sampled_from([None, None, 0, 1]), min_size=n, max_size=n))
    return n, edges, reserved


OPS = st.lists(
    st.tuples(
        # Claims and completions weigh double: most histories should get deep into the graph.
        st.sampled_from(
            ["claim", "claim", "done", "done", "fail", "block", "resume", "give_back", "retry", "cancel", "hold"]
        ),
        st.integers(0, 7),
        st.integers(0, 1),
    ),
    min_size=2,
    max_size=30,
)

WAITING = {TaskStatus.pending, TaskStatus.ready}


def check_readiness(tasks: list[TaskRecord], offered: set[str]) -> None:
    by_id = {t.id: t for t in tasks}
    for t in tasks:
        deps = [by_id[d].status for d in t.depends_on]
        all_done = all(s is TaskStatus.done for s in deps)
        any_bad = any(s in (TaskStatus.failed, TaskStatus.cancelled) for s in deps)
        if t.status is TaskStatus.ready:
            assert all_done, f"{t.key} is ready but its dependencies are {deps}"
        if t.status in WAITING or (t.status is TaskStatus.blocked and t.blocked_on_deps):
            expected = TaskStatus.blocked if any_bad else TaskStatus.ready if all_done else TaskStatus.pending
            assert t.status is expected, f"{t.key} is {t.status} with dependencies {deps}"
        if t.status is TaskStatus.blocked and t.blocked_on_deps:
            assert t.blocked_reason
        if t.status in (TaskStatus.in_progress, TaskStatus.done):
            assert all_done, f"{t.key} is {t.status} but its dependencies are {deps}"
            assert t.assignee_id is not None
    assert offered == {t.id for t in tasks if t.status is TaskStatus.ready}


@SETTINGS
@given(acyclic_graphs(), OPS)
def test_readiness_always_equals_all_dependencies_done(
    graph: tuple[int, set[tuple[int, int]], list[int | None]], ops: list[tuple[str, int, int]]
) -> None:
    n, edges, reserved = graph

    async def body(svc: Services) -> None:
        boss = (await svc.sessions.register(name="boss", role=Role.coordinator, agent="script")).session
        workers = [
            (await svc.sessions.register(name=f"w{i}", role=Role.worker, agent="script", parent="boss")).session
            for i in range(2)
        ]
        specs = specs_for(n, edges)
        for spec, worker_index in zip(specs, reserved, strict=True):
            spec.assignee = None if worker_index is None else f"w{worker_index}"
        created = await svc.tasks.create(boss, specs)
        ids = [t.id for t in created]
        for op, index, who in ops:
            worker = workers[who]
            task_id = ids[index % n]
            if op in ("done", "fail", "block", "give_back", "resume"):
                # Act on work a worker holds (this one's, else the other's), so histories go deep.
                holding = TaskStatus.blocked if op == "resume" else TaskStatus.in_progress
                for w in (worker, workers[1 - who]):
                    held = [t.id for t in await svc.store.list_tasks(assignee_id=w.id, status=holding)]
                    if held:
                        worker, task_id = w, held[index % len(held)]
                        break
            try:
                if op == "claim":
                    await svc.tasks.ready(worker, claim=True, limit=10)
                elif op == "done":
                    await svc.tasks.update(worker, task_id, status=TaskStatus.done, result="ok")
                elif op == "fail":
                    await svc.tasks.update(worker, task_id, status=TaskStatus.failed, result="broke")
                elif op == "block":
                    await svc.tasks.update(worker, task_id, status=TaskStatus.blocked, result="stuck")
                elif op == "resume":
                    await svc.tasks.update(worker, task_id, status=TaskStatus.in_progress)
                elif op == "hold":
                    # The coordinator puts any task on hold (pending/ready -> blocked, not on its dependencies).
                    await svc.tasks.update(boss, task_id, status=TaskStatus.blocked, result="on hold")
                elif op == "give_back":
                    await svc.tasks.update(worker, task_id, status=TaskStatus.ready)
                elif op == "retry":
                    await svc.tasks.update(boss, task_id, status=TaskStatus.ready)
                else:
                    await svc.tasks.update(boss, task_id, status=TaskStatus.cancelled)
            except MaestroError:
                pass  # refused (not yours, illegal transition): the invariant must hold all the same
            offered = {t.id for s in (boss, *workers) for t in await svc.store.ready_tasks(s.id, 500)}
            check_readiness(await svc.store.list_tasks(), offered)

    on_fresh_store(body)
