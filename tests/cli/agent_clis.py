"""What the real-CLI tests share: finding each CLI, and a hermetic environment that points it at the fake model.

The CLIs come from the repository's own `node_modules` (`make clis`, versions pinned in
package.json), else from PATH. Each test gets a temporary HOME (and CODEX_HOME) so no user
config, credential or trust setting leaks in, and nothing is written to the real ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import pytest
from mcp.client.stdio import StdioServerParameters

from maestro_mcp.client import serve_params
from maestro_mcp.models import SessionRecord
from maestro_mcp.store import Store, create_store

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "node_modules" / ".bin"
PACKAGES = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex", "gemini": "@google/gemini-cli"}
# Tool names as each CLI shows them to its model.
TOOL_PREFIX = {"claude": "mcp__maestro__", "codex": "mcp__maestro__", "gemini": "mcp_maestro_"}


def find_cli(name: str) -> str | None:
    """<repo>/node_modules/.bin/NAME, else NAME on PATH."""
    local = NODE_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def require_cli(name: str) -> str:
    found = find_cli(name)
    if found is None:
        message = f"the {name} CLI ({PACKAGES[name]}) is not installed: run `make clis`"
        if os.environ.get("MAESTRO_REQUIRE_CLIS"):
            # CI installed them (`make clis`): a missing one is a broken setup, not a test to skip.
            pytest.fail(message)
        pytest.skip(
            f"the {name} CLI ({PACKAGES[name]}) is not installed: run `make clis` "
            f"(npm ci into {NODE_BIN}) or put `{name}` on PATH"
        )
    return found


@dataclass
class Sandbox:
    """A project directory and a temporary home for one test, plus the environment an agent CLI gets."""

    root: Path
    project: Path
    home: Path
    env: dict[str, str]

    @property
    def db(self) -> str:
        return str(self.project / ".maestro" / "maestro.db")

    def coordinator_params(self, name: str = "lead") -> StdioServerParameters:
        """A coordinator's `maestro serve` whose environment is exactly this sandbox's (plus MAESTRO_DB).

        `spawn_worker` gives a worker the coordinator server's environment, so the worker's CLI
        sees the fake model's endpoint, the temporary home and the CLIs on PATH.
        """
        params = serve_params(db=self.db, name=name, cwd=str(self.project))
        return params.model_copy(update={"env": {**self.env, "MAESTRO_DB": self.db}})

    def maestro_argv(self, *args: str) -> list[str]:
        """The `maestro` command of this install (the venv's interpreter, whatever PATH says)."""
        return [sys.executable, "-m", "maestro_mcp", *args]


# All the test runner's environment a CLI gets: nothing it could take credentials, endpoints or config from.
_PASS_THROUGH = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def make_sandbox(root: Path, model_url: str | None, clis: tuple[str, ...] = ("claude", "codex", "gemini")) -> Sandbox:
    """A temp project and HOME; the env points every CLI at `model_url` (the fake model) when given."""
    project = root / "project"
    home = root / "home"
    codex_home = home / ".codex"
    for d in (project, home / ".gemini", codex_home):
        d.mkdir(parents=True, exist_ok=True)
    bin_dirs = [str(Path(p).parent) for p in (find_cli(c) for c in clis) if p is not None]
    path = os.pathsep.join(dict.fromkeys([*bin_dirs, str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
    env.update(
        {
            "PATH": path,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "CODEX_HOME": str(codex_home),
            "LANG": env.get("LANG", "C.UTF-8"),
            "TERM": "dumb",
            "NO_COLOR": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
    )
    # Gemini: API-key auth (the key is fake; the endpoint below is the fake model).
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings, indent=2))
    if model_url is not None:
        env.update(
            {
                "ANTHROPIC_BASE_URL": model_url,
                "ANTHROPIC_API_KEY": "sk-ant-fake",
                "GOOGLE_GEMINI_BASE_URL": model_url,
                "GEMINI_API_KEY": "fake",
                "FAKE_MODEL_KEY": "fake",
            }
        )
        # Codex reads its model provider from $CODEX_HOME/config.toml (the temporary one).
        (codex_home / "config.toml").write_text(
            'model_provider = "fake"\n'
            "\n[model_providers.fake]\n"
            'name = "fake"\n'
            f'base_url = "{model_url}/v1"\n'
            'wire_api = "responses"\n'
            'env_key = "FAKE_MODEL_KEY"\n'
        )
    return Sandbox(root=root, project=project, home=home, env=env)


@contextlib.asynccontextmanager
async def open_store(db: str) -> AsyncIterator[Store]:
    """The store as the test itself sees it, independent of any server process."""
    store = create_store(db)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def run_bounded(
    argv: list[str], *, env: dict[str, str], cwd: Path, timeout_s: float, stdin: bytes = b""
) -> tuple[int, str]:
    """Run a command in its own process group; its exit code and output (stdout, then stderr).

    Past `timeout_s` the whole group is killed (an agent CLI and the servers it started), and the
    test fails with what the command printed so far.
    """
    process = await anyio.open_process(
        argv, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}

    async def drain(name: str, stream: anyio.abc.ByteReceiveStream | None) -> None:
        if stream is not None:
            async for chunk in stream:
                chunks[name].append(chunk)

    async with process:
        with anyio.move_on_after(timeout_s) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(drain, "stdout", process.stdout)
                tg.start_soon(drain, "stderr", process.stderr)
                assert process.stdin is not None
                if stdin:
                    await process.stdin.send(stdin)
                await process.stdin.aclose()
            await process.wait()
        if scope.cancelled_caught:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    output = b"".join(chunks["stdout"] + chunks["stderr"]).decode(errors="replace")
    if scope.cancelled_caught:
        pytest.fail(f"{argv[:3]} did not finish within {timeout_s} s; its output:\n{output[-4000:]}")
    assert process.returncode is not None
    return process.returncode, output


def describe(session: SessionRecord | None) -> str:
    if session is None:
        return "no such session"
    return f"{session.name}: status={session.status.value} exit_code={session.exit_code} ended={not session.live}"


def log_tail(path: str | None, chars: int = 4000) -> str:
    """The end of a worker's log, for assertion messages."""
    if not path or not Path(path).is_file():
        return "(no log)"
    return Path(path).read_text(errors="replace")[-chars:]
