"""Gemini CLI: server and hooks in the workspace's `.gemini/settings.json`, written so that the file stays
portable; the manifest in front of the prompt; the project policy as a Gemini policy file.

Gemini reads MCP servers and hooks only from its settings layers, and the only per-invocation layers
(GEMINI_CLI_SYSTEM_*_PATH) are honoured only for files that root owns. So maestro merges its entries into
the workspace's file, written with environment references that Gemini expands when it loads the file
(`${MAESTRO_SERVE:-maestro}`, `${MAESTRO_HOOK_COMMAND:-true}`): no machine path is written, a teammate's
own `gemini` starts `maestro serve` from PATH, and the hooks do nothing outside a session maestro
started. `maestro init` writes the same entries.

Gemini strips any variable named like a secret (KEY, TOKEN, …) from an MCP server's environment unless
the server entry names it, so the entry names the session's and every CLI's credentials. In `-p` mode
Gemini does not even offer a tool its policy would ask about; the policy file maestro passes allows the
shell and edit tools, and a BeforeTool hook puts each call the project policy does not decide to the team.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from maestro_mcp.activity import Activity, Kind, Parser, action, short
from maestro_mcp.policy import MAX_APPROVAL_TIMEOUT_S, NETWORK_COMMANDS, Decision, RuleSet, ToolCall, Verdict

from .base import (
    HOOK_GRACE_S,
    HOOK_SCRIPT,
    Adapter,
    ConfigState,
    FileWrite,
    HookKind,
    HookReply,
    LaunchRequest,
    Wiring,
    passed_to_server,
    permission_wait_s,
    serve_binary,
    toml_value,
)
from .claude import read_json_entry

READ_TOOLS = {"read_file", "read_many_files", "list_directory", "glob", "grep_search", "search_file_content"}
EDIT_TOOLS = ("write_file", "replace")
NETWORK_TOOLS = ("web_fetch", "google_web_search")
# What the BeforeTool gate sees: the tools Gemini would ask about, and other MCP servers' tools.
GATED = r"^(run_shell_command|write_file|replace|web_fetch|google_web_search)$|^mcp_(?!maestro_)"
# The hook's own bound is the policy's approval timeout (it answers "deny" then); Gemini's outer one only
# catches a hook that hangs, and when it fires Gemini runs the tool: keep it above any approval timeout.
GATE_TIMEOUT_MS = int((MAX_APPROVAL_TIMEOUT_S + 10 + HOOK_GRACE_S) * 1000)


def _hook(event: str, wait: str, timeout_ms: int) -> dict[str, Any]:
    command = f"${{MAESTRO_HOOK_COMMAND:-true}} gemini {event} {wait}"
    return {"type": "command", "name": f"maestro-{event}", "command": command, "timeout": timeout_ms}


class GeminiAdapter(Adapter):
    kind = "gemini"
    resumable = True
    names_conversations = True
    credentials = (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GEMINI_MODEL",
    )
    scratch_tools = ("write_todos", "tracker_create_task", "tracker_update_task", "tracker_list_tasks")
    tool_prefix = "mcp_maestro_"
    project_files = (".gemini/settings.json",)

    def settings(self, env: Mapping[str, str], serve: str = "maestro") -> dict[str, Any]:
        """maestro's entries of a `.gemini/settings.json`: the same for every session, naming of the machine
        only variable names (and `serve`, the `maestro` command for an agent started by hand)."""
        server = {
            "command": f"${{MAESTRO_SERVE:-{serve}}}",
            "args": ["serve"],
            # Explicit entries are expanded from Gemini's own environment (`:-`: unset gives "").
            "env": {var: f"${{{var}:-}}" for var in passed_to_server(env)},
            "trust": True,
            "timeout": self.definition.tool_timeout_s * 1000,
        }
        hooks = {
            "AfterTool": [{"matcher": ".*", "hooks": [_hook("AfterTool", "5", 10_000)]}],
            "AfterAgent": [{"hooks": [_hook("AfterAgent", "5", 10_000)]}],
            "BeforeTool": [
                {"matcher": GATED, "hooks": [_hook("BeforeTool", "${MAESTRO_PERMISSION_WAIT_S:-1}", GATE_TIMEOUT_MS)]}
            ],
        }
        return {"mcpServers": {"maestro": server}, "hooks": hooks}

    def wire(self, req: LaunchRequest, maestro_dir: Path) -> Wiring:
        path = Path(req.workspace) / ".gemini" / "settings.json"
        content = json.dumps(self.settings(req.base_env), indent=2) + "\n"
        wiring = Wiring(values={"mcp_config": str(path)}, files=[FileWrite(str(path), content, merge_json=True)])
        wiring.env["MAESTRO_SERVE"] = serve_binary(req.python)
        if req.hook_socket:
            wiring.env["MAESTRO_HOOK_COMMAND"] = shlex.join([req.python, "-S", HOOK_SCRIPT])
        if req.rules is not None:
            policy = maestro_dir / "mcp" / f"{req.name}.policy.toml"
            wiring.files.append(FileWrite(str(policy), native_policy(req.rules, Path(req.workspace))))
            wiring.lists["permission_args"] = ["--policy", str(policy)]
            if req.mode == "headless":
                # Only an unattended agent's permission hooks go to the team; a human answers the others.
                wiring.env["MAESTRO_PERMISSION_WAIT_S"] = f"{permission_wait_s(req):g}"
                wiring.env["MAESTRO_PERMISSIONS"] = self.kind
        if req.mode == "headless":
            wiring.lists["output_args"] = ["-o", "stream-json"]
        return wiring

    # -- hooks ----------------------------------------------------------------
    def hook_kind(self, event: str) -> HookKind:
        return {"AfterTool": "deliver", "BeforeTool": "permission", "AfterAgent": "stop"}.get(event, "")  # type: ignore[return-value]

    def can_deliver(self, event: str, payload: dict[str, Any]) -> bool:
        # Gemini drops a hook's context when the tool itself failed: delivered mail would be lost.
        response = payload.get("tool_response")
        return not (isinstance(response, dict) and response.get("error"))

    def tool_call(self, payload: dict[str, Any]) -> ToolCall | None:
        name = str(payload.get("tool_name") or "")
        raw = payload.get("tool_input")
        args: dict[str, Any] = raw if isinstance(raw, dict) else {}
        context = payload.get("mcp_context")
        if isinstance(context, dict) or name.startswith("mcp_"):
            server = str(context.get("server_name") or "") if isinstance(context, dict) else name.split("_")[1]
            return ToolCall("maestro" if server == "maestro" else "mcp", name, server=server)
        if name == "run_shell_command":
            return ToolCall("run", name, command=str(args.get("command") or ""))
        path = args.get("file_path") or args.get("absolute_path") or args.get("path")
        paths = (str(path),) if path else ()
        if name in READ_TOOLS:
            return ToolCall("read", name, paths=paths)
        if name in EDIT_TOOLS:
            return ToolCall("edit", name, paths=paths)
        if name in NETWORK_TOOLS:
            return ToolCall("network", name)
        return None

    def context_reply(self, event: str, text: str) -> HookReply:
        if event == "AfterAgent":
            return HookReply(stdout=json.dumps({"decision": "deny", "reason": text}))
        return HookReply(stdout=json.dumps({"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}))

    def decision_reply(self, event: str, verdict: Verdict) -> HookReply:
        if verdict.decision is Decision.allow:
            return HookReply(stdout="{}")
        return HookReply(stdout=json.dumps({"decision": "deny", "reason": f"maestro: {verdict.reason}"}))

    def resume_args(self, req: LaunchRequest) -> list[str]:
        return self.session_id_args(req)

    def output_parser(self) -> Parser:
        return GeminiStream()

    # -- the project's own config ----------------------------------------------
    def project_config(self, root: Path, command: Sequence[str]) -> list[FileWrite]:
        # `maestro serve` when maestro is on PATH (portable); else this install's own `maestro` command.
        serve = command[0] if Path(command[0]).name == "maestro" else serve_binary(command[0])
        content = json.dumps(self.settings(os.environ, serve), indent=2) + "\n"
        return [FileWrite(str(root / ".gemini" / "settings.json"), content, merge_json=True)]

    def read_project_config(self, root: Path) -> ConfigState:
        return read_json_entry(root / ".gemini" / "settings.json", "mcpServers")


def native_policy(rules: RuleSet, workspace: Path) -> str:
    """The project policy as a Gemini policy file: its hard denials, and allow rules for the tools the
    BeforeTool hook governs (in `-p` Gemini offers no tool whose rule would be to ask)."""
    entries: list[dict[str, Any]] = []

    def deny(tool: str, why: str, prefix: str = "") -> None:
        entry: dict[str, Any] = {"toolName": tool}
        if prefix:
            entry["commandPrefix"] = prefix
        entries.append({**entry, "decision": "deny", "priority": 900, "denyMessage": f"maestro policy: {why}"})

    entries.append({"toolName": "run_shell_command", "decision": "allow", "priority": 100})
    entries.append({"toolName": "write_todos", "decision": "allow", "priority": 100})
    edit = rules.decide(ToolCall("edit", "write_file", paths=("x",)), workspace)
    for tool in EDIT_TOOLS:
        if edit.decision is Decision.deny:
            deny(tool, edit.reason)
        else:
            entries.append({"toolName": tool, "decision": "allow", "priority": 100})
    network = rules.decide(ToolCall("network", "web_fetch"), workspace)
    for tool in NETWORK_TOOLS:
        if network.decision is Decision.deny:
            deny(tool, network.reason)
    prefixes = [" ".join(r.arg) for r in rules.deny if r.kind == "run" and r.arg]
    if any(r.kind == "network" for r in rules.deny):
        prefixes += NETWORK_COMMANDS
    for prefix in dict.fromkeys(prefixes):
        verdict = rules.decide(ToolCall("run", "run_shell_command", command=prefix), workspace)
        if verdict.decision is Decision.deny:
            deny("run_shell_command", verdict.reason, prefix)
    lines = ["# Written by maestro from the project policy for one worker; regenerated at every launch."]
    for entry in entries:
        lines += ["", "[[rule]]", *(f"{key} = {toml_value(value)}" for key, value in entry.items())]
    return "\n".join(lines) + "\n"


class GeminiStream(Parser):
    """`gemini -p -o stream-json`: init, message (assistant text in chunks), tool_use, tool_result, error,
    result. Token totals come only in `result` (sums over the run); Gemini reports no cost."""

    def __init__(self) -> None:
        super().__init__()
        self._talking = False

    def parse(self, event: dict[str, Any]) -> list[Activity] | None:
        kind = event.get("type")
        talking, self._talking = self._talking, False
        if kind == "init":
            return [Activity(Kind.start, model=str(event.get("model") or ""), conversation_id=str(event["session_id"]))]
        if kind == "message":
            if event.get("role") != "assistant":
                return []
            self._talking = True
            return [] if talking else [Activity(Kind.turn, summary=short(event.get("content") or ""), turns=1)]
        if kind == "tool_use":
            name, args = str(event.get("tool_name")), event.get("parameters") or {}
            summary = action(
                name,
                command=str(args.get("command") or ""),
                path=str(args.get("file_path") or args.get("absolute_path") or args.get("path") or ""),
                mcp=name.split("_")[1] if name.startswith("mcp_") and name.count("_") >= 2 else "",
            )
            return [Activity(Kind.tool_call, summary=summary, tool=name, turns=1)]
        if kind == "tool_result":
            error = event.get("error") or {}
            text = error.get("message") if isinstance(error, dict) and error else event.get("output") or ""
            return [Activity(Kind.tool_result, summary=short(str(text)), ok=event.get("status") == "success")]
        if kind == "error":
            return (
                [Activity(Kind.error, summary=short(event.get("message") or ""))]
                if event.get("severity") == "error"
                else []
            )
        if kind == "result":
            stats = event.get("stats") or {}
            found = [
                Activity(
                    Kind.usage,
                    input_tokens=int(self.increment("input", stats.get("input_tokens"))),
                    output_tokens=int(self.increment("output", stats.get("output_tokens"))),
                    cached_tokens=int(self.increment("cached", stats.get("cached"))),
                )
            ]
            if event.get("status") == "error":
                found.append(Activity(Kind.error, summary=short((event.get("error") or {}).get("message") or "error")))
            return found
        return None
