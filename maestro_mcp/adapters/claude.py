"""Claude Code: config through `--mcp-config FILE --strict-mcp-config`, the manifest as an appended
system prompt, and its whole environment passed to the server."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from maestro_mcp.activity import Activity, Kind, Parser, action, short
from maestro_mcp.policy import NETWORK_COMMANDS, Decision, RuleSet, ToolCall, Verdict

from .base import (
    Adapter,
    ConfigState,
    FileWrite,
    HookKind,
    HookReply,
    LaunchRequest,
    PushChannel,
    ServerEntry,
    Wiring,
    server_command,
)

PROMPT_TOOL = "mcp__maestro__permission_prompt"
READ_TOOLS = {"Read": "file_path", "Glob": "path", "Grep": "path", "LS": "path", "NotebookRead": "notebook_path"}
EDIT_TOOLS = {"Edit": "file_path", "MultiEdit": "file_path", "Write": "file_path", "NotebookEdit": "notebook_path"}
NETWORK_TOOLS = ("WebFetch", "WebSearch")


def hook_tool_call(payload: dict[str, Any]) -> ToolCall | None:
    """The tool call in a Claude Code hook payload (`tool_name`, `tool_input`), in the policy's terms."""
    name = str(payload.get("tool_name") or "")
    raw = payload.get("tool_input")
    args: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if name.startswith("mcp__"):
        server = name.split("__")[1] if name.count("__") >= 2 else ""
        return ToolCall("maestro" if server == "maestro" else "mcp", name, server=server)
    if name == "Bash":
        return ToolCall("run", name, command=str(args.get("command") or ""))
    if name in READ_TOOLS or name in EDIT_TOOLS:
        key = READ_TOOLS.get(name) or EDIT_TOOLS[name]
        path = args.get(key)
        return ToolCall("read" if name in READ_TOOLS else "edit", name, paths=(str(path),) if path else ())
    if name in NETWORK_TOOLS:
        return ToolCall("network", name)
    return None  # Claude's own bookkeeping tools (TodoWrite, Task, …): it never asks about those


