"""Serving MCP over stdio on the event loop, without a thread per read or write.

The SDK's `stdio_server()` reads stdin and writes stdout on worker threads.
That has two costs here:

* No cancellation can interrupt a thread blocked in `read()`. A `maestro serve`
  that got SIGTERM while its agent still held stdin open would hang there for
  ever, and never mark its session ended.
* Every request pays a thread round trip for the read, and two for the
  response (write, flush): as much as a store query, on every tool call.

So stdin and stdout, when they are pipes or sockets (as agent CLIs give them),
are made non-blocking and awaited with the event loop. As the SDK does, fd 0
and fd 1 point elsewhere while serving (the null device, stderr), so a child
process or a stray print can never touch the wire; the wire is a private
duplicate of each. Anything else on stdio (a file, a terminal) is left to the
SDK.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from typing import Any, cast

import anyio
import anyio.lowlevel
from mcp.server import MCPServer
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.stdio import stdio_server

READ_CHUNK = 1 << 16


MAX_DEPTH = 64
"""Nesting deeper than any MCP message needs is refused before the SDK's validators recurse into it."""
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if any("\ud800" <= c <= "\udfff" for c in node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def refusal(line: str) -> str | None:
    """The JSON-RPC error to answer a line that is not a valid message with (None: pass it on).

    The SDK drops such a line without a word, which leaves a client waiting for an answer that never
    comes. A request whose id can be read is answered with that id; anything else with id null, except a
    notification (no id, a method), which JSON-RPC never answers."""
    if not line.strip():
        return None
    try:
        message = json.loads(line)
    except RecursionError:
        return _error(None, INVALID_REQUEST, "the message is nested too deeply")
    except ValueError as exc:
        return _error(None, PARSE_ERROR, f"not JSON: {exc}")
    if not isinstance(message, dict):
        return None if isinstance(message, list) else _error(None, INVALID_REQUEST, "a message must be a JSON object")
    raw_id = message.get("id")
    request_id = raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    notification = "id" not in message and isinstance(message.get("method"), str)
    problem, code = "", 0
    if _depth(message) > MAX_DEPTH:
        problem, code = f"the message is nested deeper than {MAX_DEPTH} levels", INVALID_REQUEST
    elif _has_lone_surrogate(message):
        problem, code = "the message holds a lone UTF-16 surrogate, which is not text", PARSE_ERROR
    elif message.get("jsonrpc") != "2.0":
        problem, code = 'the message lacks "jsonrpc": "2.0"', INVALID_REQUEST
    elif "method" in message and not isinstance(message["method"], str):
        problem, code = '"method" must be a string', INVALID_REQUEST
    elif "method" in message and "params" in message and not isinstance(message["params"], dict):
        problem, code = '"params" must be an object', INVALID_PARAMS
    elif "method" in message and "id" in message and request_id is None:
        problem, code = '"id" must be a string or a number', INVALID_REQUEST
    if not problem:
        return None
    if notification and code != PARSE_ERROR:
        return ""  # a bad notification is dropped: JSON-RPC never answers a notification
    return _error(request_id, code, problem)


def _error(request_id: str | int | None, code: int, message: str) -> str:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": f"Invalid message: {message}."}}
    return json.dumps(body) + "\n"


class _Lines:
    """Lines of a non-blocking pipe, awaited on the event loop; enough of `anyio.AsyncFile` for the SDK.

    A line that is not a valid JSON-RPC message is answered with an error through `writer` and not
    passed on."""

    def __init__(self, fd: int, writer: _Writer) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._eof = False
        self._writer = writer

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[: newline + 1])
                del self._buffer[: newline + 1]
                text = line.decode("utf-8", "replace")
                answer = refusal(text)
                if answer is None:
                    return text
                if answer:
                    await self._writer.write(answer)
                continue
            if self._eof:
                if self._buffer:
                    rest = bytes(self._buffer)
                    self._buffer.clear()
                    return rest.decode("utf-8", "replace")
                raise StopAsyncIteration
            await anyio.wait_readable(self._fd)
            try:
                chunk = os.read(self._fd, READ_CHUNK)
            except BlockingIOError:
                continue
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True


class _Writer:
    """Writes to a non-blocking pipe, waiting on the event loop only when the pipe is full."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        # Whole messages, one at a time: the SDK's answers and the refusals of bad lines share the pipe.
        self._lock = anyio.Lock()

    async def write(self, text: str) -> int:
        async with self._lock:
            await self._write(text.encode("utf-8"))
        await anyio.lowlevel.checkpoint()
        return len(text)

    async def _write(self, raw: bytes) -> None:
        data = memoryview(raw)
        while data:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:
                await anyio.wait_writable(self._fd)
                continue
            except (BrokenPipeError, ConnectionResetError) as exc:
                # The agent is gone. The SDK's writer ends quietly on a closed stream; the session ends
                # when stdin reaches its end too.
                raise anyio.ClosedResourceError from exc
            data = data[written:]

    async def flush(self) -> None:
        """Every write went to the pipe already: there is no buffer to flush."""


def _pipe_like(fd: int) -> tuple[int, int] | None:
    """(device, inode) of a pipe or socket on `fd`, which the event loop can wait on; else None."""
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    if stat.S_ISFIFO(info.st_mode) or stat.S_ISSOCK(info.st_mode):
        return info.st_dev, info.st_ino
    return None


def _stderr_identity() -> tuple[int, int] | None:
    try:
        info = os.fstat(2)
    except OSError:
        return None
    return info.st_dev, info.st_ino


@contextlib.contextmanager
def _claim(fd: int, diversion: int) -> Iterator[int]:
    """A private non-blocking duplicate of `fd`, with `fd` pointing at `diversion` meanwhile."""
    private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    try:
        os.dup2(diversion, fd)
    finally:
        os.close(diversion)
    os.set_blocking(private, False)
    try:
        yield private
    finally:
        with contextlib.suppress(OSError):
            os.set_blocking(private, True)
            os.dup2(private, fd)
        os.close(private)


async def run_stdio(server: MCPServer[Any]) -> None:
    """`server.run_stdio_async()`, but cancellable at any time and without thread hops per message."""
    lowlevel = server._lowlevel_server
    # A plain `maestro serve` lists the tools of its intended role until its first call registers it; a
    # name taken over may turn out to have another role, and then the client is told to list again.
    options = lowlevel.create_initialization_options(NotificationOptions(tools_changed=True))
    stdin, stdout = _pipe_like(0), _pipe_like(1)
    # O_NONBLOCK belongs to the open pipe, which stderr may share (`2>&1`): then logging could fail.
    if stdin is None or stdout is None or stdout == _stderr_identity():
        async with stdio_server() as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, options)
        return
    with (
        _claim(0, os.open(os.devnull, os.O_RDONLY)) as read_fd,
        _claim(1, os.dup(2)) as write_fd,
    ):
        out = _Writer(write_fd)
        reader = cast(anyio.AsyncFile[str], _Lines(read_fd, out))
        writer = cast(anyio.AsyncFile[str], out)
        async with stdio_server(stdin=reader, stdout=writer) as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, options)
