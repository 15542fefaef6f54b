"""A test worker that shows what it sees and does what its directive says.

Directive words (any order):
  claim           claim one ready task and hold it (report {"holding": id})
  ignore-stop     keep running after a stop or a critical mail (still reporting it)
  ignore-sigterm  survive SIGTERM (only SIGKILL ends it)
Every report is `progress` with a JSON summary: {"whoami", "cwd"} at start; {"mail", "whoami"} for each
critical or `stop` mail (then it exits 0, unless ignore-stop). A mail with subject `exit` makes it exit
with the code in its body.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import anyio

from maestro_mcp.client import AgentClient

words: set[str] = set()


async def report(agent: AgentClient, **fields: Any) -> None:
    await agent.call("report_progress", kind="progress", summary=json.dumps(fields))


async def run() -> int:
    async with AgentClient.from_env() as agent:
        me = await agent.call("whoami")
        words.update((me["directive"] or "").split())
        if "ignore-sigterm" in words:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        await report(agent, whoami=me, cwd=os.getcwd())
        if "claim" in words:
            claimed = (await agent.call("task_ready", claim=True))["claimed"]
            await report(agent, holding=claimed["id"] if claimed else None)
        while True:
            for m in (await agent.call("mail_wait", timeout_s=30))["messages"]:
                if m["subject"] == "exit":
                    return int(m["body"])
                if m["priority"] == "critical" or m["subject"] == "stop":
                    await report(agent, mail=m, whoami=await agent.call("whoami"))
                    if "ignore-stop" not in words:
                        return 0


async def main() -> int:
    try:
        return await run()
    except Exception:
        if "ignore-sigterm" in words:
            await anyio.sleep_forever()  # our own server got the SIGTERM; we did not
        raise


if __name__ == "__main__":
    sys.exit(anyio.run(main))
