"""The attacks of issue 16, run against real processes: for each category, cases tried and how many held.

    python bench/attacks.py                 # every category (about three minutes)
    python bench/attacks.py --only import   # categories whose name contains the word

A case holds when the attack is refused with a clear error (never a traceback nor a bare "Error
executing tool X") and the store is as it was, or, for liveness, when the dead session is noticed
within 10 s. Each case gets a fresh project. The categories follow the issue's "Holes closed" list;
its counts of what failed then are printed beside what holds now.

The test suite holds the same cases as assertions (tests/test_attacks.py, test_limits.py,
human/test_snapshot_validation.py, test_liveness.py, test_store_failures.py, test_pipes.py,
test_http.py); this script counts them in one run, for the closing note.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "human")]

from test_http import INITIALIZE, create_token, http_server, remote_agent  # noqa: E402
from test_pipes import BAD_LINES  # noqa: E402

from maestro_mcp.client import AgentClient, ToolCallError, serve_params  # noqa: E402

CALL_S = 60.0  # generous: the machine may be busy with other work
NOTICED_S = 10.0
BIG = "x" * (1024 * 1024)

# What the issue reported for each category (the "before" column): cases that failed of those it names.
BEFORE = {
    "operator name": "an agent could register as `operator` (1 of 1 failed)",
    "size limits": "10 MB acceptance and 100,000 files accepted; task_list returned 51 MB",
    "import validation": "a hostile snapshot imported, then sessions/status/tasks crashed",
    "path escapes": "profile traversal and a planted symlink both escaped (2 of 2 failed)",
    "thread access": "a sibling and an unrelated coordinator read others' threads",
    "unspawned liveness": "50 of 50 killed sessions stayed live, 25 tasks stuck in_progress",
    "internal failures": "bare 'Error executing tool', later-key parent failed, NUL differed per backend",
    "corruption": "a 0-byte store taken for new (500 tasks vanished), DatabaseError, unlinked file written",
    "stdio hygiene": "non-JSON-RPC lines got silence (the client waited for ever)",
    "http": "300 half-open connections stayed open 30 s; limit=true taken as 1",
}


class Refused(Exception):
    """The attack was not refused as it should be: why."""


def check(condition: bool, why: str) -> None:
    if not condition:
        raise Refused(why)


# -- helpers: a project, an agent, the human CLI ------------------------------------------------------------
class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / ".maestro").mkdir(parents=True, exist_ok=True)
        self.db = str(root / ".maestro" / "maestro.db")

    def maestro(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")} | (env or {})
        return subprocess.run(
            [sys.executable, "-m", "maestro_mcp", *args],
            cwd=self.root,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    @contextlib.asynccontextmanager
    async def agent(self, name: str, **params: Any) -> AsyncIterator[AgentClient]:
        server = serve_params(db=self.db, name=name, cwd=str(self.root), **params)
        async with AgentClient(server, read_timeout_s=CALL_S) as client:
            with anyio.fail_after(CALL_S):
                await client.call("whoami")
            yield client


def clean_cli_refusal(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    text = done.stdout + done.stderr
    check(done.returncode != 0, f"exit 0: {text[:200]}")
    check("Traceback" not in text and "DatabaseError" not in text, f"traceback: {text[-300:]}")
    check(len(done.stderr.strip().splitlines()) <= 3, f"not one clear message: {done.stderr[:300]}")
    for needle in needles:
        check(needle in text, f"{needle!r} not in {text[:300]!r}")


async def refused(client: AgentClient, tool: str, *needles: str, **arguments: Any) -> str:
    try:
        with anyio.fail_after(CALL_S):
            result = await client.call(tool, **arguments)
    except ToolCallError as exc:
        text = exc.text
        check("Error executing tool" not in text and "Traceback" not in text, f"bare error: {text[:200]}")
        for needle in needles:
            check(needle in text, f"{needle!r} not in {text[:300]!r}")
        return text
    raise Refused(f"{tool} accepted it: {str(result)[:200]}")


Case = Callable[[Project], Awaitable[None]]
CASES: list[tuple[str, str, Case]] = []


def case(category: str, name: str) -> Callable[[Case], Case]:
    def add(fn: Case) -> Case:
        CASES.append((category, name, fn))
        return fn

    return add


# -- 1. the operator's name -----------------------------------------------------------------------------------
for spelling in ("operator", "Operator", "OPERATOR"):

    @case("operator name", f"serve --name {spelling}")
    async def _serve_as_operator(p: Project, spelling: str = spelling) -> None:
        clean_cli_refusal(p.maestro("serve", "--name", spelling, env={"MAESTRO_DB": p.db}), "reserved")


@case("operator name", "spawn_worker(name='operator')")
async def _spawn_operator(p: Project) -> None:
    async with p.agent("lead") as lead:
        await refused(lead, "spawn_worker", "reserved", agent="script", directive="x", name="operator")


# -- 2. size limits ---------------------------------------------------------------------------------------------
SIZES: list[tuple[str, str, dict[str, Any]]] = [
    ("description 1 MB", "task_create", {"tasks": [{"title": "t", "description": BIG}]}),
    ("acceptance 10 MB", "task_create", {"tasks": [{"title": "t", "acceptance": "y" * (10 * 1024 * 1024)}]}),
    ("files 100,000", "task_create", {"tasks": [{"title": "t", "files": [f"f{i}.py" for i in range(100_000)]}]}),
    ("title 10,000 chars", "task_create", {"tasks": [{"title": "t" * 10_000}]}),
    ("mail body 1 MB", "mail_send", {"to": "lead", "body": BIG}),
    ("report summary 1 MB", "report_progress", {"kind": "progress", "summary": BIG}),
]
for label, tool, arguments in SIZES:

    @case("size limits", label)
    async def _oversized(p: Project, tool: str = tool, arguments: dict[str, Any] = arguments) -> None:
        async with p.agent("lead") as lead:
            await refused(lead, tool, "limit", **arguments)
            check(not (await lead.call("task_list"))["tasks"], "something was stored")


for label, field, value in (("result 1 MB", "result", BIG), ("artifacts 100,000", "artifacts", ["a"] * 100_000)):

    @case("size limits", label)
    async def _oversized_update(p: Project, field: str = field, value: Any = value) -> None:
        async with p.agent("lead") as lead:
            created = await lead.call("task_create", tasks=[{"title": "t"}])
            task_id = created["tasks"][0]["id"]
            await lead.call("task_ready", claim=True)
            await refused(lead, "task_update", "limit", task_id=task_id, status="done", **{field: value})
            check((await lead.call("task_get", task_id=task_id))["task"]["status"] == "in_progress", "it moved")


# -- 3. import validation -------------------------------------------------------------------------------------
IMPORTS: list[tuple[str, str, Any]] = [
    ("sessions", "role", "god"),
    ("sessions", "status", "zombie"),
    ("sessions", "created_at", 1e300),
    ("sessions", "last_seen_at", -5),
    ("sessions", "created_at", "yesterday"),
    ("sessions", "pid", -1),
    ("sessions", "name", "../../x"),
    ("messages", "priority", 9),
    ("messages", "type", "spam"),
    ("messages", "body", "a\x00b"),
    ("receipts", "status", "read"),
    ("tasks", "status", "doing"),
    ("tasks", "priority", 10**12),
    ("tasks", "files", "not json"),
    ("tasks", "files", '["/etc/passwd"]'),
    ("tasks", "files", '["../../outside"]'),
    ("tasks", "artifacts", '{"a": 1}'),
    ("tasks", "blocked_on_deps", 7),
    ("tasks", "description", "x" * 200_000),
    ("tasks", "wave", -3),
    ("tasks", "parent_id", "<its own id>"),
    ("task_deps", "depends_on", "<a cycle>"),
]
GOOD: dict[str, Any] = {}


async def good_snapshot(p: Project) -> dict[str, Any]:
    """A real export with something in the tables the cases change (made once per run)."""
    if not GOOD:
        async with p.agent("lead") as lead, p.agent("w1", role="worker", parent="lead") as w1:
            await lead.call("task_create", tasks=[{"key": "a", "title": "A", "files": ["src/a.py"]},
                                                  {"key": "b", "title": "B", "depends_on": ["a"]}])  # fmt: skip
            await w1.call("mail_send", to="lead", body="hi")
        done = p.maestro("export")
        check(done.returncode == 0, done.stderr)
        GOOD.update(json.loads(done.stdout))
    return copy.deepcopy(GOOD)


for table, column, value in IMPORTS:

    @case("import validation", f"{table}.{column}={str(value)[:24]!r}")
    async def _hostile_import(p: Project, table: str = table, column: str = column, value: Any = value) -> None:
        doc = await good_snapshot(Project(p.root.parent / "source"))
        row = doc["tables"][table][0]
        if value == "<its own id>":
            row[column] = row["id"]
        elif value == "<a cycle>":
            doc["tables"][table].append({"task_id": row["depends_on"], "depends_on": row["task_id"]})
        else:
            row[column] = value
        (p.root / "bad.json").write_text(json.dumps(doc))
        check(p.maestro("init", "--no-configs").returncode == 0, "init failed")
        before = rows_of(p.db)
        clean_cli_refusal(p.maestro("import", "bad.json", "--force"), table)
        check(rows_of(p.db) == before, "the store changed")


def rows_of(db: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


# -- 4. path escapes ----------------------------------------------------------------------------------------
for profile in ("../../../etc/hostname", "../profiles/dev", "/etc/passwd", "dev/../../x"):

    @case("path escapes", f"profile={profile!r}")
    async def _profile_path(p: Project, profile: str = profile) -> None:
        async with p.agent("lead") as lead:
            await refused(lead, "spawn_worker", "not a profile name", agent="script", directive="x", profile=profile)
        check(not (p.root / ".maestro" / "manifests").exists(), "a manifest was written")


for planted in ("manifests", "manifests/w9.md", "logs"):

    @case("path escapes", f"symlink at .maestro/{planted}")
    async def _planted_link(p: Project, planted: str = planted) -> None:
        outside = p.root.parent / "outside"
        outside.mkdir()
        victim = outside / "w9.md"
        victim.write_text("precious\n")
        link = p.root / ".maestro" / planted
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(victim if planted.endswith(".md") else outside)
        if planted == "logs":
            (outside / "w9.log").symlink_to(victim)
        async with p.agent("lead") as lead:
            await refused(lead, "spawn_worker", "symbolic link", agent="script", directive="x", name="w9")
        check(victim.read_text() == "precious\n", "the file outside was overwritten")


# -- 5. thread access ------------------------------------------------------------------------------------------
for outsider in ("sibling w2", "unrelated coordinator"):
    for how in ("mail_thread", "reply_to", "thread_id"):

        @case("thread access", f"{outsider}: {how}")
        async def _thread(p: Project, outsider: str = outsider, how: str = how) -> None:
            async with (
                p.agent("lead") as lead,
                p.agent("w1", role="worker", parent="lead") as w1,
                p.agent("w2", role="worker", parent="lead") as w2,
                p.agent("boss2") as boss2,
            ):
                sent = await w1.call("mail_send", to="lead", body="the secret is 42")
                other = w2 if outsider.startswith("sibling") else boss2
                if how == "mail_thread":
                    text = await refused(other, "mail_thread", "between other agents", thread_id=sent["thread_id"])
                    check("42" not in text, "the secret leaked in the error")
                elif how == "reply_to":
                    await refused(other, "mail_send", "between other agents", to="lead", body="x",
                                  reply_to=sent["message_id"])  # fmt: skip
                else:
                    await refused(other, "mail_send", "between other agents", to="lead", body="x",
                                  thread_id=sent["thread_id"])  # fmt: skip
                await lead.call("whoami")


# -- 6. liveness of sessions nobody spawned -------------------------------------------------------------------
AGENT = str(TESTS / "liveness_agent.py")

for where in ("same host", "another host"):
    for n in range(3):

        @case("unspawned liveness", f"SIGKILL agent+server, {where} #{n + 1}")
        async def _killed(p: Project, where: str = where) -> None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")} | {"MAESTRO_DB": p.db}
            if where == "another host":
                env["MAESTRO_HOST"] = "elsewhere.example"
            async with p.agent("lead") as lead:
                await lead.call("task_create", tasks=[{"title": "job"}])
                process = await anyio.open_process([sys.executable, AGENT, p.db, "w1", "lead"], env=env, cwd=p.root)
                assert process.stdout is not None
                with anyio.fail_after(CALL_S):
                    await process.stdout.receive()
                sessions = (await lead.call("list_sessions"))["sessions"]
                check(any(s["name"] == "w1" and s["live"] for s in sessions), "the agent did not register")
                conn = sqlite3.connect(p.db)
                pid = conn.execute("SELECT pid FROM sessions WHERE name = 'w1'").fetchone()[0]
                conn.close()
                os.kill(process.pid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
                await process.wait()
                with anyio.move_on_after(NOTICED_S):
                    while True:
                        got = await lead.call("mail_wait", timeout_s=NOTICED_S)
                        if any("released: back to ready" in m["body"] for m in got["messages"]):
                            return
                raise Refused(f"not noticed within {NOTICED_S:g} s")


# -- 7. internal failures --------------------------------------------------------------------------------------
@case("internal failures", "parent_id names a later key of the same call")
async def _later_key(p: Project) -> None:
    async with p.agent("lead") as lead:
        made = await lead.call("task_create", tasks=[{"key": "child", "title": "c", "parent_id": "top"},
                                                     {"key": "top", "title": "t"}])  # fmt: skip
        ids = {t["key"]: t["id"] for t in made["tasks"]}
        got = (await lead.call("task_get", task_id=ids["child"]))["task"]
        check(got.get("parent_id") == ids["top"], f"parent not set: {got}")


@case("internal failures", "a task as its own parent")
async def _own_parent(p: Project) -> None:
    async with p.agent("lead") as lead:
        await refused(lead, "task_create", "own parent", tasks=[{"key": "a", "title": "a", "parent_id": "a"}])


for label, tool, arguments in (
    ("priority 10**12", "task_create", {"tasks": [{"title": "t", "priority": 10**12}]}),
    ("task_ready limit 10**9", "task_ready", {"limit": 10**9}),
    ("mail_wait timeout 10**9", "mail_wait", {"timeout_s": 10**9}),
    ("NUL in a title (SQLite)", "task_create", {"tasks": [{"title": "a\x00b"}]}),
    ("NUL in a mail body (SQLite)", "mail_send", {"to": "lead", "body": "a\x00b"}),
):

    @case("internal failures", label)
    async def _bounded(p: Project, tool: str = tool, arguments: dict[str, Any] = arguments) -> None:
        async with p.agent("lead") as lead:
            await refused(lead, tool, **arguments)


for label, text in (
    ("tasks import: a binary file", "\x00\x01\x02 binary"),
    ("tasks import: broken YAML", "tasks: [ {title: a"),
    ("tasks import: a cycle", "tasks:\n - {key: a, title: A, depends_on: [b]}\n - {key: b, title: B, depends_on: [a]}"),
    ("tasks import: a number as the title", "tasks:\n - {title: {x: 1}}\n"),
):

    @case("internal failures", label)
    async def _plan(p: Project, text: str = text) -> None:
        check(p.maestro("init", "--no-configs").returncode == 0, "init failed")
        (p.root / "plan.yaml").write_text(text)
        clean_cli_refusal(p.maestro("tasks", "import", "plan.yaml"))


@case("internal failures", "full disk (tmpfs, root only)")
async def _full_disk(p: Project) -> None:
    if os.geteuid() != 0:
        raise Refused("skipped: needs root for a tmpfs")
    disk = p.root.parent / "disk"
    disk.mkdir()
    mounted = await anyio.run_process(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], check=False)
    check(mounted.returncode == 0, "no mount")
    try:
        small = Project(disk / "p")
        async with small.agent("lead") as lead:
            await lead.call("task_create", tasks=[{"title": "kept"}])
            with (disk / "filler").open("wb") as f, contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            big = [{"title": f"b{i}", "description": "x" * 60_000} for i in range(20)]
            await refused(lead, "task_create", "is full", tasks=big)
            (disk / "filler").unlink()
            check([t["title"] for t in (await lead.call("task_list"))["tasks"]] == ["kept"], "half-written")
    finally:
        await anyio.run_process(["umount", "-l", str(disk)], check=False)


# -- 8. corruption ---------------------------------------------------------------------------------------------
for args in (("status",), ("tasks",), ("serve",)):

    @case("corruption", f"0-byte store: maestro {' '.join(args)}")
    async def _empty(p: Project, args: tuple[str, ...] = args) -> None:
        open(p.db, "wb").close()  # noqa: ASYNC230 (a case: nothing else runs meanwhile)
        clean_cli_refusal(p.maestro(*args), "0 bytes")
        check(os.stat(p.db).st_size == 0, "the empty file was made into a store")


def damaged(p: Project) -> None:
    check(p.maestro("init", "--no-configs").returncode == 0, "init failed")
    lines = "".join(f"  - {{title: task {i}, description: {'x' * 3000}}}\n" for i in range(30))
    (p.root / "plan.yaml").write_text("tasks:\n" + lines)
    check(p.maestro("tasks", "import", "plan.yaml").returncode == 0, "import failed")
    conn = sqlite3.connect(p.db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = Path(p.db).stat().st_size
    with open(p.db, "r+b") as f:
        for offset in range(max(size - 4096 * 20, 4096 * 12), size - 4096 * 2, 4096):
            f.seek(offset)
            f.write(b"\x0d\xad\xbe\xef" * 1024)


@case("corruption", "malformed store: maestro export")
async def _malformed_export(p: Project) -> None:
    damaged(p)
    clean_cli_refusal(p.maestro("export"), "maestro import")


@case("corruption", "malformed store: maestro doctor")
async def _malformed_doctor(p: Project) -> None:
    damaged(p)
    done = p.maestro("doctor")
    check(done.returncode != 0 and "Traceback" not in done.stdout + done.stderr, "doctor crashed or passed")
    check("DatabaseError" not in done.stdout and "maestro import" in done.stdout, done.stdout[-300:])


for how in ("deleted", "replaced"):

    @case("corruption", f"store file {how} under a running server")
    async def _gone(p: Project, how: str = how) -> None:
        async with p.agent("lead") as lead:
            await lead.call("task_create", tasks=[{"title": "before"}])
            if how == "deleted":
                os.unlink(p.db)
            else:
                shutil.copy(p.db, p.db + ".copy")
                os.replace(p.db + ".copy", p.db)
            await refused(lead, "task_create", how, tasks=[{"title": "after"}])
        check(how == "replaced" or not os.path.exists(p.db), "a new file was made behind the agents' backs")  # noqa: ASYNC240


# -- 9. stdio hygiene -------------------------------------------------------------------------------------------
for line, request_id, code in BAD_LINES:

    @case("stdio hygiene", f"{line[:40]!r}")
    async def _line(p: Project, line: str = line, request_id: Any = request_id, code: int = code) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")} | {"MAESTRO_DB": p.db}
        process = await anyio.open_process(
            [sys.executable, "-m", "maestro_mcp", "serve"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        async with process:
            assert process.stdin is not None and process.stdout is not None
            init = json.dumps({**INITIALIZE, "id": 1}).encode()
            ping = json.dumps({"jsonrpc": "2.0", "id": 99, "method": "ping"}).encode()
            await process.stdin.send(init + b"\n" + line.encode() + b"\n" + ping + b"\n")
            answers: list[dict[str, Any]] = []
            buffer = b""
            with anyio.move_on_after(10):
                while not any(a.get("id") == 99 for a in answers):
                    buffer += await process.stdout.receive()
                    *done, buffer = buffer.split(b"\n")
                    answers += [json.loads(d) for d in done if d.strip()]
            await process.stdin.aclose()
            await process.wait()
        errors = [a for a in answers if "error" in a]
        check(bool(errors) and errors[0]["id"] == request_id, f"no error reply: {answers}")
        check(any(a.get("id") == 99 for a in answers), "the server stopped answering")


# -- 10. HTTP -------------------------------------------------------------------------------------------------
@case("http", "100 half-open connections closed within the head timeout")
async def _half_open(p: Project) -> None:
    async with http_server(p.db, env={"MAESTRO_HTTP_HEAD_TIMEOUT_S": "2"}) as server:
        host, port = server.base.removeprefix("http://").rsplit(":", 1)
        streams = [await anyio.connect_tcp(host, int(port)) for _ in range(100)]
        for stream in streams:
            await stream.send(b"POST /mcp HTTP/1.1\r\nHost: " + host.encode() + b"\r\n")
        closed = 0

        async def closes(stream: anyio.abc.SocketStream) -> None:
            nonlocal closed
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                while await stream.receive():
                    pass
            closed += 1

        with anyio.move_on_after(10):
            async with anyio.create_task_group() as tg:
                for stream in streams:
                    tg.start_soon(closes, stream)
        check(closed == 100, f"{100 - closed} of 100 still open after 10 s")


@case("http", "limit=true is a type error")
async def _limit_true(p: Project) -> None:
    async with http_server(p.db) as server:
        token = await create_token(p.db, "remote")
        async with remote_agent(server.url, token) as remote:
            for tool in ("task_ready", "task_list", "mail_inbox"):
                try:
                    await remote.call(tool, limit=True)
                except ToolCallError as exc:
                    check("limit" in exc.text and "Error executing" not in exc.text, exc.text)
                    continue
                raise Refused(f"{tool}(limit=true) was accepted")


@case("http", "stop_worker over HTTP says what is refused and why")
async def _http_stop(p: Project) -> None:
    async with http_server(p.db) as server:
        token = await create_token(p.db, "remote-lead", "--role", "coordinator")
        async with remote_agent(server.url, token) as remote:
            try:
                await remote.call("stop_worker", session_id="anyone")
            except ToolCallError as exc:
                check("refused over `maestro serve --http`" in exc.text and "maestro stop" in exc.text, exc.text)
                return
            raise Refused("stop_worker over HTTP was accepted")


# -- running ----------------------------------------------------------------------------------------------
async def run_one(category: str, name: str, fn: Case, tmp: Path, number: int) -> tuple[bool, str]:
    root = tmp / f"case-{number}"
    root.mkdir()
    try:
        with anyio.fail_after(120):
            await fn(Project(root / "project"))
        return True, ""
    except Refused as exc:
        return False, str(exc)
    except BaseExceptionGroup as group:  # a Refused raised inside a client's task group
        found, _ = group.split(Refused)
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        if found is not None:
            return False, str(found)
        inner: BaseException = group
        while isinstance(inner, BaseExceptionGroup):
            inner = inner.exceptions[0]
        return False, f"{type(inner).__name__}: {inner}"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc} ({traceback.format_exc(limit=-2).strip().splitlines()[-1]})"


async def main(only: str | None, verbose: bool) -> int:
    results: dict[str, list[tuple[str, bool, str]]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for number, (category, name, fn) in enumerate(CASES):
            if only and only not in category:
                continue
            held, why = await run_one(category, name, fn, Path(tmp), number)
            results.setdefault(category, []).append((name, held, why))
            if verbose or not held:
                print(f"  {'held' if held else 'FAILED'}  {category}: {name}" + (f"  -- {why}" if why else ""))
    print(f"\nAttacks of issue 16, {sum(len(r) for r in results.values())} cases in"
          f" {time.perf_counter() - started:.0f} s\n")  # fmt: skip
    width = max(len(c) for c in results)
    print(f"{'category':<{width}}  {'tried':>5}  {'held':>5}  before (issue 16)")
    for category, rows in results.items():
        held = sum(1 for _, ok, _ in rows if ok)
        print(f"{category:<{width}}  {len(rows):>5}  {held:>5}  {BEFORE[category]}")
    total = sum(len(r) for r in results.values())
    held_all = sum(1 for rows in results.values() for _, ok, _ in rows if ok)
    print(f"{'total':<{width}}  {total:>5}  {held_all:>5}")
    return 0 if held_all == total else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="run the categories whose name contains this")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case, not only failures")
    args = parser.parse_args()
    sys.exit(anyio.run(main, args.only, args.verbose))
