"""The hook an agent CLI runs around its tool calls: it asks the agent's own `maestro serve`.

    python -S .../maestro_mcp/hook.py CLI EVENT TIMEOUT_S  < the CLI's hook input (JSON)

It runs on every tool call, so it must cost next to nothing: it imports only `_socket`, `os` and
`sys` (no `json`, no maestro package: a fresh interpreter importing either pays 15 ms or more),
forwards the CLI's input bytes unparsed over the Unix socket named by MAESTRO_HOOK_SOCKET, and
prints what the server answers. The server does all the work: it knows the session, the store,
the policy and each CLI's output format.

Whatever goes wrong (no session, no socket, a server that is gone or slow, garbage), the hook
prints nothing and exits 0, so the CLI carries on as if the hook were not there; the failure is
logged next to the socket.

The exchange, over one connection:
    -> MAESTRO-HOOK 1 CLI EVENT SESSION TOKEN LENGTH\\n  then LENGTH bytes of the CLI's input
    <- EXIT CONFIRM STDOUT_LENGTH STDERR_LENGTH\\n      then the bytes to print on stdout and stderr
    -> CONFIRM ID\\n    once stdout is written and flushed (only when CONFIRM is not "-"), so that mail
                       injected this way becomes `delivered` only once it has been handed to the CLI
"""

import _socket
import os
import sys

MAX_INPUT = 4 * 1024 * 1024
MAX_REPLY = 8 * 1024 * 1024


def _log(message: str) -> None:
    path = os.environ.get("MAESTRO_HOOK_SOCKET", "")
    if not path:
        return
    try:
        with open(path + ".log", "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {message}\n")
    except OSError:
        pass


def _read_exactly(sock: "_socket.socket", n: int, buffer: bytearray) -> bytes:
    while len(buffer) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-reply")
        buffer += chunk
    data = bytes(buffer[:n])
    del buffer[:n]
    return data


def _read_line(sock: "_socket.socket", buffer: bytearray, limit: int = 4096) -> bytes:
    while b"\n" not in buffer:
        if len(buffer) > limit:
            raise ValueError("reply header too long")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def run(argv: list[str]) -> int:
    if len(argv) < 4:
        return 0
    cli, event, timeout_text = argv[1], argv[2], argv[3]
    path = os.environ.get("MAESTRO_HOOK_SOCKET", "")
    session = os.environ.get("MAESTRO_SESSION", "")
    token = os.environ.get("MAESTRO_TOKEN", "") or "-"
    if not path or not session:
        return 0  # not an agent maestro started: nothing to do
    try:
        timeout = max(0.1, float(timeout_text))
    except ValueError:
        timeout = 5.0
    payload = sys.stdin.buffer.read(MAX_INPUT)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(min(timeout, 2.0))
        try:
            sock.connect(path)
        except OSError:
            return 0  # the server is gone (or never listened): carry on without it
        sock.settimeout(timeout)
        header = f"MAESTRO-HOOK 1 {cli} {event} {session} {token} {len(payload)}\n".encode()
        sock.sendall(header + payload)
        buffer = bytearray()
        fields = _read_line(sock, buffer).split()
        code, confirm, out_len, err_len = int(fields[0]), fields[1], int(fields[2]), int(fields[3])
        if out_len + err_len > MAX_REPLY:
            raise ValueError("reply too long")
        out = _read_exactly(sock, out_len, buffer)
        err = _read_exactly(sock, err_len, buffer)
        if out:
            sys.stdout.buffer.write(out)
            sys.stdout.buffer.flush()
        if err:
            sys.stderr.buffer.write(err)
            sys.stderr.buffer.flush()
        if confirm != b"-":
            sock.settimeout(2.0)
            sock.sendall(b"CONFIRM " + confirm + b"\n")
            _read_line(sock, buffer)
        return code
    except Exception as exc:  # a hook must never break the CLI: log, print nothing more, carry on
        _log(f"{cli} {event}: {type(exc).__name__}: {exc}")
        return 0
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(run(sys.argv))
