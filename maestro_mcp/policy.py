"""The project's permission policy: what a worker may do without asking, what it may never do, and
what goes to its team as an approval request.

`.maestro/policy.toml` (every key optional)::

    approval_timeout_s = 600     # how long a request waits for a decision; then the call is denied
    inherit = true               # start from the built-in rules (false: from nothing)

    [default]                    # every worker
    allow = ["read", "edit", "run:git status"]
    deny = ["run:git push", "network"]

    [profiles.dev]               # workers spawned with profile="dev", on top of [default]
    allow = ["run:pytest", "run:make test"]

Rules name what an agent does, whatever its CLI calls the tool:

    read          read, list and search files
    edit          write and edit files inside the workspace
    run           any shell command
    run:PREFIX    a shell command whose words start with PREFIX ("run:git push" matches "git push -f")
    network       the web (fetch, search) and commands that reach the network (curl, git push, pip install…)
    tool:NAME     one of the CLI's own tools, by the name the CLI gives it (tool:WebFetch)
    mcp:SERVER    the tools of another MCP server (maestro's own are always allowed)

The most specific matching rule decides (`run:npm install` over `network`, `run:git push` over
`run`); between equally specific rules, deny wins. What no rule decides is asked of the team.
Deleting or moving files outside the workspace is refused whatever the rules say.
"""

from __future__ import annotations

import enum
import os
import re
import shlex
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from maestro_mcp.errors import InvalidArgument

POLICY_FILE = "policy.toml"
DEFAULT_APPROVAL_TIMEOUT_S = 600.0
MAX_APPROVAL_TIMEOUT_S = 3600.0

Kind = Literal["read", "edit", "run", "network", "tool", "mcp", "maestro"]


class Decision(enum.StrEnum):
    allow = "allow"
    deny = "deny"
    ask = "ask"


@dataclass(frozen=True)
class Rule:
    """One entry of an `allow` or `deny` list, parsed."""

    text: str
    kind: Literal["read", "edit", "run", "network", "tool", "mcp"]
    arg: tuple[str, ...] = ()
    """Words of a `run:` prefix, or the one name of `tool:` / `mcp:`."""

    @property
    def specificity(self) -> int:
        """Bigger is more specific: a named tool or a command prefix beats a whole category."""
        if self.kind == "run" and self.arg:
            return 10 + len(self.arg)
        return 10 if self.kind in ("tool", "mcp") and self.arg else 1


@dataclass(frozen=True)
class ToolCall:
    """A CLI's tool call, in the policy's terms (adapters translate their CLI's tool names to this)."""

    kind: Kind
    tool: str
    """The name the CLI uses (Bash, run_shell_command, …): shown to whoever decides."""
    command: str = ""
    paths: tuple[str, ...] = ()
    server: str = ""


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    rule: str = ""
    """The rule that decided, empty when none did (then the decision is `ask`)."""


# Commands that reach the network: denied with `network` unless a more specific rule allows them.
NETWORK_COMMANDS = (
    "curl", "wget", "ssh", "scp", "sftp", "rsync", "nc", "ncat", "telnet", "ftp",
    "git push", "git pull", "git fetch", "git clone", "git ls-remote",
    "pip install", "pip download", "pip3 install", "uv pip install", "uv add", "poetry add",
    "npm install", "npm i", "npm ci", "npm publish", "npx", "yarn add", "pnpm add", "pnpm install",
    "cargo install", "go get", "go install", "gem install", "apt", "apt-get", "brew", "docker pull", "docker push",
)  # fmt: skip
# Commands that delete or move what their path arguments name: never outside the workspace.
DESTRUCTIVE = ("rm", "rmdir", "unlink", "shred", "mv", "truncate")

BUILTIN_DEFAULT = {
    "allow": [
        "read",
        "edit",
        *(
            f"run:{c}"
            for c in (
                "ls", "cat", "head", "tail", "wc", "grep", "rg", "find", "pwd", "echo", "cd", "true", "diff",
                "sort", "uniq", "file", "stat", "which", "tree",
                "git status", "git diff", "git log", "git show", "git branch", "git add", "git commit",
                "git rev-parse", "git ls-files", "git stash list",
            )
        ),
    ],
    "deny": ["network", "run:sudo", "run:su", "run:git push", "run:git reset --hard", "run:git clean"],
}  # fmt: skip
_BUILD_AND_TEST = [
    f"run:{c}"
    for c in (
        "pytest", "python -m pytest", "python3 -m pytest", "uv run pytest", "tox", "nox", "ruff", "mypy",
        "make", "npm test", "npm run test", "npm run build", "npm run lint", "pnpm test", "yarn test",
        "cargo test", "cargo build", "cargo check", "go test", "go build", "go vet", "mvn test", "gradle test",
    )
]  # fmt: skip
BUILTIN_PROFILES: dict[str, dict[str, list[str]]] = {
    "dev": {"allow": _BUILD_AND_TEST},
    "test": {"allow": _BUILD_AND_TEST},
    "review": {"allow": ["run:pytest", "run:python -m pytest", "run:make test", "run:npm test"], "deny": ["edit"]},
}

