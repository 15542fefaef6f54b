"""Codex CLI: config as a `-c mcp_servers.maestro={...}` override, the manifest as developer
instructions, and only the variables named in `env_vars` passed to the server."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from maestro_mcp.activity import Activity, Kind, Parser, action, short
from maestro_mcp.policy import Decision, ToolCall, Verdict

from .base import (
    HOOK_GRACE_S,
    Adapter,
    ConfigState,
    FileWrite,
    HookKind,
    HookReply,
    LaunchRequest,
    ServerEntry,
    Wiring,
    hook_command,
    passed_to_server,
    permission_wait_s,
    server_command,
    toml_value,
)
from .claude import hook_tool_call


def codex_home(env: Mapping[str, str]) -> Path:
    home = env.get("CODEX_HOME") or ""
    return Path(home) if home else Path(env.get("HOME") or os.path.expanduser("~")) / ".codex"


def _user_config(env: Mapping[str, str]) -> dict[str, Any]:
    try:
        return tomllib.loads((codex_home(env) / "config.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


class CodexAdapter(Adapter):
    kind = "codex"
    resumable = True
    cumulative_usage = True
    credentials = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "CODEX_HOME")
    scratch_tools = ("spawn_agent", "send_message", "wait", "update_plan")
    tool_prefix = "mcp__maestro__"
    project_files = (".codex/config.toml",)

    @classmethod
    def credentials_from(cls, env: Mapping[str, str]) -> list[str]:
        """The `env_key` of every model provider the user's Codex config defines: its credentials too."""
        providers = _user_config(env).get("model_providers", {})
        keys = [p.get("env_key") for p in providers.values() if isinstance(p, dict)]
        return [k for k in keys if isinstance(k, str) and k]

    def server_table(self, command: Sequence[str], env_vars: Sequence[str]) -> dict[str, Any]:
        first, *args = command
        return {
            "command": first,
            "args": list(args),
            # Codex gives a server only HOME, PATH and the like unless told which variables to pass.
            "env_vars": list(dict.fromkeys(env_vars)),
            # Without `required`, `codex exec` sends its first request before the server is up.
            "required": True,
            "default_tools_approval_mode": "approve",
            "startup_timeout_sec": 60,
            "tool_timeout_sec": self.definition.tool_timeout_s,
        }

    def wire(self, req: LaunchRequest, maestro_dir: Path) -> Wiring:
        passed = passed_to_server(req.base_env)
        table = self.server_table(server_command(req.python), passed)
        wiring = Wiring(values={"mcp_config": f"mcp_servers.maestro={toml_value(table)}"})
        if req.mode == "headless":
            wiring.lists["output_args"] = ["--json"]
        if req.rules is not None and req.rules.allows("network"):
            wiring.lists["permission_args"] = ["-c", "sandbox_workspace_write.network_access=true"]
        if not req.hook_socket:
            return wiring

        def hooks(event: str, matcher: str, wait_s: float, timeout_s: float) -> str:
            handler = {"type": "command", "command": hook_command(req, self.kind, event, wait_s), "timeout": timeout_s}
            return f"hooks.{event}={toml_value([{'matcher': matcher, 'hooks': [handler]}])}"

        # Hooks passed on the command line are untrusted; without the flag Codex skips them silently.
        wiring.lists["delivery_args"] = [
            "--dangerously-bypass-hook-trust",
            "-c",
            hooks("PostToolUse", "*", 5, 10),
            "-c",
            hooks("Stop", "*", 5, 10),
        ]
        if req.rules is not None and req.mode == "headless":
            wait = permission_wait_s(req)
            # Its own shell tool is "Bash" in hooks; maestro's tools are never gated.
            gate = ["-c", hooks("PreToolUse", "Bash", wait, int(wait + HOOK_GRACE_S))]
            wiring.lists["permission_args"] = wiring.lists.get("permission_args", []) + gate
            wiring.env["MAESTRO_PERMISSIONS"] = self.kind
        return wiring

    # -- hooks ----------------------------------------------------------------
    # Codex runs hooks in `exec` (its own shell tool appears as "Bash" in them) when they are passed with
    # `-c hooks.EVENT=[…]` and `--dangerously-bypass-hook-trust`; untrusted hooks are skipped silently.
    # PostToolUse context arrives as a developer message before the tool output. PreToolUse can only
    # deny (with a reason the model sees): an allowed call runs inside Codex's own sandbox, which
    # `exec` never lifts (its approval policy is forced to "never").

    context_limit = 9000
    """Codex truncates hook context past about 2,500 tokens."""

    def hook_kind(self, event: str) -> HookKind:
        return {"PostToolUse": "deliver", "PreToolUse": "permission", "Stop": "stop"}.get(event, "")  # type: ignore[return-value]

    def tool_call(self, payload: dict[str, Any]) -> ToolCall | None:
        # Codex's hooks send Claude Code's payload shape; of its tools, only shell commands (as "Bash")
        # and MCP calls reach them.
        call = hook_tool_call(payload)
        return call if call is not None and call.kind in ("maestro", "mcp", "run") else None

    def context_reply(self, event: str, text: str) -> HookReply:
        if event == "Stop":
            return HookReply(stdout=json.dumps({"decision": "block", "reason": text}))
        return HookReply(stdout=json.dumps({"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}))

    def decision_reply(self, event: str, verdict: Verdict) -> HookReply:
        if verdict.decision is Decision.allow:
            return HookReply()  # no output: the call goes on, inside the sandbox
        output = {
            "hookSpecificOutput": {
                "hookEventName": event,
                "permissionDecision": "deny",
                "permissionDecisionReason": f"maestro: {verdict.reason}",
            }
        }
        return HookReply(stdout=json.dumps(output))

    def resume_args(self, req: LaunchRequest) -> list[str]:
        # `codex exec [its options] resume THREAD PROMPT`: the thread id is read from its first event.
        return ["resume", req.conversation_id] if req.resume and req.conversation_id else []

    def output_parser(self) -> Parser:
        return CodexEvents()

    def project_config(self, root: Path, command: Sequence[str]) -> list[FileWrite]:
        # Names only (no values): the file can be committed, and a coordinator started from it can spawn
        # any CLI with the credentials of whoever runs it.
        table = self.server_table(command, passed_to_server(os.environ))
        lines = [
            "# Codex loads this only when $CODEX_HOME/config.toml marks the project trusted.",
            "[mcp_servers.maestro]",
        ]
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items() if key != "startup_timeout_sec"]
        return [FileWrite(str(root / ".codex" / "config.toml"), "\n".join(lines) + "\n")]

    def read_project_config(self, root: Path) -> ConfigState:
        path = root / ".codex" / "config.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ConfigState(str(path), problem="no project MCP config")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return ConfigState(str(path), problem=f"invalid: {exc}")
        entry = data.get("mcp_servers", {}).get("maestro")
        if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
            return ConfigState(str(path), problem="does not name the maestro server")
        env = {str(k): str(v) for k, v in (entry.get("env") or {}).items()}
        return ConfigState(str(path), ServerEntry(entry["command"], [str(a) for a in entry.get("args") or []], env))

    def trust_problem(self, root: Path, env: Mapping[str, str]) -> str:
        projects = _user_config(env).get("projects", {})
        for candidate in (root.resolve(), *root.resolve().parents):
            entry = projects.get(str(candidate))
            if isinstance(entry, dict) and entry.get("trust_level") == "trusted":
                return ""
        config = codex_home(env) / "config.toml"
        return (
            f"Codex ignores {root / '.codex' / 'config.toml'} until the project is trusted. Add to {config}:\n"
            f'[projects.{json.dumps(str(root.resolve()))}]\ntrust_level = "trusted"\n'
            "(or start `codex` in the project once and accept the trust prompt)"
        )


class CodexEvents(Parser):
    """`codex exec --json`: thread.started, item.started / item.completed, turn.completed, errors.

    `turn.completed` carries the thread's running token totals (a resumed thread's included); Codex
    reports no cost, so spend is priced from the price table and marked an estimate. Items of type
    `error` are warnings (the hook-trust notice, missing model metadata), not failures."""

    def parse(self, event: dict[str, Any]) -> list[Activity] | None:
        kind = event.get("type")
        if kind == "thread.started":
            return [Activity(Kind.start, conversation_id=str(event["thread_id"]))]
        if kind in ("turn.started",):
            return []
        if kind in ("item.started", "item.completed"):
            item = event["item"]
            itype = item.get("type")
            started = kind == "item.started"
            if itype == "command_execution":
                command = str(item.get("command") or "")
                if started:
                    return [Activity(Kind.tool_call, summary=action("shell", command=command), tool="shell", turns=1)]
                ok = item.get("status") == "completed" and item.get("exit_code") in (0, None)
                return [Activity(Kind.tool_result, summary=short(item.get("aggregated_output") or ""), ok=ok)]
            if itype == "mcp_tool_call":
                tool, server = str(item.get("tool")), str(item.get("server"))
                if started:
                    return [
                        Activity(
                            Kind.tool_call, summary=action(tool, mcp=server), tool=f"mcp__{server}__{tool}", turns=1
                        )
                    ]
                return [
                    Activity(Kind.tool_result, summary=short(str(item.get("error") or "")), ok=not item.get("error"))
                ]
            if itype == "file_change":
                paths = ", ".join(str(c.get("path")) for c in item.get("changes") or [])
                if started:
                    return [Activity(Kind.tool_call, summary=short(f"editing {paths}"), tool="apply_patch", turns=1)]
                return [Activity(Kind.tool_result, ok=item.get("status") == "completed")]
            if itype == "agent_message" and not started:
                return [Activity(Kind.turn, summary=short(item.get("text") or ""), turns=1)]
            return []  # reasoning, warnings (type "error"), items of later versions
        if kind == "turn.completed":
            usage = event.get("usage") or {}
            return [
                Activity(
                    Kind.usage,
                    input_tokens=int(self.increment("input", usage.get("input_tokens"))),
                    output_tokens=int(self.increment("output", usage.get("output_tokens"))),
                    cached_tokens=int(self.increment("cached", usage.get("cached_input_tokens"))),
                )
            ]
        if kind == "turn.failed":
            return [Activity(Kind.error, summary=short((event.get("error") or {}).get("message") or "turn failed"))]
        if kind == "error":
            return [Activity(Kind.error, summary=short(event.get("message") or "error"))]
        return None
