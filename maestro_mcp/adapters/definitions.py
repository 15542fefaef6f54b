"""Launcher definitions: the data half of an adapter, one TOML file per agent CLI.

The built-in definitions live in the top-level `launchers/` folder of the source tree and ship
inside the wheel as `maestro_mcp/launchers/`. A project adds or overrides its own in
`.maestro/launchers/NAME.toml`; `adapter = "claude"` (or codex, gemini, script) says which
adapter's code drives it. Each file is validated with pydantic, and an error names the file and
the field.
"""

from __future__ import annotations

import string
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maestro_mcp.errors import InvalidArgument, NotFound

AdapterName = Literal["claude", "codex", "gemini", "script"]

# Placeholders substituted inside one argument.
VALUES = {
    "binary",
    "prompt",
    "manifest",
    "manifest_file",
    "manifest_toml",
    "mcp_config",
    "model",
    "workspace",
    "tool_timeout_s",
    "tool_timeout_ms",
    "script",
    "python",
}
# Placeholders that stand alone as an argument and expand to zero or more arguments, filled by the adapter.
LISTS = {"model_args", "delivery_args", "permission_args", "output_args", "resume_args", "limit_args"}
PLACEHOLDERS = VALUES | LISTS


class Mode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, description="Argument list template; never a shell string.")
    prompt_with_manifest: bool = Field(
        default=False, description="Put the manifest in front of the prompt (CLIs without a system-prompt flag)."
    )


class LauncherDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    adapter: AdapterName = Field(description="Whose code renders config, delivery and permissions for this CLI.")
    binary: str = Field(description="Executable looked up on PATH (or `{python}` for scripts).")
    install: str = Field(default="", description="How a user installs the CLI, for error messages.")
    manifest_via: Literal["system-prompt", "prompt", "developer-instructions", "file"]
    tool_timeout_s: int = Field(default=3600, ge=60, description="MCP tool-call timeout, so mail_wait is not cut.")
    prompt: str = Field(description="The first user turn of a worker.")
    coordinator_prompt: str = Field(default="", description="The first user turn of a coordinator.")
    headless: Mode
    interactive: Mode | None = None
    model_args: list[str] = Field(default_factory=list, description="Inserted at {model_args} when a model is set.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for the CLI.")
    source: str = Field(default="", exclude=True)

    def prompt_for(self, coordinator: bool) -> str:
        return (self.coordinator_prompt or self.prompt) if coordinator else self.prompt


def builtin_dir() -> Path:
    """The shipped definitions: inside the installed package, or the source tree's `launchers/`."""
    packaged = Path(str(resources.files("maestro_mcp") / "launchers"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "launchers"


def _load_file(path: Path) -> LauncherDef:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(f"Launcher definition {path} is not valid TOML: {exc}.") from exc
    data.setdefault("name", path.stem)
    if "adapter" not in data and path.stem in ("claude", "codex", "gemini", "script"):
        data["adapter"] = path.stem  # a project's own claude.toml is driven by the claude adapter
    try:
        definition = LauncherDef.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidArgument(f"Launcher definition {path}: field `{field}`: {first['msg']}.") from exc
    for mode in (definition.headless, definition.interactive):
        for arg in mode.argv if mode else []:
            _check_placeholders(path, arg)
    definition.source = str(path)
    return definition


def _check_placeholders(path: Path, arg: str) -> None:
    for _, field, _, _ in string.Formatter().parse(arg):
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            raise InvalidArgument(
                f"Launcher definition {path}: unknown placeholder {{{field}}} in argv.",
                f"Known placeholders: {', '.join(sorted(PLACEHOLDERS))}.",
            )
        if field in LISTS and arg != f"{{{field}}}":
            raise InvalidArgument(
                f"Launcher definition {path}: {{{field}}} must be an argument of its own, not part of {arg!r}."
            )


def definition_dirs(project_root: Path | None) -> list[Path]:
    dirs = [builtin_dir()]
    if project_root is not None:
        dirs.append(project_root / ".maestro" / "launchers")
    return dirs


def available(project_root: Path | None) -> dict[str, Path]:
    """name -> definition file; a project's own definitions override the built-in ones."""
    found: dict[str, Path] = {}
    for directory in definition_dirs(project_root):
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                found[path.stem] = path
    return found


def load(name: str, project_root: Path | None) -> LauncherDef:
    files = available(project_root)
    if name not in files:
        raise NotFound(
            f"No launcher for agent {name!r}.",
            f"Use one of: {', '.join(sorted(files))}, or add .maestro/launchers/{name}.toml.",
        )
    return _load_file(files[name])
