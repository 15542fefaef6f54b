"""Wake-ups across the processes of a SQLite store: a Unix datagram socket per process.

Each process binds ``<topic-owner>~<pid>~<rand>.sock`` in a run directory next to
the database, and a publisher sends one datagram to each socket whose owner the
topic concerns, after its commit. No polling, no filesystem watcher, and a kernel
round trip of a few microseconds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path

import anyio
import anyio.abc

from maestro_mcp.store.notify import ALL, Hub, topic_owner

log = logging.getLogger(__name__)


def socket_dir_for(db_path: str) -> Path:
    """Where the sockets of a SQLite store live; every process derives the same place.

    Unix socket paths are limited to ~107 bytes, so a deep project falls back
    to a short per-store directory under the system temp dir.
    """
    beside = Path(db_path).parent / "run"
    if len(str(beside)) <= 60:
        return beside
    digest = hashlib.sha256(str(Path(db_path).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"maestro-{os.getuid()}" / digest


class SocketTransport:
    """Unix datagram sockets, one per process, named after the session they serve."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._path: str | None = None
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)

    async def run(
        self, hub: Hub, owner: str, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{owner if owner != ALL else '_all'}~{os.getpid()}~{secrets.token_hex(3)}.sock"
        path = str(self.directory / name)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.bind(path)
            self._path = path
            try:
                task_status.started()
                while True:
                    await anyio.wait_readable(sock)
                    topics: list[str] = []
                    while True:
                        try:
                            data = sock.recv(4096)
                        except BlockingIOError:
                            break
                        topics.extend(data.decode("utf-8", "replace").split("\n"))
                    hub.ring(topics)
            finally:
                self._path = None
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def send(self, topics: Iterable[str]) -> None:
        topics = list(topics)
        owners = {topic_owner(t) for t in topics}
        payload = "\n".join(topics).encode()
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return
        for entry in entries:
            owner = entry.name.split("~", 1)[0]
            if owner != "_all" and owner not in owners and ALL not in owners:
                continue
            if entry.path == self._path:
                continue  # this process's own subscriptions were rung directly
            try:
                self._sender.sendto(payload, entry.path)
            except ConnectionRefusedError:
                # Nobody is bound: the process died without cleaning up. Its socket is litter.
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            except BlockingIOError:
                pass  # the receiver has unread wake-ups queued already; it will look again
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTSOCK, errno.EPROTOTYPE):
                    log.debug("wake-up to %s failed: %s", entry.path, exc)

    def close(self) -> None:
        self._sender.close()
