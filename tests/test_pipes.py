"""The stdio pipes `maestro serve` reads and writes on the event loop (maestro_mcp/server/pipes.py)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from maestro_mcp.server.pipes import _Lines, _Writer

pytestmark = pytest.mark.anyio


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def unread_bytes(fd: int) -> int:
    """How many bytes wait in the pipe (FIONREAD)."""
    (count,) = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))
    return int(count)


async def test_lines_are_reassembled_from_any_chunking_including_split_characters(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    first = '{"jsonrpc": "2.0", "method": "a", "params": {"text": "naïve ✓"}}'
    second = '{"jsonrpc": "2.0", "id": 2, "method": "b"}'
    tail = '{"jsonrpc": "2.0", "method": "tail"}'
    wire = f"{first}\n{second}\n{tail}".encode()
    lines: list[str] = []
    answers_r, answers_w = os.pipe()

    async def read() -> None:
        async for line in _Lines(read_fd, _Writer(answers_w)):
            lines.append(line)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            for i in range(0, len(wire), 3):  # 3-byte chunks split the multi-byte characters
                os.write(write_fd, wire[i : i + 3])
                while unread_bytes(read_fd):  # the reader takes each chunk on its own
                    await anyio.lowlevel.checkpoint()
            os.close(write_fd)

    assert lines == [first + "\n", second + "\n", tail]
    os.set_blocking(answers_r, False)
    with pytest.raises(BlockingIOError):
        os.read(answers_r, 100)  # nothing was refused
    os.close(answers_r)
    os.close(answers_w)


async def test_a_write_larger_than_the_pipe_waits_for_the_reader_and_loses_nothing(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    text = "x" * 300_000 + "é\n"  # several times a pipe's buffer
    received = bytearray()

    async def drain() -> None:
        while not received.endswith(b"\n"):
            await anyio.wait_readable(read_fd)
            received.extend(os.read(read_fd, 1 << 16))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            assert await _Writer(write_fd).write(text) == len(text)

    assert received.decode() == text


async def test_a_write_to_a_closed_pipe_ends_the_stream_quietly(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.close(read_fd)

    with pytest.raises(anyio.ClosedResourceError):
        await _Writer(write_fd).write("anyone there?\n")


# (line sent, the id and error code answered) for lines that are no JSON-RPC message.
BAD_LINES = [
    ("hello there, server", None, -32700),
    ('{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "\\ud800"}}', 7, -32700),
    ('{"jsonrpc": "2.0", "id": 8, "method": "ping", "params": ' + "[" * 200 + "]" * 200 + "}", 8, -32600),
    ('{"jsonrpc": "2.0", "id": "x9", "method": "tools/list", "params": [1, 2]}', "x9", -32602),
    ('{"jsonrpc": "2.0", "id": 10, "method": 5}', 10, -32600),
    ('{"id": 11, "method": "ping"}', 11, -32600),
    ("[1, 2", None, -32700),
    ('"just a string"', None, -32600),
]


@pytest.mark.parametrize(("line", "request_id", "code"), BAD_LINES)
async def test_a_line_that_is_no_json_rpc_message_gets_an_error_reply_and_the_server_carries_on(
    tmp_path: Path, line: str, request_id: str | int | None, code: int
) -> None:
    """The SDK drops such a line silently, leaving the client waiting for ever: it gets an answer now."""
    env = {**os.environ, "MAESTRO_DB": str(tmp_path / "maestro.db")}
    env = {k: v for k, v in env.items() if k not in ("MAESTRO_SESSION", "MAESTRO_TOKEN")}
    process = await anyio.open_process(
        [sys.executable, "-m", "maestro_mcp", "serve"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    async with process:
        assert process.stdin is not None and process.stdout is not None
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
                "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}  # fmt: skip
        ping = {"jsonrpc": "2.0", "id": 99, "method": "ping"}
        await process.stdin.send(json.dumps(init).encode() + b"\n" + line.encode() + b"\n")
        await process.stdin.send(json.dumps(ping).encode() + b"\n")
        buffer = b""
        answers: list[dict[str, Any]] = []
        with anyio.fail_after(30):
            while not any(a.get("id") == 99 for a in answers):
                buffer += await process.stdout.receive()
                *done, buffer = buffer.split(b"\n")
                answers += [json.loads(d) for d in done if d.strip()]
        await process.stdin.aclose()
        await process.wait()
    [refused] = [a for a in answers if "error" in a]
    assert refused["id"] == request_id and refused["error"]["code"] == code, refused
    assert refused["error"]["message"].startswith("Invalid message:")
    assert any(a.get("id") == 99 and a.get("result") == {} for a in answers), "the server still answers"
