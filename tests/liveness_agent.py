"""An agent a human started: its own `maestro serve` (no spawner), one claimed task, then it works forever.

Run as `python liveness_agent.py DB NAME PARENT`; prints one JSON line once it holds its task. Tests and
bench/liveness.py SIGKILL it and its server to see how soon the others notice.
"""

from __future__ import annotations

import json
import os
import sys

import anyio

from maestro_mcp.client import AgentClient, serve_params


async def main(db: str, name: str, parent: str) -> None:
    extra = {k: v for k, v in os.environ.items() if k.startswith("MAESTRO_") and k != "MAESTRO_DB"}
    server = serve_params(db=db, name=name, role="worker", parent=parent, env=extra)
    async with AgentClient(server, read_timeout_s=30) as client:
        await client.call("whoami")
        claimed = (await client.call("task_ready", claim=True))["claimed"]
        print(json.dumps({"task": claimed["id"] if claimed else None}), flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    db, name, parent = sys.argv[1:4]
    anyio.run(main, db, name, parent)
