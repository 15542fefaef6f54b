"""The adapter contract, and the pure planner every adapter shares.

An adapter is everything maestro knows about one agent CLI: how its MCP config is written (for
`maestro init`, for a spawned or launched agent, and for `maestro doctor` to read back), its
argv, how the manifest reaches it, how urgent mail reaches it mid-run, how its permission prompts
reach the team, what its built-in scratch tools are called, and which environment it needs.

Planning is pure: (definition, adapter, session, manifest, workspace) -> argv, environment and
files. Nothing here touches the disk or starts anything, so every plan is tested exactly;
`maestro_mcp.launch.spawner` carries a plan out. Argument lists only, never a shell string:
placeholders are substituted into single arguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from maestro_mcp.activity import Parser
from maestro_mcp.errors import InvalidArgument
from maestro_mcp.policy import RuleSet, ToolCall, Verdict

from .definitions import LISTS, LauncherDef

# What every maestro server an agent's CLI starts must be given: who it is, where the store is, where
# its CLI's hooks will ask, and (MAESTRO_PERMISSIONS=CLI) that its permission prompts go to the team.
MAESTRO_VARS = ("MAESTRO_SESSION", "MAESTRO_TOKEN", "MAESTRO_DB", "MAESTRO_HOOK_SOCKET", "MAESTRO_PERMISSIONS")
HOOK_SCRIPT = str(Path(__file__).resolve().parent.parent / "hook.py")
HOOK_GRACE_S = 30
"""How much longer than maestro's own bound a CLI waits for a permission hook before giving up on it."""


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
    coordinator: bool = False
    """The session is a coordinator: it gets the coordinator's first prompt."""
    rules: RuleSet | None = None
    """The permission policy that applies to the session (None: no hooks, no policy translation)."""
    hook_socket: str = ""
    """Where the session's own server listens for its CLI's hooks (empty: no live delivery)."""
    budget_usd: float | None = None
    max_turns: int | None = None
    conversation_id: str = ""
    """The CLI's conversation: named by maestro at spawn (where the CLI lets it), or resumed."""
    resume: bool = False
    """Continue `conversation_id` rather than start it."""
    restart_note: str = ""
    """Why the session was started again: said before the CLI's prompt."""


@dataclass(frozen=True)
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    files: list[FileWrite]
    log_path: str
    manifest_path: str
    root: str = ""
    """The project: every file of the plan is written inside it."""
    agent: str = ""
    """The adapter's kind, for the relay's parser."""
    observe: bool = False
    """Run the CLI under the relay (maestro_mcp/relay.py), which records its structured output."""


@dataclass
class Wiring:
    """What an adapter adds to a launch: single values, argument lists, environment and files."""

    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    files: list[FileWrite] = field(default_factory=list)


HookKind = Literal["deliver", "permission", "stop", ""]


@dataclass(frozen=True)
class HookReply:
    """What maestro's hook prints for the CLI, and its exit code."""

    stdout: str = ""
    stderr: str = ""
    exit: int = 0


@dataclass(frozen=True)
class ServerEntry:
    """The maestro server as a CLI's project config starts it: what `maestro doctor` checks."""

    command: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigState:
    """What a CLI's project config says about maestro, read back for `maestro doctor`."""

    path: str
    entry: ServerEntry | None = None
    problem: str = ""
    """Empty when the file names the maestro server; else what is wrong (missing, invalid, …)."""


def server_command(python: str) -> list[str]:
    """How a spawned or launched agent's CLI starts its own server: this interpreter, by absolute path."""
    return [python, "-m", "maestro_mcp", "serve"]


def hook_socket_path(project_root: Path, session_id: str) -> str:
    """Where a session's server listens for its CLI's hooks. Unix socket paths are limited to ~107 bytes,
    so a deep project falls back to a short per-project directory under the system temp dir."""
    beside = project_root / ".maestro" / "run" / "hooks" / f"{session_id}.sock"
    if len(str(beside)) <= 100:
        return str(beside)
    digest = hashlib.sha256(str(project_root.resolve()).encode()).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"maestro-{os.getuid()}" / digest / f"{session_id}.sock")


def serve_binary(python: str) -> str:
    """The `maestro` command of this install: beside its interpreter (a venv), else on PATH."""
    beside = Path(python).parent / "maestro"
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("maestro") or "maestro"


def hook_command(req: LaunchRequest, cli: str, event: str, timeout_s: float) -> str:
    """The shell command a CLI runs for one hook event: maestro's stdlib-only hook, by absolute paths
    (`-S`: no site-packages to import; never a pyenv shim, which costs 100 ms or more)."""
    return shlex.join([req.python, "-S", HOOK_SCRIPT, cli, event, f"{timeout_s:g}"])


