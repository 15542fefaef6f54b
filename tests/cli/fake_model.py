"""A scripted fake model on 127.0.0.1: just enough of three model APIs for the real agent CLIs.

    Anthropic Messages   POST /v1/messages (SSE when "stream": true), POST /v1/messages/count_tokens
    OpenAI Responses     POST /v1/responses (SSE when "stream": true), GET /v1/models
    Gemini               POST /v1beta/models/M:streamGenerateContent?alt=sse, :generateContent,
                         :countTokens, GET /v1beta/models

The model follows a *script*: an ordered list of (tool suffix, arguments). On each request it
reads the tools offered and the tool calls already in the conversation; if the next scripted
call's tool is offered it answers with that call, else with the final text. Suffixes match
every CLI's naming (`mcp__maestro__whoami` for Claude and Codex, `mcp_maestro_whoami` for
Gemini). Anything else (telemetry, unknown paths) gets `{}`.

Every request is recorded (method, path, headers, body, the tools it offered), so a test can
check what a CLI really sent: the manifest in its system prompt, the maestro tool names.

Codex offers MCP tools in a `{"type": "namespace", "name": "mcp__maestro", "tools": [...]}`
entry and wants the call back with that `namespace`; with its default model it runs in "code
mode" instead (MCP tools deferred, one JS `exec` tool) and this model then calls
`await tools.mcp__maestro__whoami({...})` through `exec`. Gemini adds `wait_for_previous` to
every tool schema and the model sends it, as a real one does: the MCP server must ignore it.

Stdlib only. Use as a context manager: `with FakeModel(script) as fm: fm.base_url`.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

ScriptStep = tuple[str, dict[str, Any]]
SseEvent = tuple[str | None, Any]
JSON = dict[str, Any]


def name_matches(name: str, suffix: str) -> bool:
    """`mcp__maestro__whoami` and `mcp_maestro_whoami` both match the suffix `whoami`."""
    return name == suffix or name.endswith("_" + suffix)


def _join_ns(namespace: str, name: str) -> str:
    if not namespace:
        return name
    return namespace + name if namespace.endswith("_") else f"{namespace}__{name}"


@dataclass
class Request:
    """One HTTP request as received; `offered` is filled for model turns (the tools on offer)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    offered: list[str] = field(default_factory=list)
    answered_tool: str | None = None
    """The tool this turn called, or None when it answered with text (or was not a model turn)."""
    model_turn: bool = False
    at: float = field(default_factory=time.monotonic)
    """When it arrived (time.monotonic), for benchmarks."""

    def strings(self) -> list[str]:
        """Every string in the body (values and keys), decoded: what the CLI really sent, unescaped."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, str):
                found.append(node)
            elif isinstance(node, dict):
                for key, value in node.items():
                    found.append(str(key))
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.body)
        return found


class FakeModel:
    def __init__(
        self,
        script: Sequence[ScriptStep] = (),
        *,
        final_text: str = "done",
        host: str = "127.0.0.1",
        gemini_wait_for_previous: bool = True,
        scripts: Mapping[str, Sequence[ScriptStep]] | None = None,
    ) -> None:
        self.script: list[ScriptStep] = [(suffix, dict(args)) for suffix, args in script]
        self.scripts: dict[str, list[ScriptStep]] = {
            api: [(suffix, dict(args)) for suffix, args in steps] for api, steps in (scripts or {}).items()
        }
        """Per API ("anthropic", "responses", "gemini"): a script for one CLI when several share the model."""
        self.final_text = final_text
        self.gemini_wait_for_previous = gemini_wait_for_previous
        self.host = host
        self._port = 0
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._turns = threading.Condition(self._lock)
        self._holds: dict[int, threading.Event] = {}

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> int:
        model = self

        class Handler(_Handler):
            fake = model

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self._port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-model", daemon=True)
        self._thread.start()
        return self._port

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeModel:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    # -- inspection -----------------------------------------------------------
    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def model_turns(self) -> list[Request]:
        return [r for r in self.requests if r.model_turn]

    def saw(self, text: str) -> bool:
        """True if one string of some request body (a system prompt, a message, ...) contains `text`."""
        return any(text in s for r in self.requests for s in r.strings())

    def offered_tools(self) -> set[str]:
        """Every tool name offered on any model turn, namespaces joined (`mcp__maestro__whoami`)."""
        return {name for r in self.model_turns() for name in r.offered}

    def tool_calls_made(self) -> list[str]:
        return [r.answered_tool for r in self.model_turns() if r.answered_tool]

    def endpoints(self) -> list[str]:
        """Distinct `METHOD path`, in first-seen order."""
        return list(dict.fromkeys(f"{r.method} {r.path}" for r in self.requests))

    def summary(self) -> str:
        """A short account for assertion messages."""
        return f"endpoints={self.endpoints()} calls={self.tool_calls_made()} offered={sorted(self.offered_tools())}"

    # -- decisions ------------------------------------------------------------
    def decide(self, offered: Iterable[str], called: Iterable[str], api: str = "") -> tuple[str, JSON] | None:
        """(full tool name, arguments) of the next scripted call, or None for the final text."""
        script = self.scripts.get(api, self.script)
        pos = 0
        for name in called:
            if pos < len(script) and name_matches(name, script[pos][0]):
                pos += 1
        if pos >= len(script):
            return None
        suffix, args = script[pos]
        for name in offered:
            if name_matches(name, suffix):
                return name, dict(args)
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    # -- synchronising with a test --------------------------------------------
    def agent_turns(self) -> list[Request]:
        """Model turns of the agent's own loop: those that offered tools (not titles, routers, summaries)."""
        return [r for r in self.model_turns() if r.offered]

    def hold(self, turn: int) -> threading.Event:
        """Make the `turn`-th agent turn (1-based) wait for the returned event before it is answered, so a
        test can act at a known point of the agent's run; set the event to let it go (bounded: 60 s)."""
        event = threading.Event()
        with self._lock:
            self._holds[turn] = event
        return event

    def wait_turns(self, count: int, timeout: float) -> bool:
        """Block (a thread) until `count` agent turns have arrived; False on timeout."""
        with self._turns:
            return self._turns.wait_for(lambda: len(self._agent_turns_locked()) >= count, timeout)

    def _agent_turns_locked(self) -> list[Request]:
        return [r for r in self._requests if r.model_turn and r.offered]

    def _turn_taken(self, request: Request) -> None:
        """Called once a request is known to be a model turn: wakes waiters, then honours a hold."""
        with self._turns:
            number = len(self._agent_turns_locked()) if request.offered else 0
            hold = self._holds.get(number) if number else None
            self._turns.notify_all()
        if hold is not None:
            hold.wait(60)

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}{self._counter}_{uuid.uuid4().hex[:8]}"


