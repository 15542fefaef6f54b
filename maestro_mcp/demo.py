"""`maestro demo`: two agents exchange mail through two real `maestro serve` processes.

Each agent is an MCP client of its own server process; the servers share only
the SQLite store in a scratch project. The transcript shows what each agent
called and saw, including the receipts the sender gets back.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import anyio

from .client import AgentClient, serve_params


def _say(who: str, text: str) -> None:
    print(f"  {who:<6} {text}", flush=True)


async def run_demo(keep: bool = True) -> int:
    project = Path(tempfile.mkdtemp(prefix="maestro-demo-"))
    db = str(project / ".maestro" / "maestro.db")
    started = time.perf_counter()
    print(f"maestro demo: two agents, two `maestro serve` processes, one store at {db}\n", flush=True)

    async with AgentClient(serve_params(db=db, name="alice", role="coordinator", cwd=str(project))) as alice:
        me = await alice.call("whoami")
        _say("alice", f"whoami -> {me['name']} ({me['role']}, session {me['session_id']})")
        async with AgentClient(serve_params(db=db, name="bob", role="worker", parent="alice", cwd=str(project))) as bob:
            me = await bob.call("whoami")
            _say("bob", f"whoami -> {me['name']} ({me['role']}), coordinator: {me['coordinator']}")

            bob_got: dict[str, object] = {}
            bob_waiting = anyio.Event()

            async def bob_loop() -> None:
                bob_waiting.set()
                waited = await bob.call("mail_wait", timeout_s=20)
                bob_got.update(waited)

            async with anyio.create_task_group() as tg:
                tg.start_soon(bob_loop)
                await bob_waiting.wait()
                _say("bob", "mail_wait(timeout_s=20) ... blocking")
                sent = await alice.call(
                    "mail_send",
                    to="children",
                    subject="task",
                    body="Please write hello.txt.",
                    priority="high",
                )
                sent_at = time.perf_counter()
                _say("alice", f"mail_send(to=children) -> {sent['message_id']} to {sent['recipients']}")
            woke_ms = (time.perf_counter() - sent_at) * 1000
            message = bob_got["messages"][0]  # type: ignore[index]
            _say("bob", f"woke {woke_ms:.1f} ms after the send: {message['sender']}: {message['body']!r}")

            thread = await alice.call("mail_thread", thread_id=sent["thread_id"])
            receipt = thread["messages"][0]["receipts"][0]
            _say("alice", f"mail_thread -> bob's receipt: {receipt['status']}")

            await bob.call("mail_ack", message_ids=[message["message_id"]])
            _say("bob", "mail_ack -> acknowledged")
            reply = await bob.call(
                "mail_send", to="coordinator", body="Done: hello.txt written.", reply_to=message["message_id"]
            )
            _say("bob", f"mail_send(to=coordinator, reply_to=...) -> {reply['message_id']}")

            waited = await alice.call("mail_wait", timeout_s=10)
            answer = waited["messages"][0]
            _say(
                "alice",
                f"mail_wait -> {answer['sender']}: {answer['body']!r} (same thread: "
                f"{answer['thread_id'] == sent['thread_id']})",
            )
            thread = await alice.call("mail_thread", thread_id=sent["thread_id"])
            receipt = thread["messages"][0]["receipts"][0]
            _say("alice", f"mail_thread -> bob's receipt now: {receipt['status']}")
        sessions = await alice.call("list_sessions")
        states = ", ".join(f"{s['name']}={s['status']}" for s in sessions["sessions"])
        _say("alice", f"list_sessions after bob's server stopped -> {states}")
        events = await alice.call("mail_wait", timeout_s=5)
        for event in events["messages"]:
            _say("alice", f"event mail: {event['subject']!r}: {event['body']}")

    print(f"\ndone in {time.perf_counter() - started:.1f} s; the project is at {project}", flush=True)
    if not keep:
        import shutil

        shutil.rmtree(project, ignore_errors=True)
    return 0