def permission_wait_s(req: LaunchRequest) -> float:
    """How long a permission hook may wait for the team's answer: the policy's bound and a margin."""
    return (req.rules.approval_timeout_s if req.rules is not None else 600.0) + 10


def toml_value(value: Any) -> str:
    """An inline TOML value; JSON strings are valid TOML basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")


class PushChannel(Protocol):
    """Text into a running agent session, queued by its CLI for the model's next request."""

    async def send(self, text: str) -> None:
        """Hand `text` to the CLI; raises OSError when the session cannot be reached."""


class Adapter:
    """One agent CLI. Subclasses set the class attributes and override what their CLI does differently."""

    kind: ClassVar[str] = ""
    credentials: ClassVar[tuple[str, ...]] = ()
    """Environment variables the CLI needs to reach its model (keys, endpoints, config homes): every
    coordinator's server must receive them, so that any coordinator can spawn any worker."""
    scratch_tools: ClassVar[tuple[str, ...]] = ()
    """The CLI's own task, todo and team tools: private scratch; coordination goes through maestro."""
    tool_prefix: ClassVar[str] = ""
    """How the CLI shows maestro's tools to its model (`mcp__maestro__` + name)."""
    project_files: ClassVar[tuple[str, ...]] = ()
    """The project config files `maestro init` writes for this CLI, relative to the project root."""
    prompt_tool: ClassVar[bool] = False
    """The CLI asks an MCP tool of maestro's (permission_prompt) for permission decisions, not a hook."""
    context_limit: ClassVar[int] = 60_000
    """The most text one hook may put into the model's context (longer mail is announced instead)."""
    resumable: ClassVar[bool] = False
    """The CLI can continue an earlier conversation headless (respawn_worker resumes it)."""
    names_conversations: ClassVar[bool] = False
    """The CLI takes a conversation id chosen by maestro at start (else it is read from its output)."""
    native_turns: ClassVar[bool] = False
    """The CLI enforces max_turns itself (maestro enforces it otherwise)."""
    cumulative_usage: ClassVar[bool] = False
    """The CLI reports the conversation's running totals, earlier runs of a resumed one included."""

    _registry: ClassVar[dict[str, type[Adapter]]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.kind:
            Adapter._registry[cls.kind] = cls

    def __init__(self, definition: LauncherDef) -> None:
        self.definition = definition

    @classmethod
    def credentials_from(cls, env: Mapping[str, str]) -> list[str]:
        """Credential variables the user's own config of this CLI names (beyond `credentials`)."""
        return []

    # -- launching ------------------------------------------------------------
    def wire(self, req: LaunchRequest, maestro_dir: Path) -> Wiring:
        """The CLI-specific part of a plan: its MCP config, and what delivery and permissions need."""
        return Wiring()

    # -- hooks: live delivery and permissions ----------------------------------
    def hook_kind(self, event: str) -> HookKind:
        """What a hook event of this CLI is for: delivering mail, deciding a permission, or nothing."""
        return ""

    def tool_call(self, payload: dict[str, Any]) -> ToolCall | None:
        """The tool call a permission hook asks about, in the policy's terms (None: not understood)."""
        return None

    def can_deliver(self, event: str, payload: dict[str, Any]) -> bool:
        """Whether text this hook returns now would reach the model (a CLI may drop it, after a failed tool)."""
        return True

    def context_reply(self, event: str, text: str) -> HookReply:
        """How this CLI's hook puts `text` into the model's context."""
        return HookReply()

    def decision_reply(self, event: str, verdict: Verdict) -> HookReply:
        """How this CLI's hook allows or denies the call it asked about (deny with the reason shown)."""
        return HookReply()

    def resume_args(self, req: LaunchRequest) -> list[str]:
        """Arguments that name (`req.conversation_id`) or resume (`req.resume`) the CLI's conversation."""
        return []

    @staticmethod
    def session_id_args(req: LaunchRequest) -> list[str]:
        """`--session-id ID` to name a new conversation, `--resume ID` to continue it (Claude, Gemini)."""
        if not req.conversation_id:
            return []
        return ["--resume" if req.resume else "--session-id", req.conversation_id]

    def limit_args(self, req: LaunchRequest) -> list[str]:
        """Arguments with which the CLI enforces `req.budget_usd` / `req.max_turns` itself."""
        return []

    def output_parser(self) -> Parser | None:
        """A parser of the CLI's structured output (None: it has none; its log is kept raw only)."""
        return None

    def push_channel(self, env: Mapping[str, str]) -> PushChannel | None:
        """A way for the agent's own server to put text into the running session at any moment, if the
        CLI gives its MCP servers one (found in their environment); None: delivery waits for hooks."""
        return None

    # -- the project's own config (maestro init, maestro doctor) -------------
    def project_config(self, root: Path, command: Sequence[str]) -> list[FileWrite]:
        """What `maestro init` writes so that an agent started by hand in `root` has the maestro tools."""
        return []

    def read_project_config(self, root: Path) -> ConfigState | None:
        """The maestro entry of the project config, as the CLI would read it (None: nothing to check)."""
        return None

    def trust_problem(self, root: Path, env: Mapping[str, str]) -> str:
        """Why the CLI would ignore the project config even though it is written (empty when it would not)."""
        return ""


def all_credentials(env: Mapping[str, str] | None = None) -> list[str]:
    """Every adapter's credential variables (with `env`, those its user config adds too): what a
    coordinator's server must be given to spawn any CLI."""
    found: list[str] = []
    for adapter in Adapter._registry.values():
        found += adapter.credentials
        if env is not None:
            found += adapter.credentials_from(env)
    return list(dict.fromkeys(found))


def passed_to_server(env: Mapping[str, str] | None = None) -> list[str]:
    """What a CLI that filters its MCP servers' environment must pass to maestro's: the session and the
    credentials of every CLI (a Codex coordinator may spawn a Claude worker)."""
    return [*MAESTRO_VARS, *all_credentials(env)]


def build_plan(req: LaunchRequest, adapter: Adapter) -> LaunchPlan:
    d = req.definition
    mode = d.headless if req.mode == "headless" else d.interactive
    if mode is None:
        raise InvalidArgument(f"The {d.name} launcher ({d.source}) has no interactive mode.", "Use --headless.")
    maestro_dir = req.project_root / ".maestro"
    manifest_path = maestro_dir / "manifests" / f"{req.name}.md"
    # Only a launcher that runs `{script}` needs one; a project's own script-style agent may not.
    if not req.script and any("{script}" in arg for arg in mode.argv):
        if d.name == "script":
            raise InvalidArgument("A script agent needs a script: use agent='script:path/to/agent.py'.")
        raise InvalidArgument(
            f"Launcher definition {d.source}: field `{req.mode}.argv` uses {{script}}, which only the script"
            " launcher fills.",
            "Remove {script}, or run the script with agent='script:path/to/agent.py'.",
        )
    wiring = adapter.wire(req, maestro_dir)
    prompt = d.prompt_for(req.coordinator)
    if req.restart_note:
        prompt = f"{req.restart_note}\n\n{prompt}"
    if mode.prompt_with_manifest and not req.resume:
        prompt = f"{req.manifest}\n\n{prompt}".strip()
    values = {
        "binary": d.binary.replace("{python}", req.python),
        "python": req.python,
        "prompt": prompt,
        "manifest": req.manifest,
        "manifest_toml": json.dumps(req.manifest, ensure_ascii=False),
        "manifest_file": str(manifest_path),
        "mcp_config": "",
        "model": req.model or "",
        "workspace": str(req.workspace),
        "tool_timeout_s": str(d.tool_timeout_s),
        "tool_timeout_ms": str(d.tool_timeout_s * 1000),
        "script": req.script or "",
        **wiring.values,
    }
    lists = {
        "model_args": [a.format_map(values) for a in d.model_args] if req.model else [],
        "resume_args": adapter.resume_args(req) if req.mode == "headless" else [],
        "limit_args": adapter.limit_args(req) if req.mode == "headless" else [],
        **wiring.lists,
    }
    argv: list[str] = []
    for arg in mode.argv:
        name = arg[1:-1] if arg.startswith("{") and arg.endswith("}") else ""
        if name in LISTS:
            argv += lists.get(name, [])
            continue
        argv.append(arg.format_map(values))
    # A coordinator under a CLI that filters environments gets every credential name, set or not; an
    # empty one (Gemini passes unset names as "") would shadow the CLI's own login: leave it out.
    credentials = set(all_credentials(req.base_env))
    env = {k: v for k, v in req.base_env.items() if not k.startswith("MAESTRO_") and (v or k not in credentials)}
    env.update({k: v.format_map(values) for k, v in d.env.items()})
    env.update(wiring.env)
    env.update(
        {
            "MAESTRO_SESSION": req.session_id,
            "MAESTRO_TOKEN": req.token,
            "MAESTRO_DB": req.db,
            "MAESTRO_MANIFEST": str(manifest_path),
        }
    )
    if req.hook_socket:
        env["MAESTRO_HOOK_SOCKET"] = req.hook_socket
    files = [FileWrite(str(manifest_path), req.manifest), *wiring.files]
    return LaunchPlan(
        argv=argv,
        env=env,
        cwd=str(req.workspace),
        files=files,
        log_path=str(maestro_dir / "logs" / f"{req.name}.log"),
        manifest_path=str(manifest_path),
        root=str(req.project_root),
        agent=adapter.kind or d.name,
        observe=req.mode == "headless" and adapter.output_parser() is not None,
    )
