"""The other end of `maestro_mcp/hook.py`: a Unix socket in the agent's own `maestro serve`.

The agent's CLI runs the hook around its tool calls; the hook forwards the CLI's input here and
prints the answer. After a tool call the answer is urgent mail for the model's context (see
`service.delivery`); before one that the CLI would otherwise prompt for, it is the team's decision
(see `service.approvals`): the project policy's, or an ancestor coordinator's or the operator's.

Only this session's hooks are answered: the socket lives in a directory only the user can enter,
and each request names the session and its token, checked here. A request this server does not
understand gets an empty answer, which the CLI treats as "no hook".
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from maestro_mcp import adapters
from maestro_mcp.adapters.base import Adapter, HookReply
from maestro_mcp.errors import MaestroError
from maestro_mcp.ids import token_matches
from maestro_mcp.models import SessionRecord
from maestro_mcp.policy import Verdict
from maestro_mcp.service import Services
from maestro_mcp.service.delivery import DeliveryService

log = logging.getLogger(__name__)

HEADER_LIMIT = 1024
MAX_INPUT = 4 * 1024 * 1024
READ_S = 5.0
CONFIRM_S = 5.0
EMPTY = HookReply()


class _Request:
    def __init__(self, cli: str, event: str, session: str, token: str, payload: bytes) -> None:
        self.cli, self.event, self.session, self.token, self.payload = cli, event, session, token, payload

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.payload or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


class HookServer:
    """Answers the hooks of the one session this server process acts as."""

    def __init__(
        self,
        path: str,
        services: Services,
        session: SessionRecord,
        project_root: Path,
        delivery: DeliveryService,
        *,
        judges: bool,
    ) -> None:
        self.judges = judges
        """Permission hooks are answered (policy, then the team) only for an agent maestro started
        unattended; an interactive agent's human answers its CLI's own prompts."""
        self.path = path
        self.services = services
        self.session = session
        self.project_root = project_root
        self.delivery = delivery
        self._adapters: dict[str, Adapter | None] = {}

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        directory = Path(self.path).parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # left by an earlier server of this session that was killed
        listener = await anyio.create_unix_listener(self.path)
        os.chmod(self.path, 0o600)
        task_status.started()
        try:
            async with listener:
                await listener.serve(self._handle)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _adapter(self, cli: str) -> Adapter | None:
        if cli not in self._adapters:
            try:
                self._adapters[cli] = adapters.load(cli, self.project_root)
            except MaestroError:
                self._adapters[cli] = None
        return self._adapters[cli]

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            buffer = bytearray()
            try:
                with anyio.fail_after(READ_S):
                    request = await _read_request(stream, buffer)
            except (TimeoutError, ValueError, anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
                log.info("hook request refused: %s", exc)
                return
            try:
                await self._answer(stream, buffer, request)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return  # the hook went away (the CLI's own timeout): nothing more to tell it
            except Exception:
                # A failure here must never break the agent's CLI: it gets no answer, which means "no hook".
                log.exception("hook %s %s failed", request.cli, request.event)
                with contextlib.suppress(Exception):
                    await _send(stream, EMPTY, None)

    def _mine(self, request: _Request) -> bool:
        return request.session == self.session.id and token_matches(request.token, self.session.token_hash)

    async def _answer(self, stream: anyio.abc.SocketStream, buffer: bytearray, request: _Request) -> None:
        adapter = self._adapter(request.cli)
        kind = adapter.hook_kind(request.event) if adapter is not None else ""
        if adapter is None or not kind or not self._mine(request):
            await _send(stream, EMPTY, None)
            return
        if kind in ("deliver", "stop"):
            if not adapter.can_deliver(request.event, request.json()):
                await _send(stream, EMPTY, None)
                return
            injection = await self.delivery.next_injection(self.session, adapter.context_limit)
            if injection is None:
                await _send(stream, EMPTY, None)
                return
            confirm = "c" + os.urandom(6).hex() if injection.message_ids else None
            await _send(stream, adapter.context_reply(request.event, injection.text), confirm)
            if confirm is None:
                return
            try:
                with anyio.fail_after(CONFIRM_S):
                    line = await _read_line(stream, buffer)
            except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, OSError, ValueError):
                self.delivery.release(self.session, injection.message_ids)
                return
            if line.strip() == f"CONFIRM {confirm}".encode():
                with anyio.CancelScope(shield=True):
                    await self.delivery.confirm(self.session, injection.message_ids)
                await stream.send(b"OK\n")
            else:
                self.delivery.release(self.session, injection.message_ids)
            return
        verdict = await self._permission(adapter, request) if self.judges else None
        await _send(stream, adapter.decision_reply(request.event, verdict) if verdict else EMPTY, None)

    async def _permission(self, adapter: Adapter, request: _Request) -> Verdict | None:
        payload = request.json()
        call = adapter.tool_call(payload)
        if call is None:
            return None  # not a call this hook can judge: the CLI decides as if there were no hook
        raw = payload.get("tool_input", payload.get("input"))
        return await self.services.approvals.judge(self.session, call, self.project_root, raw)


async def _read_line(stream: anyio.abc.SocketStream, buffer: bytearray) -> bytes:
    while b"\n" not in buffer:
        if len(buffer) > HEADER_LIMIT:
            raise ValueError("header too long")
        buffer += await stream.receive()
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


async def _read_request(stream: anyio.abc.SocketStream, buffer: bytearray) -> _Request:
    fields = (await _read_line(stream, buffer)).decode("utf-8", "replace").split(" ")
    if len(fields) != 7 or fields[0] != "MAESTRO-HOOK" or fields[1] != "1":
        raise ValueError("not a maestro hook request")
    length = int(fields[6])
    if not 0 <= length <= MAX_INPUT:
        raise ValueError(f"hook input of {length} bytes")
    while len(buffer) < length:
        buffer += await stream.receive()
    payload = bytes(buffer[:length])
    del buffer[:length]
    return _Request(fields[2], fields[3], fields[4], fields[5], payload)


async def _send(stream: anyio.abc.SocketStream, reply: HookReply, confirm: str | None) -> None:
    out, err = reply.stdout.encode(), reply.stderr.encode()
    await stream.send(f"{reply.exit} {confirm or '-'} {len(out)} {len(err)}\n".encode() + out + err)
