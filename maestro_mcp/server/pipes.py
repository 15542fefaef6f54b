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
import os
import stat
from collections.abc import Iterator
from typing import Any, cast

import anyio
import anyio.lowlevel
from mcp.server import MCPServer
from mcp.server.stdio import stdio_server

READ_CHUNK = 1 << 16


class _Lines:
    """Lines of a non-blocking pipe, awaited on the event loop; enough of `anyio.AsyncFile` for the SDK."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._eof = False

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[: newline + 1])
                del self._buffer[: newline + 1]
                return line.decode("utf-8", "replace")
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

    async def write(self, text: str) -> int:
        data = memoryview(text.encode("utf-8"))
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
        await anyio.lowlevel.checkpoint()
        return len(text)

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
    stdin, stdout = _pipe_like(0), _pipe_like(1)
    # O_NONBLOCK belongs to the open pipe, which stderr may share (`2>&1`): then logging could fail.
    if stdin is None or stdout is None or stdout == _stderr_identity():
        await server.run_stdio_async()
        return
    lowlevel = server._lowlevel_server
    with (
        _claim(0, os.open(os.devnull, os.O_RDONLY)) as read_fd,
        _claim(1, os.dup(2)) as write_fd,
    ):
        reader = cast(anyio.AsyncFile[str], _Lines(read_fd))
        writer = cast(anyio.AsyncFile[str], _Writer(write_fd))
        async with stdio_server(stdin=reader, stdout=writer) as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
