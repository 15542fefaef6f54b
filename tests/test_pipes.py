"""The stdio pipes `maestro serve` reads and writes on the event loop (maestro_mcp/server/pipes.py)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import termios
from collections.abc import Iterator

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
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


async def test_lines_are_reassembled_from_any_chunking_including_split_characters(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    wire = '{"a": "naïve ✓"}\n{"b": 2}\n{"tail": "no newline"}'.encode()
    lines: list[str] = []

    async def read() -> None:
        async for line in _Lines(read_fd):
            lines.append(line)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            for i in range(0, len(wire), 3):  # 3-byte chunks split the multi-byte characters
                os.write(write_fd, wire[i : i + 3])
                while unread_bytes(read_fd):  # the reader takes each chunk on its own
                    await anyio.lowlevel.checkpoint()
            os.close(write_fd)

    assert lines == ['{"a": "naïve ✓"}\n', '{"b": 2}\n', '{"tail": "no newline"}']


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