_RULE_KINDS = ("read", "edit", "run", "network", "tool", "mcp")
_SPLIT = {";", "&&", "||", "|", "&", "\n", "|&"}
_SUBSTITUTION = re.compile(r"\$\(|`|<\(|>\(")


class PolicyError(InvalidArgument):
    """A policy file that cannot be used: names the file, the line and the field."""


def parse_rule(text: Any, where: str = "") -> Rule:
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(f"{where}a rule must be a non-empty string, not {text!r}.", _RULE_HINT)
    kind, _, arg = text.strip().partition(":")
    if kind not in _RULE_KINDS:
        raise InvalidArgument(f"{where}unknown rule {text!r}.", _RULE_HINT)
    arg = arg.strip()
    if kind in ("read", "edit", "network") and arg:
        raise InvalidArgument(f"{where}{kind!r} takes no argument (got {text!r}).", _RULE_HINT)
    if kind in ("tool", "mcp") and not arg:
        raise InvalidArgument(f"{where}{kind!r} needs a name, as in '{kind}:NAME'.", _RULE_HINT)
    if kind == "run" and arg:
        try:
            words = tuple(shlex.split(arg))
        except ValueError as exc:
            raise InvalidArgument(f"{where}cannot read the command prefix {arg!r}: {exc}.", _RULE_HINT) from exc
        return Rule(text.strip(), "run", words)
    return Rule(text.strip(), kind, (arg,) if arg else ())  # type: ignore[arg-type]


_RULE_HINT = "Use read, edit, run, run:PREFIX, network, tool:NAME or mcp:SERVER."


def _words(command: str) -> list[list[str]] | None:
    """The simple commands of a shell command line, as words; None when it cannot be read safely."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return None
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in _SPLIT:
            commands.append([])
        else:
            commands[-1].append(token)
    simple = [c for c in commands if c]
    for words in simple:  # FOO=1 pytest: the command is pytest
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words.pop(0)
    return [c for c in simple if c]


def _outside(path: str, workspace: Path) -> bool:
    if not path or path.startswith("-"):
        return False
    expanded = os.path.expanduser(path)
    target = Path(expanded) if os.path.isabs(expanded) else workspace / expanded
    try:
        return not Path(os.path.normpath(target)).is_relative_to(os.path.normpath(workspace))
    except ValueError:
        return True


def _matches(rule: Rule, call: ToolCall, words: Sequence[str] | None) -> bool:
    if rule.kind == "tool":
        return call.tool == rule.arg[0]
    if rule.kind == "mcp":
        return call.kind == "mcp" and call.server == rule.arg[0]
    if rule.kind in ("read", "edit"):
        return call.kind == rule.kind
    if rule.kind == "network":
        if call.kind == "network":
            return True
        return words is not None and any(_starts(words, tuple(n.split())) for n in NETWORK_COMMANDS)
    # run / run:PREFIX
    if call.kind != "run" or words is None:
        return False
    return not rule.arg or _starts(words, rule.arg)


def _starts(words: Sequence[str], prefix: Sequence[str]) -> bool:
    return len(words) >= len(prefix) and tuple(words[: len(prefix)]) == tuple(prefix)


@dataclass(frozen=True)
class RuleSet:
    """The rules that apply to one worker: the project's, for its profile, plus those remembered."""

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    approval_timeout_s: float = DEFAULT_APPROVAL_TIMEOUT_S

    def extended(self, allow: Iterable[Rule] = (), deny: Iterable[Rule] = ()) -> RuleSet:
        return RuleSet((*self.allow, *allow), (*self.deny, *deny), self.approval_timeout_s)

    def allows(self, kind: str) -> bool:
        """True when a whole category is allowed and nothing denies any of it (for CLI-native flags)."""
        return any(r.kind == kind and not r.arg for r in self.allow) and not any(r.kind == kind for r in self.deny)

    def decide(self, call: ToolCall, workspace: Path) -> Verdict:
        if call.kind == "maestro":
            return Verdict(Decision.allow, "maestro's own tools are always allowed", "maestro")
        for path in call.paths:
            if call.kind == "edit" and _outside(path, workspace):
                return Verdict(Decision.ask, f"{path} is outside the workspace {workspace}")
        if call.kind != "run":
            return self._decide_one(call, None)
        parsed = _words(call.command)
        if parsed is None or not parsed:
            return Verdict(Decision.ask, "the command line could not be read safely")
        for words in parsed:
            if words[0] in DESTRUCTIVE and any(_outside(w, workspace) for w in words[1:]):
                return Verdict(
                    Decision.deny, f"`{' '.join(words)}` deletes or moves files outside the workspace", "workspace"
                )
        # Every simple command must be allowed for the line to be; any denied one denies it.
        verdicts = [self._decide_one(call, words) for words in parsed]
        for verdict in verdicts:
            if verdict.decision is Decision.deny:
                return verdict
        if _SUBSTITUTION.search(call.command):
            return Verdict(Decision.ask, "the command runs a substitution ($(…) or `…`), which no rule can check")
        for verdict in verdicts:
            if verdict.decision is Decision.ask:
                return verdict
        return verdicts[0]

    def _decide_one(self, call: ToolCall, words: Sequence[str] | None) -> Verdict:
        best: tuple[int, int, Rule] | None = None
        for rank, rules in ((1, self.deny), (0, self.allow)):  # deny wins a tie
            for rule in rules:
                if _matches(rule, call, words):
                    key = (rule.specificity, rank, rule)
                    if best is None or key[:2] > best[:2]:
                        best = key
        what = " ".join(words) if words is not None else call.tool
        if best is None:
            return Verdict(Decision.ask, f"no rule of the policy decides `{what}`")
        if best[1] == 1:
            return Verdict(Decision.deny, f"`{what}` is denied by the policy rule {best[2].text!r}", best[2].text)
        return Verdict(Decision.allow, f"`{what}` is allowed by the policy rule {best[2].text!r}", best[2].text)