USAGE_ANTHROPIC = {
    "input_tokens": 100,
    "output_tokens": 10,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}
USAGE_RESPONSES = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 10,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 110,
}


class _Handler(BaseHTTPRequestHandler):
    fake: ClassVar[FakeModel]
    protocol_version = "HTTP/1.1"
    server_version = "FakeModel/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reports what matters."""

    # -- plumbing -------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        return raw  # zstd (not seen with a custom Codex provider) stays raw and is recorded as text

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _sse(self, events: list[SseEvent], headers: dict[str, str] | None = None) -> None:
        out = []
        for event, data in events:
            if event:
                out.append(f"event: {event}\n")
            out.append(f"data: {json.dumps(data)}\n\n")
        self._send(200, "".join(out).encode(), "text/event-stream", {"Cache-Control": "no-cache", **(headers or {})})

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        raw = self._read_body() if self.command in ("POST", "PUT", "PATCH") else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self.fake._record(request)
        payload: JSON = body if isinstance(body, dict) else {}
        path = url.path
        try:
            if self.command == "POST" and path.endswith("/messages/count_tokens"):
                return self._json({"input_tokens": 100})
            if self.command == "POST" and path.endswith("/messages"):
                return self._anthropic(request, payload)
            if self.command == "POST" and path.endswith("/responses"):
                return self._responses(request, payload)
            gemini = re.search(r"/models/([^/:]+):(streamGenerateContent|generateContent|countTokens)$", path)
            if self.command == "POST" and gemini:
                if gemini.group(2) == "countTokens":
                    return self._json({"totalTokens": 100})
                return self._gemini(request, payload, gemini.group(1), gemini.group(2) == "streamGenerateContent")
            if self.command == "GET" and re.search(r"/models/?$", path):
                return self._json({"object": "list", "data": [], "models": []})
            return self._json({})
        except (BrokenPipeError, ConnectionResetError):
            return None

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _turn(self, request: Request, offered: list[str], called: list[str], api: str) -> tuple[str, JSON] | None:
        request.offered = offered
        request.model_turn = True
        self.fake._turn_taken(request)
        decision = self.fake.decide(offered, called, api)
        request.answered_tool = decision[0] if decision else None
        return decision

    # -- Anthropic Messages ---------------------------------------------------
    def _anthropic(self, request: Request, body: JSON) -> None:
        fake = self.fake
        offered = [t.get("name", "") for t in body.get("tools") or [] if isinstance(t, dict)]
        called = [
            block.get("name", "")
            for msg in body.get("messages") or []
            if msg.get("role") == "assistant" and isinstance(msg.get("content"), list)
            for block in msg["content"]
            if isinstance(block, dict) and block.get("type") == "tool_use"
        ]
        decision = self._turn(request, offered, called, "anthropic")
        model = body.get("model", "claude-fake")
        msg_id = fake._next_id("msg_")
        headers = {"request-id": "req_" + msg_id}
        if decision:
            block: JSON = {"type": "tool_use", "id": fake._next_id("toolu_"), "name": decision[0], "input": decision[1]}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": fake.final_text}
            stop = "end_turn"
        message: JSON = {"id": msg_id, "type": "message", "role": "assistant", "model": model, "stop_sequence": None}
        if not body.get("stream"):
            return self._json(
                {**message, "content": [block], "stop_reason": stop, "usage": USAGE_ANTHROPIC}, 200, headers
            )
        if block["type"] == "tool_use":
            start: JSON = {**block, "input": {}}
            delta: JSON = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        usage_start = {**USAGE_ANTHROPIC, "output_tokens": 1}
        events: list[SseEvent] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {**message, "content": [], "stop_reason": None, "usage": usage_start},
                },
            ),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 10},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._sse(events, headers)

    # -- OpenAI Responses (Codex) ---------------------------------------------
    @classmethod
    def _responses_tools(cls, tools: Any, namespace: str = "") -> dict[str, tuple[str, str]]:
        """full name -> (namespace, short name); namespace entries are flattened."""
        names: dict[str, tuple[str, str]] = {}
        for tool in tools or []:
            if not isinstance(tool, dict):
                continue
            name = tool.get("name") or (tool.get("function") or {}).get("name") or ""
            if tool.get("type") == "namespace" or isinstance(tool.get("tools"), list):
                names.update(cls._responses_tools(tool.get("tools"), name))
            elif name:
                names[_join_ns(namespace, name)] = (namespace, name)
        return names

    def _responses(self, request: Request, body: JSON) -> None:
        fake = self.fake
        offered_map = self._responses_tools(body.get("tools"))
        offered = list(offered_map)
        raw_items = body.get("input")
        items: list[Any] = raw_items if isinstance(raw_items, list) else []
        code_mode = any(
            short == "exec"
            for item in items
            if isinstance(item, dict) and item.get("type") == "additional_tools"
            for _, short in self._responses_tools(item.get("tools")).values()
        )
        if code_mode:
            found = re.search(r"Deferred tool namespaces:((?:\\n- [A-Za-z0-9_\-]+)+)", json.dumps(items))
            deferred = [x[2:] for x in found.group(1).split("\\n") if x.startswith("- ")] if found else []
            offered += [
                _join_ns(ns, suffix) for ns in deferred for suffix, _ in fake.scripts.get("responses", fake.script)
            ]
        called: list[str] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "function_call":
                called.append(_join_ns(item.get("namespace") or "", item.get("name", "")))
            if item.get("type") == "custom_tool_call" and item.get("name") == "exec":
                called += re.findall(r"tools\.([A-Za-z0-9_]+)\(", str(item.get("input", "")))
        decision = self._turn(request, offered, called, "responses")
        if decision and decision[0] not in offered_map:  # code mode: call through the JS `exec` tool
            output: JSON = {
                "type": "custom_tool_call",
                "id": fake._next_id("ctc_"),
                "call_id": fake._next_id("call_"),
                "name": "exec",
                "input": f"text(JSON.stringify(await tools.{decision[0]}({json.dumps(decision[1])})));",
                "status": "completed",
            }
        elif decision:
            namespace, short = offered_map[decision[0]]
            output = {
                "type": "function_call",
                "id": fake._next_id("fc_"),
                "call_id": fake._next_id("call_"),
                "name": short,
                "arguments": json.dumps(decision[1]),
                "status": "completed",
            }
            if namespace:
                output["namespace"] = namespace
        else:
            output = {
                "type": "message",
                "id": fake._next_id("msg_"),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": fake.final_text, "annotations": []}],
            }
        base = {
            "id": fake._next_id("resp_"),
            "object": "response",
            "created_at": int(time.time()),
            "model": body.get("model", "fake"),
        }
        done = {**base, "status": "completed", "output": [output], "usage": USAGE_RESPONSES}
        if not body.get("stream"):
            return self._json(done)
        events: list[SseEvent] = [
            (
                "response.created",
                {"type": "response.created", "response": {**base, "status": "in_progress", "output": []}},
            ),
            ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": output}),
        ]
        if output["type"] == "message":
            delta = {
                "type": "response.output_text.delta",
                "item_id": output["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": fake.final_text,
            }
            events.append(("response.output_text.delta", delta))
        events += [
            ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": output}),
            ("response.completed", {"type": "response.completed", "response": done}),
        ]
        self._sse(events)

    # -- Gemini ---------------------------------------------------------------
    def _gemini(self, request: Request, body: JSON, model: str, stream: bool) -> None:
        fake = self.fake
        declarations: dict[str, JSON] = {}
        for tool in body.get("tools") or []:
            for decl in (tool or {}).get("functionDeclarations") or (tool or {}).get("function_declarations") or []:
                declarations[decl.get("name", "")] = decl
        called = [
            call.get("name", "")
            for content in body.get("contents") or []
            if content.get("role") == "model"
            for part in content.get("parts") or []
            if (call := part.get("functionCall") or part.get("function_call"))
        ]
        config = body.get("generationConfig") or body.get("generation_config") or {}
        if (config.get("responseMimeType") or "") == "application/json":
            # An auxiliary structured call (model router, next-speaker check): not an agent turn.
            parts: list[JSON] = [{"text": json.dumps(self._gemini_json_stub(config))}]
        else:
            decision = self._turn(request, list(declarations), called, "gemini")
            if decision:
                name, args = decision
                decl = declarations.get(name, {})
                schema = decl.get("parametersJsonSchema") or decl.get("parameters") or {}
                if fake.gemini_wait_for_previous and "wait_for_previous" in (schema.get("properties") or {}):
                    args.setdefault("wait_for_previous", True)  # what a real model sends; servers must ignore it
                parts = [{"functionCall": {"name": name, "args": args}}]
            else:
                parts = [{"text": fake.final_text}]
        payload = {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 10, "totalTokenCount": 110},
            "modelVersion": model,
            "responseId": fake._next_id("gresp_"),
        }
        if stream:
            return self._sse([(None, payload)])
        self._json(payload)

    @staticmethod
    def _gemini_json_stub(config: JSON) -> JSON:
        """Plausible values for a responseSchema: first enum value, numbers >= 1 (router scores are 1-100)."""
        schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}

        def fill(s: JSON) -> Any:
            if s.get("enum"):
                return s["enum"][0]
            kind = str(s.get("type", "object")).lower()
            if kind == "object":
                return {k: fill(v) for k, v in (s.get("properties") or {}).items()}
            if kind == "array":
                return []
            if kind in ("number", "integer"):
                return max(1, s.get("minimum", 1))
            if kind == "boolean":
                return False
            return "user"

        out = fill(schema) if schema else {}
        return out if isinstance(out, dict) else {}
