"""Declared files: validation (confined to the project) and overlap between paths and globs.

Overlap is conservative: when in doubt two declarations overlap, because the
cost of a false "overlap" is a skipped claim, while the cost of a missed one
is two workers editing the same file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from fnmatch import fnmatchcase

from maestro_mcp.errors import InvalidArgument

WILDCARDS = set("*?[")


def normalize(pattern: str) -> str:
    """A project-relative POSIX path or glob; refuses absolute paths and escapes from the project."""
    raw = pattern.strip().replace("\\", "/")
    if not raw:
        raise InvalidArgument("An entry of `files` is empty.", "List paths or globs relative to the project root.")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise InvalidArgument(
            f"{pattern!r} is an absolute path.", "Declare files relative to the project root, e.g. 'src/app.py'."
        )
    trailing = raw.endswith("/")
    norm = posixpath.normpath(raw)
    if norm == ".." or norm.startswith("../"):
        raise InvalidArgument(f"{pattern!r} points outside the project.", "Declare files inside the project.")
    if norm == ".":
        return "**"
    return norm + "/" if trailing else norm


def _literal_prefix(pattern: str) -> str:
    """The directory part before the first wildcard: 'src/lib/*.py' -> 'src/lib'."""
    parts = []
    for part in pattern.split("/"):
        if WILDCARDS & set(part):
            break
        parts.append(part)
    return "/".join(parts)


def _under(path: str, directory: str) -> bool:
    directory = directory.rstrip("/")
    return not directory or path == directory or path.startswith(directory + "/")


def overlaps(a: str, b: str) -> bool:
    a, b = a.rstrip("/") or a, b.rstrip("/") or b
    if a == b or _under(a, b) or _under(b, a):
        return True
    a_glob, b_glob = bool(WILDCARDS & set(a)), bool(WILDCARDS & set(b))
    if a_glob and not b_glob:
        return fnmatchcase(b, a) or fnmatchcase(b, a.replace("**/", "")) or _under(b, _literal_prefix(a))
    if b_glob and not a_glob:
        return fnmatchcase(a, b) or fnmatchcase(a, b.replace("**/", "")) or _under(a, _literal_prefix(b))
    if a_glob and b_glob:
        pa, pb = _literal_prefix(a), _literal_prefix(b)
        return _under(pa, pb) or _under(pb, pa)
    return False


def any_overlap(mine: Iterable[str], theirs: Iterable[str]) -> list[tuple[str, str]]:
    """Every (mine, theirs) pair of declarations that may touch the same file."""
    theirs = list(theirs)
    return [(a, b) for a in mine for b in theirs if overlaps(a, b)]