class ClaudeAdapter(Adapter):
    kind = "claude"
    resumable = True
    names_conversations = True
    native_turns = True
    credentials = (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_MODEL",
        "ANTHROPIC_CUSTOM_HEADERS",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "CLAUDE_CONFIG_DIR",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
        "ANTHROPIC_VERTEX_PROJECT_ID",
        "CLOUD_ML_REGION",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    )
    scratch_tools = ("TodoWrite", "TaskCreate", "TaskUpdate", "TaskList", "TaskGet", "Task", "Agent", "SendMessage")
    tool_prefix = "mcp__maestro__"
    project_files = (".mcp.json", ".claude/settings.local.json")
    prompt_tool = True

    def wire(self, req: LaunchRequest, maestro_dir: Path) -> Wiring:
        # Claude passes its whole environment to the server, MAESTRO_SESSION and MAESTRO_TOKEN included.
        command, *args = server_command(req.python)
        path = maestro_dir / "mcp" / f"{req.name}.claude.json"
        entry = {"type": "stdio", "command": command, "args": args, "timeout": self.definition.tool_timeout_s * 1000}
        config = {"mcpServers": {"maestro": entry}}
        wiring = Wiring(
            values={"mcp_config": str(path)}, files=[FileWrite(str(path), json.dumps(config, indent=2) + "\n")]
        )
        allowed, denied = native_rules(req.rules, Path(req.workspace)) if req.rules else (["mcp__maestro"], [])
        permission = ["--allowedTools", *allowed] + (["--disallowedTools", *denied] if denied else [])
        if req.rules is not None and req.mode == "headless":
            # What the rules leave open goes to maestro instead of being denied: the CLI asks this tool of
            # the worker's own server (hidden from the model), which asks the team.
            permission += ["--permission-prompt-tool", PROMPT_TOOL]
            wiring.env["MAESTRO_PERMISSIONS"] = self.kind
        wiring.lists["permission_args"] = permission
        if req.mode == "headless":
            wiring.lists["output_args"] = ["--output-format", "stream-json", "--verbose"]
        # Live delivery needs nothing here: the worker's server writes urgent mail to the session's own
        # messaging socket, which Claude gives its MCP servers (CLAUDE_CODE_MESSAGING_SOCKET).
        return wiring

    # -- hooks ----------------------------------------------------------------
    def hook_kind(self, event: str) -> HookKind:
        return {"PostToolUse": "deliver", "PreToolUse": "permission"}.get(event, "")  # type: ignore[return-value]

    def tool_call(self, payload: dict[str, Any]) -> ToolCall | None:
        return hook_tool_call(payload)

    def context_reply(self, event: str, text: str) -> HookReply:
        output = {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}
        return HookReply(stdout=json.dumps(output))

    def decision_reply(self, event: str, verdict: Verdict) -> HookReply:
        decision = "allow" if verdict.decision is Decision.allow else "deny"
        output = {
            "hookSpecificOutput": {
                "hookEventName": event,
                "permissionDecision": decision,
                "permissionDecisionReason": f"maestro: {verdict.reason}",
            }
        }
        return HookReply(stdout=json.dumps(output))

    def resume_args(self, req: LaunchRequest) -> list[str]:
        return self.session_id_args(req)

    def limit_args(self, req: LaunchRequest) -> list[str]:
        args = ["--max-budget-usd", f"{req.budget_usd:g}"] if req.budget_usd is not None else []
        return args + (["--max-turns", str(req.max_turns)] if req.max_turns is not None else [])

    def output_parser(self) -> Parser:
        return ClaudeStream()

    def push_channel(self, env: Mapping[str, str]) -> PushChannel | None:
        path = env.get("CLAUDE_CODE_MESSAGING_SOCKET", "")
        return MessagingSocket(path, env.get("CLAUDE_CODE_MESSAGING_TOKEN", "")) if path else None

    def project_config(self, root: Path, command: Sequence[str]) -> list[FileWrite]:
        first, *args = command
        entry = {"type": "stdio", "command": first, "args": args, "timeout": self.definition.tool_timeout_s * 1000}
        return [
            FileWrite(str(root / ".mcp.json"), json.dumps({"mcpServers": {"maestro": entry}}, indent=2) + "\n", True),
            # Approves the project server for Claude Code (it still asks once to trust the folder).
            FileWrite(
                str(root / ".claude" / "settings.local.json"),
                json.dumps({"enabledMcpjsonServers": ["maestro"]}, indent=2) + "\n",
                True,
            ),
        ]

    def read_project_config(self, root: Path) -> ConfigState:
        return read_json_entry(root / ".mcp.json", "mcpServers")


