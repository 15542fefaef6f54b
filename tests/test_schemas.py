"""The generated tool schemas in tool_schemas/ match what the server advertises."""

from __future__ import annotations

import json
from pathlib import Path

from maestro_mcp.schemas import stale_files, write

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "tool_schemas"


def test_every_foundation_tool_has_a_schema_with_its_contract_arguments() -> None:
    expected = {
        "whoami": set(),
        "list_sessions": {"role", "status"},
        "mail_send": {"to", "body", "subject", "priority", "thread_id", "reply_to", "task_id"},
        "mail_inbox": {"limit", "unread_only"},
        "mail_wait": {"timeout_s", "max_messages"},
        "mail_thread": {"thread_id"},
        "mail_ack": {"message_ids"},
    }
    for tool, arguments in expected.items():
        schema = json.loads((SCHEMAS / f"{tool}.json").read_text(encoding="utf-8"))
        assert schema["name"] == tool
        assert schema["description"], f"{tool} needs a docstring: it is what the model reads"
        assert arguments <= set(schema["inputSchema"].get("properties", {})), tool
        assert "unread" in schema["outputSchema"]["properties"], tool


def test_a_stale_or_stray_schema_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path)
    assert stale_files(tmp_path) == []
    (tmp_path / "whoami.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "no_such_tool.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "mail_ack.json").unlink()

    assert stale_files(tmp_path) == ["mail_ack.json", "no_such_tool.json", "whoami.json"]
