"""Generated files are current, and the README's links into docs/ lead somewhere."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from human_support import maestro

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_generated_docs_are_current() -> None:
    result = maestro("docs", "--check", "--out", str(REPO / "docs"))
    assert result.code == 0, f"{result.err.strip()}\nRegenerate docs/tools.md and docs/cli.md with `maestro docs`."


def test_tool_schemas_are_current() -> None:
    result = maestro("schemas", "--check", "--out", str(REPO / "tool_schemas"))
    assert result.code == 0, f"{result.err.strip()}\nRegenerate tool_schemas/ with `maestro schemas`."


@pytest.mark.parametrize(
    ("command", "directory", "victim"), [("docs", "docs", "cli.md"), ("schemas", "tool_schemas", None)]
)
def test_a_stale_generated_file_fails_the_check_and_names_the_command_that_fixes_it(
    tmp_path: Path, command: str, directory: str, victim: str | None
) -> None:
    copy = tmp_path / directory
    shutil.copytree(REPO / directory, copy)
    target = copy / victim if victim else sorted(copy.glob("*.json"))[0]
    target.write_text(target.read_text() + "\n")

    result = maestro(command, "--check", "--out", str(copy))

    assert result.code != 0
    assert target.name in result.err
    assert f"Run `maestro {command}`" in result.err
    assert maestro(command, "--out", str(copy)).code == 0
    assert maestro(command, "--check", "--out", str(copy)).code == 0


def local_links(page: Path) -> list[str]:
    return [link for link in LINK.findall(page.read_text(encoding="utf-8")) if "://" not in link]


def test_every_readme_link_into_docs_points_at_a_file() -> None:
    links = [link for link in local_links(REPO / "README.md") if link.startswith("docs/")]
    assert links, "the README links to no page under docs/"
    missing = [link for link in links if not (REPO / link).is_file()]
    assert not missing, f"README links to missing files: {missing}"


@pytest.mark.parametrize("page", sorted((REPO / "docs").rglob("*.md")), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_between_docs_pages_resolve(page: Path) -> None:
    missing = [link for link in local_links(page) if not (page.parent / link).exists()]
    assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"