def remembered_rule(call: ToolCall) -> str:
    """The rule that an approval with remember=True adds: the command's program (and its subcommand
    for tools such as git or npm), the CLI tool, or the MCP server."""
    if call.kind == "run":
        parsed = _words(call.command) or [[call.tool]]
        words = parsed[0]
        with_sub = {"git", "npm", "pnpm", "yarn", "cargo", "go", "make", "docker", "kubectl", "pip", "uv", "poetry"}
        keep = 2 if words[0] in with_sub and len(words) > 1 and not words[1].startswith("-") else 1
        return "run:" + shlex.join(words[:keep])
    if call.kind == "mcp":
        return f"mcp:{call.server}"
    if call.kind in ("read", "edit", "network"):
        return call.kind
    return f"tool:{call.tool}"


@dataclass
class Policy:
    """The whole policy file: rules per profile, and the approval timeout."""

    default_allow: list[Rule] = field(default_factory=list)
    default_deny: list[Rule] = field(default_factory=list)
    profiles: dict[str, tuple[list[Rule], list[Rule]]] = field(default_factory=dict)
    approval_timeout_s: float = DEFAULT_APPROVAL_TIMEOUT_S
    source: str = "built-in defaults"

    def for_profile(self, profile: str | None) -> RuleSet:
        allow, deny = list(self.default_allow), list(self.default_deny)
        if profile and profile in self.profiles:
            extra_allow, extra_deny = self.profiles[profile]
            allow += extra_allow
            deny += extra_deny
        return RuleSet(tuple(allow), tuple(deny), self.approval_timeout_s)


def builtin_policy() -> Policy:
    policy = Policy()
    _apply(policy, {"default": BUILTIN_DEFAULT, "profiles": BUILTIN_PROFILES}, "", "")
    return policy


