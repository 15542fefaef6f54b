"""A test coordinator for `maestro launch` / `maestro team`: reads its manifest, builds the team it asks for.

It reports (progress, JSON summary) its whoami and the manifest file it was given, then spawns one
built-in scripted worker per "spawn N worker(s) ... profile='P'" line of the manifest's team section,
and waits for every one of them to exit.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import anyio

from maestro_mcp.client import AgentClient

TEAM_LINE = re.compile(r"spawn (\d+) worker\(s\) with spawn_worker\(.*profile='(\w+)'")


def read_manifest() -> str:
    return Path(os.environ["MAESTRO_MANIFEST"]).read_text(encoding="utf-8")


async def main() -> int:
    manifest = read_manifest()
    async with AgentClient.from_env() as agent:
        me = await agent.call("whoami")
        await agent.call("report_progress", kind="progress", summary=json.dumps({"whoami": me, "manifest": manifest}))
        names = []
        for count, profile in TEAM_LINE.findall(manifest):
            for n in range(int(count)):
                spawned = await agent.call(
                    "spawn_worker", agent="script", profile=profile, name=f"{profile}-{n + 1}", directive="the plan"
                )
                names.append(spawned["name"])
        with anyio.fail_after(60):
            while any(s["live"] for s in (await agent.call("list_sessions", role="worker"))["sessions"]):
                await agent.call("mail_wait", timeout_s=5)
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
