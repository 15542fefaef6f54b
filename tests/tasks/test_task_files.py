"""Declared files: confined to the project, and conservative overlap between paths, directories and globs."""

from __future__ import annotations

import pytest

from maestro_mcp.errors import InvalidArgument
from maestro_mcp.files import any_overlap, normalize, overlaps


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("src/app.py", "src/app.py"),
        ("./src/app.py", "src/app.py"),
        ("src//lib/../app.py", "src/app.py"),
        ("src\\win\\app.py", "src/win/app.py"),
        ("  docs/  ", "docs/"),
        ("src/", "src/"),
        (".", "**"),
        ("src/**/*.py", "src/**/*.py"),
    ],
)
def test_declared_files_are_normalised_to_project_relative_posix_paths(given: str, normal: str) -> None:
    assert normalize(given) == normal


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("/etc/passwd", "absolute path"),
        ("C:\\Windows\\x.dll", "absolute path"),
        ("\\\\server\\share", "absolute path"),
        ("../other/app.py", "outside the project"),
        ("src/../../app.py", "outside the project"),
        ("..", "outside the project"),
        ("   ", "empty"),
    ],
)
def test_absolute_paths_and_escapes_from_the_project_are_refused(given: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        normalize(given)
    assert says in str(info.value)
    assert info.value.hint  # it also says what to do instead


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("src/app.py", "src/app.py"),
        ("src/", "src/app.py"),
        ("src", "src/lib/deep/app.py"),
        ("**", "anything/at/all.txt"),
        ("src/*.py", "src/app.py"),
        ("src/**/*.py", "src/lib/app.py"),
        ("**/*.py", "src/app.py"),
        ("src/lib/*.py", "src/"),
        ("src/**", "src/lib/*.py"),
        ("src/*.py", "src/*.md"),  # conservative: same directory, could touch the same file
        ("docs/[ab].md", "docs/a.md"),
    ],
)
def test_declarations_that_may_touch_the_same_file_overlap(a: str, b: str) -> None:
    assert overlaps(a, b)
    assert overlaps(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("src/app.py", "src/api.py"),
        ("src/app.py", "src/app.pyc"),
        ("src", "srcx/app.py"),
        ("src/", "tests/test_app.py"),
        ("src/*.py", "docs/index.md"),
        ("src/**/*.py", "tests/*.py"),
        ("src/lib/*.py", "src/other/app.py"),
    ],
)
def test_declarations_of_different_files_do_not_overlap(a: str, b: str) -> None:
    assert not overlaps(a, b)
    assert not overlaps(b, a)


def test_any_overlap_names_every_clashing_pair() -> None:
    mine = ["src/db/", "docs/db.md"]
    theirs = ["src/db/models.py", "src/api.py", "docs/*.md"]
    assert any_overlap(mine, theirs) == [("src/db/", "src/db/models.py"), ("docs/db.md", "docs/*.md")]
    assert any_overlap([], theirs) == []
    assert any_overlap(mine, []) == []
