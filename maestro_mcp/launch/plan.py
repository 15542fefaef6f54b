"""The pure planner: (definition, session, manifest, workspace) -> argv, environment, files.

Nothing here touches the disk or starts anything, so every launcher's plan is
tested exactly; `spawner.py` carries a plan out. Argument lists only, never a
shell string: placeholders are substituted into single arguments.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from maestro_mcp.errors import InvalidArgument
from maestro_mcp.launch.definitions import LauncherDef

MAESTRO_VARS = ("MAESTRO_SESSION", "MAESTRO_TOKEN", "MAESTRO_DB")


@dataclass(frozen=True)
class FileWrite:
    path: str
    content: str
    merge_json: bool = False
    """Merge into an existing JSON file (a user's own .gemini/settings.json) instead of replacing it."""


@dataclass(frozen=True)
class LaunchRequest:
    definition: LauncherDef
    session_id: str
    token: str
    name: str
    manifest: str
    workspace: Path
    project_root: Path
    db: str
    base_env: Mapping[str, str]
    mode: Literal["headless", "interactive"] = "headless"
    model: str | None = None
    script: str | None = None
    python: str = field(default_factory=lambda: sys.executable)


@dataclass(frozen=True)
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    files: list[FileWrite]
    log_path: str
    manifest_path: str


def server_command(python: str) -> list[str]:
    return [python, "-m", "maestro_mcp", "serve"]


def _toml(value: Any) -> str:
    """An inline TOML value; JSON strings are valid TOML basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _mcp(req: LaunchRequest, maestro_dir: Path) -> tuple[str, list[FileWrite]]:
    """The `{mcp_config}` value and the files that carry the server config, per CLI style."""
    d = req.definition
    command, *args = server_command(req.python)
    timeout_ms = d.tool_timeout_s * 1000
    if d.mcp_style == "claude":
        # Claude passes its whole environment to the server, MAESTRO_SESSION and MAESTRO_TOKEN included.
        path = maestro_dir / "mcp" / f"{req.name}.claude.json"
        config = {"mcpServers": {"maestro": {"type": "stdio", "command": command, "args": args, "timeout": timeout_ms}}}
        return str(path), [FileWrite(str(path), json.dumps(config, indent=2) + "\n")]
    if d.mcp_style == "codex":
        table = {
            "command": command,
            "args": args,
            # Codex gives a server only HOME, PATH and the like unless told which variables to pass.
            "env_vars": list(MAESTRO_VARS),
            # Without `required`, `codex exec` sends its first request before the server is up.
            "required": True,
            "default_tools_approval_mode": "approve",
            "startup_timeout_sec": 60,
            "tool_timeout_sec": d.tool_timeout_s,
        }
        inline = "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in table.items()) + "}"
        return f"mcp_servers.maestro={inline}", []
    if d.mcp_style == "gemini":
        entry = {
            "command": command,
            "args": args,
            # Gemini strips variables named like TOKEN; explicit entries are expanded from its own env
            # (`:-` so that a CLI started without them passes "" rather than the literal text).
            "env": {var: f"${{{var}:-}}" for var in MAESTRO_VARS},
            "trust": True,
            "timeout": timeout_ms,
        }
        # The workspace's own settings file, merged into what is there. Not a file named by
        # GEMINI_CLI_SYSTEM_SETTINGS_PATH: Gemini skips a system settings file unless it and every
        # parent directory are owned by root and not group/world-writable. The entry holds no
        # per-worker value, so workers sharing a workspace write the same one.
        path = req.workspace / ".gemini" / "settings.json"
        content = json.dumps({"mcpServers": {"maestro": entry}}, indent=2) + "\n"
        return str(path), [FileWrite(str(path), content, merge_json=True)]
    return "", []


def build_plan(req: LaunchRequest) -> LaunchPlan:
    d = req.definition
    mode = d.headless if req.mode == "headless" else d.interactive
    if mode is None:
        raise InvalidArgument(f"The {d.name} launcher ({d.source}) has no interactive mode.", "Use --headless.")
    maestro_dir = req.project_root / ".maestro"
    manifest_path = maestro_dir / "manifests" / f"{req.name}.md"
    mcp_config, files = _mcp(req, maestro_dir)
    # Only a launcher that runs `{script}` needs one; a project's own env-style agent may not.
    if not req.script and any("{script}" in arg for arg in mode.argv):
        if d.name == "script":
            raise InvalidArgument("A script agent needs a script: use agent='script:path/to/agent.py'.")
        raise InvalidArgument(
            f"Launcher definition {d.source}: field `{req.mode}.argv` uses {{script}}, which only the script"
            " launcher fills.",
            "Remove {script}, or run the script with agent='script:path/to/agent.py'.",
        )
    prompt = d.prompt
    if mode.prompt_with_manifest:
        prompt = f"{req.manifest}\n\n{prompt}".strip()
    values = {
        "binary": d.binary.replace("{python}", req.python),
        "python": req.python,
        "prompt": prompt,
        "manifest": req.manifest,
        "manifest_toml": json.dumps(req.manifest, ensure_ascii=False),
        "manifest_file": str(manifest_path),
        "mcp_config": mcp_config,
        "model": req.model or "",
        "workspace": str(req.workspace),
        "tool_timeout_s": str(d.tool_timeout_s),
        "tool_timeout_ms": str(d.tool_timeout_s * 1000),
        "script": req.script or "",
    }
    argv: list[str] = []
    for arg in mode.argv:
        if arg == "{model_args}":
            if req.model:
                argv += [a.format_map(values) for a in d.model_args]
            continue
        argv.append(arg.format_map(values))
    env = {k: v for k, v in req.base_env.items() if not k.startswith("MAESTRO_")}
    env.update({k: v.format_map(values) for k, v in d.env.items()})
    env.update(
        {
            "MAESTRO_SESSION": req.session_id,
            "MAESTRO_TOKEN": req.token,
            "MAESTRO_DB": req.db,
            "MAESTRO_MANIFEST": str(manifest_path),
        }
    )
    files = [FileWrite(str(manifest_path), req.manifest), *files]
    return LaunchPlan(
        argv=argv,
        env=env,
        cwd=str(req.workspace),
        files=files,
        log_path=str(maestro_dir / "logs" / f"{req.name}.log"),
        manifest_path=str(manifest_path),
    )
