"""A stand-in agent CLI for the relay's tests: prints a scenario's structured output, as Claude's
`--output-format stream-json` or Codex's `exec --json` would, then exits or waits to be signalled.

    python fake_cli.py SCENARIO [ARG]
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def out(event: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def claude_init() -> None:
    out({"type": "system", "subtype": "init", "session_id": "conv-123", "model": "claude-sonnet-4-5"})


def tool_use(n: int, command: str) -> None:
    content = [{"type": "tool_use", "id": f"t{n}", "name": "Bash", "input": {"command": command}}]
    out({"type": "assistant", "message": {"id": f"msg{n}", "content": content}})


def result(cost: float, input_tokens: int = 1000, output_tokens: int = 200, cached: int = 300) -> None:
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "cache_read_input_tokens": cached}
    out({"type": "result", "subtype": "success", "total_cost_usd": cost, "usage": usage})


def wait_for_signal() -> None:
    # Exit cleanly on SIGTERM, as a CLI does: the relay must pass the code on.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    while True:
        signal.pause()


def main() -> None:
    scenario = sys.argv[1]
    arg = sys.argv[2] if len(sys.argv) > 2 else ""
    if scenario == "work":  # a whole short run, then exit with ARG (default 0)
        claude_init()
        tool_use(1, "pytest -q")
        content = [{"type": "tool_result", "tool_use_id": "t1", "content": "3 passed"}]
        out({"type": "user", "message": {"content": content}})
        out({"type": "assistant", "message": {"id": "msg2", "content": [{"type": "text", "text": "All green."}]}})
        result(0.12)
        sys.stdout.write("this line is not JSON\n")
        sys.stdout.write('{"type": "assistant", "message": {"id": "trunc')  # cut off, as after a kill
        sys.stdout.flush()
        sys.exit(int(arg or 0))
    if scenario == "codex":
        out({"type": "thread.started", "thread_id": "thread-9"})
        item = {"id": "i1", "type": "command_execution", "command": "/bin/bash -lc 'ls'", "status": "in_progress"}
        out({"type": "item.started", "item": item})
        usage = {"input_tokens": 20_000, "cached_input_tokens": 5_000, "output_tokens": 1_000}
        out({"type": "turn.completed", "usage": usage})
        sys.exit(0)
    if scenario == "secret":  # a tool call that shows a secret from the environment
        claude_init()
        tool_use(1, f"curl -H 'x-api-key: {os.environ['FAKE_API_KEY']}' https://example.invalid")
        sys.exit(0)
    if scenario == "spend":  # spend ARG dollars, then keep working until stopped
        claude_init()
        tool_use(1, "make build")
        result(float(arg))
        wait_for_signal()
    if scenario == "idle":  # start, do one thing, then say nothing until stopped
        claude_init()
        tool_use(1, "sleep forever")
        wait_for_signal()
    if scenario == "chatty":  # ARG tool calls as fast as it can
        claude_init()
        for n in range(int(arg)):
            tool_use(n, f"step {n}")
        sys.exit(0)
    if scenario == "paced":  # ARG tool calls, 10 ms apart, each naming when it was printed (bench/observe.py)
        claude_init()
        for n in range(int(arg)):
            tool_use(n, f"step {n} at {time.time():.6f}")
            time.sleep(0.01)
        sys.exit(0)
    if scenario == "signal":  # die by a signal, as a crash would
        claude_init()
        os.kill(os.getpid(), signal.SIGKILL)
    raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