def read_json_entry(path: Path, table: str) -> ConfigState:
    """The `maestro` entry of a JSON config's server table (Claude's .mcp.json, Gemini's settings.json)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ConfigState(str(path), problem="no project MCP config")
    except (OSError, ValueError) as exc:
        return ConfigState(str(path), problem=f"invalid: {exc}")
    entry = data.get(table, {}).get("maestro") if isinstance(data, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return ConfigState(str(path), problem="does not name the maestro server")
    args = [str(a) for a in entry.get("args") or []]
    env = {str(k): str(v) for k, v in (entry.get("env") or {}).items()}
    return ConfigState(str(path), ServerEntry(entry["command"], args, env))


def native_rules(rules: RuleSet, workspace: Path) -> tuple[list[str], list[str]]:
    """The policy as Claude's own --allowedTools / --disallowedTools: what is decided there never prompts.

    Only what the policy decides for every call of a kind is translated; a rule with conditions maestro
    checks itself (paths inside the workspace, chained commands) stays with the permission prompt tool."""
    allowed = ["mcp__maestro"]
    denied: list[str] = []

    def run(prefix: str) -> Decision:
        return rules.decide(ToolCall("run", "Bash", command=prefix), workspace).decision

    if rules.allows("read"):
        allowed += ["Read", "Glob", "Grep", "LS", "NotebookRead"]
    if rules.allows("edit"):
        allowed += list(EDIT_TOOLS)
    elif any(r.kind == "edit" for r in rules.deny):
        denied += list(EDIT_TOOLS)
    if rules.decide(ToolCall("network", "WebFetch"), workspace).decision is Decision.deny:
        denied += list(NETWORK_TOOLS)
    for rule in rules.allow:
        if rule.kind == "run" and rule.arg and run(" ".join(rule.arg)) is Decision.allow:
            allowed.append(f"Bash({' '.join(rule.arg)}:*)")
        elif rule.kind == "tool":
            allowed.append(rule.arg[0])
    prefixes = [" ".join(r.arg) for r in rules.deny if r.kind == "run" and r.arg]
    if any(r.kind == "network" for r in rules.deny):
        prefixes += NETWORK_COMMANDS
    for prefix in dict.fromkeys(prefixes):
        if run(prefix) is Decision.deny:
            denied.append(f"Bash({prefix}:*)")
    denied += [r.arg[0] for r in rules.deny if r.kind == "tool"]
    return list(dict.fromkeys(allowed)), list(dict.fromkeys(denied))


class MessagingSocket:
    """Claude Code's per-session messaging socket (seen in 2.1.330, also in `-p` mode): a line
    `{"type": "user", "message": …}` from a process of the same user is queued as the session's next
    input, so it reaches a busy agent at its next model request and makes one that was finishing take
    one more turn. Claude hands the socket and its token to its MCP servers in their environment."""

    def __init__(self, path: str, token: str) -> None:
        self.path = path
        self.token = token

    async def send(self, text: str) -> None:
        lines: list[dict[str, Any]] = [{"type": "auth", "token": self.token}] if self.token else []
        lines.append({"type": "user", "message": {"role": "user", "content": text}})
        payload = "".join(json.dumps(line) + "\n" for line in lines).encode()
        with anyio.fail_after(5):
            async with await anyio.connect_unix(self.path) as stream:
                await stream.send(payload)


LIMITS = {"error_max_budget_usd": "budget (--max-budget-usd)", "error_max_turns": "turn limit (--max-turns)"}


class ClaudeStream(Parser):
    """`claude -p --output-format stream-json --verbose`: init, assistant and user messages, result.

    Claude reports each message's usage as a start-of-message snapshot (do not add those up) and the
    run's totals, with the dollar cost it computes from its price list, in each `result` event (there
    may be several: mail pushed into a finishing session starts another turn)."""

    def __init__(self) -> None:
        super().__init__()
        self._messages: set[str] = set()

    def parse(self, event: dict[str, Any]) -> list[Activity] | None:
        kind = event.get("type")
        if kind == "system":
            if event.get("subtype") == "init":
                return [Activity(Kind.start, model=str(event.get("model") or ""), conversation_id=event["session_id"])]
            return []
        if kind == "assistant":
            message = event["message"]
            new = message.get("id") not in self._messages
            self._messages.add(message.get("id"))
            found = []
            for block in message.get("content") or []:
                if block.get("type") == "tool_use":
                    name, args = str(block.get("name")), block.get("input") or {}
                    summary = action(
                        name,
                        command=str(args.get("command") or ""),
                        path=str(args.get("file_path") or args.get("path") or args.get("notebook_path") or ""),
                        mcp=name.split("__")[1] if name.startswith("mcp__") and name.count("__") >= 2 else "",
                    )
                    found.append(Activity(Kind.tool_call, summary=summary, tool=name, turns=int(new)))
                elif block.get("type") == "text" and str(block.get("text") or "").strip():
                    found.append(Activity(Kind.turn, summary=short(block["text"]), turns=int(new)))
                new = False
            return found
        if kind == "user":
            found = []
            for block in (event.get("message") or {}).get("content") or []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    content = block.get("content")
                    text = (
                        content
                        if isinstance(content, str)
                        else " ".join(str(c.get("text", "")) for c in content or [] if isinstance(c, dict))
                    )
                    found.append(Activity(Kind.tool_result, summary=short(text), ok=not block.get("is_error")))
            return found
        if kind == "result":
            usage = event.get("usage") or {}
            cost = self.increment("cost", event.get("total_cost_usd"))
            found = [
                Activity(
                    Kind.usage,
                    input_tokens=int(self.increment("input", usage.get("input_tokens"))),
                    output_tokens=int(self.increment("output", usage.get("output_tokens"))),
                    cached_tokens=int(self.increment("cached", usage.get("cache_read_input_tokens"))),
                    cost_usd=cost if event.get("total_cost_usd") is not None else None,
                )
            ]
            subtype = str(event.get("subtype", ""))
            if event.get("is_error") or subtype.startswith("error"):
                errors = "; ".join(str(e) for e in event.get("errors") or []) or subtype
                # Claude stopped itself at a limit maestro gave it (--max-budget-usd, --max-turns).
                limit = LIMITS.get(subtype, "")
                found.append(Activity(Kind.error, summary=short(errors), extra={"limit": limit} if limit else {}))
            return found
        return None