def load_policy(project_root: Path | None) -> Policy:
    """The project's policy: `.maestro/policy.toml` on top of the built-in rules, or the built-in rules."""
    if project_root is None:
        return builtin_policy()
    path = project_root / ".maestro" / POLICY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return builtin_policy()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc}.") from exc
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{source}:{line.group(1)}" if line else source
        raise PolicyError(
            f"{where}: not valid TOML: {exc}.", "Fix the file, or delete it to use the built-in rules."
        ) from None
    known = {"approval_timeout_s", "inherit", "default", "profiles"}
    for key in data:
        if key not in known:
            raise PolicyError(
                f"{_at(text, source, [key])}: unknown field `{key}`.", f"Known fields: {', '.join(sorted(known))}."
            )
    inherit = data.get("inherit", True)
    if not isinstance(inherit, bool):
        raise PolicyError(f"{_at(text, source, ['inherit'])}: field `inherit` must be true or false.")
    policy = builtin_policy() if inherit else Policy()
    policy.source = source
    timeout = data.get("approval_timeout_s", policy.approval_timeout_s)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= MAX_APPROVAL_TIMEOUT_S:
        raise PolicyError(
            f"{_at(text, source, ['approval_timeout_s'])}: field `approval_timeout_s` must be a number of seconds"
            f" from 1 to {MAX_APPROVAL_TIMEOUT_S:.0f}, not {timeout!r}."
        )
    policy.approval_timeout_s = float(timeout)
    _apply(policy, data, text, source)
    return policy


def _apply(policy: Policy, data: dict[str, Any], text: str, source: str) -> None:
    tables: list[tuple[list[str], Any]] = []
    if "default" in data:
        tables.append((["default"], data["default"]))
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise PolicyError(f"{_at(text, source, ['profiles'])}: field `profiles` must be a table of profiles.")
    tables += [(["profiles", name], table) for name, table in profiles.items()]
    for path, table in tables:
        dotted = ".".join(path)
        if not isinstance(table, dict):
            raise PolicyError(f"{_at(text, source, path)}: `{dotted}` must be a table with `allow` and `deny`.")
        for key in table:
            if key not in ("allow", "deny"):
                raise PolicyError(
                    f"{_at(text, source, [*path, key])}: unknown field `{dotted}.{key}`.", "Use `allow` and `deny`."
                )
        parsed: dict[str, list[Rule]] = {}
        for key in ("allow", "deny"):
            entries = table.get(key, [])
            if not isinstance(entries, list):
                raise PolicyError(f"{_at(text, source, [*path, key])}: field `{dotted}.{key}` must be a list of rules.")
            rules = []
            for i, entry in enumerate(entries):
                try:
                    rules.append(parse_rule(entry))
                except InvalidArgument as exc:
                    raise PolicyError(
                        f"{_at(text, source, [*path, key])}: field `{dotted}.{key}[{i}]`: {exc.message}", exc.hint
                    ) from None
            parsed[key] = rules
        if path == ["default"]:
            policy.default_allow += parsed["allow"]
            policy.default_deny += parsed["deny"]
        else:
            allow, deny = policy.profiles.setdefault(path[1], ([], []))
            allow += parsed["allow"]
            deny += parsed["deny"]


def _at(text: str, source: str, path: Sequence[str]) -> str:
    """`source:line` of the field at `path` (a table header, or a key of its table), else `source`."""
    lines = text.splitlines()
    *table, key = path
    whole = _header(path)
    for number, line in enumerate(lines):
        if whole.match(line):
            return f"{source}:{number + 1}"
    start = 0
    if table:
        header = _header(table)
        found = next((n + 1 for n, line in enumerate(lines) if header.match(line)), None)
        if found is None:
            return source
        start = found
    pair = re.compile(r"^\s*" + _key_re(key) + r"\s*=")
    for number in range(start, len(lines)):
        if _TABLE_LINE.match(lines[number]):
            break  # the next table begins: the key is not in this one
        if pair.match(lines[number]):
            return f"{source}:{number + 1}"
    return source


_TABLE_LINE = re.compile(r"^\s*\[")


def _header(path: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(_key_re(p) for p in path) + r"\s*\]")


def _key_re(key: str) -> str:
    return r'(?:"' + re.escape(key) + r'"|' + re.escape(key) + r")"


def _shown(rule: Rule) -> str:
    if rule.kind == "run":
        return f"`{' '.join(rule.arg)}`" if rule.arg else "any command"
    return {
        "read": "read files",
        "edit": "edit files in your workspace",
        "network": "the network (web tools, curl, git push, package installs)",
        "tool": f"the {rule.arg[0] if rule.arg else ''} tool",
        "mcp": f"the tools of the {rule.arg[0] if rule.arg else ''} MCP server",
    }[rule.kind]


def describe(rules: RuleSet) -> tuple[str, str]:
    """What the rules allow and deny, in words for a manifest."""
    allowed = list(dict.fromkeys(_shown(r) for r in rules.allow))
    denied = list(dict.fromkeys(_shown(r) for r in rules.deny))
    return "; ".join(allowed) or "nothing", "; ".join(denied) or "nothing"
