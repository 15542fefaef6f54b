"""The dashboard over plain HTTP: who gets in, which POSTs count, and /metrics against the store.

Real `maestro dashboard` and `maestro serve --http` processes; tokens from real `maestro token`
commands. A bind beyond loopback is made on 0.0.0.0 and reached through 127.0.0.1, so no traffic
leaves the machine.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import anyio
import httpx2
import pytest
from dashkit import dashboard, opened
from harness import StoreView
from projectkit import user_env
from prometheus_client.parser import text_string_to_metric_families
from test_http import create_token, http_server, maestro, remote_agent

from maestro_mcp.client import AgentClient, serve_params

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CALL_S = 20
CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, parsed by prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


async def test_off_loopback_every_request_needs_an_operator_token(db: str) -> None:
    async with opened(db):
        pass
    operator = await create_token(db, "ops", "--role", "operator")
    worker = await create_token(db, "w1")
    async with dashboard(db, "--host", "0.0.0.0") as running:
        base = f"http://127.0.0.1:{running.port}"
        assert any("WARNING" in line and "TLS" in line for line in running.stderr)
        async with httpx2.AsyncClient(base_url=base, timeout=CALL_S) as http:
            for method, path in [("GET", "/"), ("GET", "/events?feed=board"), ("GET", "/metrics"),
                                 ("GET", "/workers/s-x"), ("POST", "/steer"), ("POST", "/approvals/a-x")]:  # fmt: skip
                response = await http.request(method, path, data={"text": "x"} if method == "POST" else None)
                assert response.status_code == 401, f"{method} {path} answered {response.status_code} without a token"
                assert "w1" not in response.text, "a refusal showed something of the store"
            page = await http.get("/", headers={"accept": "text/html"})
            assert page.status_code == 401 and 'name="token"' in page.text  # the sign-in form, nothing else
            refused = await http.get("/", headers={"authorization": f"Bearer {worker}"})
            assert refused.status_code == 403 and "operator" in refused.json()["error_description"]
            assert (await http.get("/", headers={"authorization": "Bearer nonsense"})).status_code == 401

            metrics = await http.get("/metrics", headers={"authorization": f"Bearer {operator}"})
            assert metrics.status_code == 200 and "maestro_tasks" in metrics.text

            # A browser: /?token= once, then the HttpOnly cookie carries it, the event stream included.
            first = await http.get(f"/?token={operator}")
            assert first.status_code == 303 and first.headers["location"] == "/"
            cookie = first.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert (await http.get("/")).status_code == 200
            async with http.stream("GET", "/events?feed=board") as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                with anyio.fail_after(CALL_S):
                    async for line in stream.aiter_lines():
                        if line.startswith("event: section"):
                            break

            code, _, err = await maestro(db, "token", "revoke", "ops")
            assert code == 0, err
            assert (await http.get("/")).status_code == 401, "a revoked token's cookie still opened the page"


async def test_token_create_operator_prints_a_token_the_dashboard_accepts(db: str) -> None:
    async with opened(db):
        pass
    code, out, err = await maestro(db, "token", "create", "--operator")
    assert code == 0, err
    token = out.strip()
    view = StoreView(db)
    (row,) = view._dicts("SELECT name, role, agent FROM sessions WHERE role = 'operator' AND name != 'operator'")
    assert row["agent"] == "human" and row["name"].startswith("operator-")
    async with dashboard(db, "--host", "0.0.0.0") as running:
        base = f"http://127.0.0.1:{running.port}"
        async with httpx2.AsyncClient(base_url=base, timeout=CALL_S) as http:
            assert (await http.get("/", headers={"authorization": f"Bearer {token}"})).status_code == 200
            login = await http.post("/login", data={"token": token})
            assert login.status_code == 303 and "HttpOnly" in login.headers["set-cookie"]


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(db: str) -> None:
    async with opened(db):
        pass
    view = StoreView(db)
    async with dashboard(db) as running:
        base = f"http://127.0.0.1:{running.port}"
        async with httpx2.AsyncClient(base_url=base, timeout=CALL_S) as http:
            page = await http.get("/")
            assert page.status_code == 200
            match = CSRF.search(page.text)
            assert match is not None
            csrf = match[1]
            json = {"accept": "application/json"}
            assert (await http.post("/steer", data={"text": "stop everything"}, headers=json)).status_code == 403
            wrong = await http.post("/steer", data={"text": "stop everything", "csrf": "0" * 40}, headers=json)
            assert wrong.status_code == 403
            foreign = await http.post(
                "/steer", data={"text": "stop everything", "csrf": csrf}, headers={**json, "origin": "http://evil.test"}
            )
            assert foreign.status_code == 403
            rebound = await http.post("/steer", data={"text": "x", "csrf": csrf}, headers={"host": "evil.test"})
            assert rebound.status_code == 421, "a DNS-rebinding host name reached the dashboard"
            assert view.count("directives") == 0, "a refused POST changed the store"

            sent = await http.post(
                "/steer", data={"text": "tests first", "csrf": csrf}, headers={**json, "origin": base}
            )
            assert sent.status_code == 200 and sent.json()["ok"], sent.text
            assert [t for (t,) in view._rows("SELECT text FROM directives WHERE cleared_at IS NULL")] == ["tests first"]
            cleared = await http.post("/steer/clear", data={"csrf": csrf, "directive_id": ""}, headers=json)
            assert cleared.json() == {"ok": True, "message": "Cleared 1 directive."}
            bad = await http.post("/approvals/a-nope", data={"csrf": csrf, "decision": "allow"}, headers=json)
            assert bad.status_code == 404 and "a-nope" in bad.json()["message"]


async def test_metrics_parse_and_match_the_demo_store(demo_store: str) -> None:
    view = StoreView(demo_store)
    async with dashboard(demo_store) as running, httpx2.AsyncClient(timeout=CALL_S) as http:
        response = await http.get(running.url + "metrics")
        open_metrics = await http.get(
            running.url + "metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)

    sessions = Counter(
        (status, agent, role) for status, agent, role in view._rows("SELECT status, agent, role FROM sessions")
    )
    for (status, agent, role), n in sessions.items():
        assert found[("maestro_sessions", (("agent", agent), ("role", role), ("status", status)))] == n
    tasks = Counter(s for (s,) in view._rows("SELECT status FROM tasks"))
    assert found[("maestro_tasks", (("status", "done"),))] == tasks["done"] == 8
    assert sum(v for (name, _), v in found.items() if name == "maestro_tasks") == 8
    receipts = Counter(s for (s,) in view._rows("SELECT status FROM receipts"))
    assert found[("maestro_mail_sent_total", ())] == view.count("messages")
    assert found[("maestro_mail_delivered_total", ())] == receipts["delivered"] + receipts["acked"]
    assert found[("maestro_mail_acked_total", ())] == receipts["acked"]
    for status in ("sent", "delivered", "acked"):
        assert found[("maestro_mail_receipts", (("status", status),))] == receipts[status]
    exits = Counter(
        (s, a)
        for s, a in view._rows("SELECT status, agent FROM sessions WHERE role = 'worker' AND ended_at IS NOT NULL")
    )
    assert exits, "the demo's workers all ended"
    for (outcome, agent), n in exits.items():
        assert found[("maestro_worker_exits_total", (("agent", agent), ("outcome", outcome)))] == n
    assert found[("maestro_approvals_pending", ())] == 0

    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")


async def test_serve_http_serves_the_dashboard_and_metrics_beside_mcp(db: str) -> None:
    """One `maestro serve --http`: agents at /mcp (bearer tokens), the page at /, and /metrics, whose
    wake-latency histogram counts the mail_wait calls this server woke."""
    alice_token = await create_token(db, "alice")
    bob_token = await create_token(db, "bob")
    async with http_server(db) as server:
        async with httpx2.AsyncClient(timeout=CALL_S) as http:
            page = await http.get(server.base + "/")
            assert page.status_code == 200 and '<h2 id="h-sessions">Sessions</h2>' in page.text
            assert "alice" in page.text and "bob" in page.text
            assert (await http.post(server.url, json={})).status_code == 401, "/mcp lost its bearer check"
        # A wake is measured only for mail that arrives while mail_wait sleeps; a send can overtake the
        # wait's own request, so a round whose wait found the mail already there is simply repeated.
        async with (
            remote_agent(server.url, alice_token) as alice,
            remote_agent(server.url, bob_token) as bob,
            httpx2.AsyncClient(timeout=CALL_S) as http,
        ):
            with anyio.fail_after(CALL_S):
                await bob.call("whoami")
            woken = 0.0

            async def wait(into: list[dict[str, object]]) -> None:
                into.append(await bob.call("mail_wait", timeout_s=CALL_S))

            for _ in range(10):
                got: list[dict[str, object]] = []
                with anyio.fail_after(CALL_S):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(wait, got)
                        await alice.call("mail_send", to="bob", body="wake up")
                assert got and got[0]["messages"], got
                found = samples((await http.get(server.base + "/metrics")).text)
                woken = found.get(("maestro_wake_latency_seconds_count", (("waiter", "mail_wait"),)), 0.0)
                if woken:
                    break
        assert woken >= 1, "no mail_wait wake was measured in 10 rounds"
        assert found[("maestro_mail_sent_total", ())] == StoreView(db).count("messages")


async def test_a_stdio_agent_is_counted_once_it_registers(db: str) -> None:
    async with opened(db):
        pass
    async with dashboard(db) as running, AgentClient(serve_params(db=db, name="solo", role="worker")) as solo:
        with anyio.fail_after(CALL_S):
            await solo.call("whoami")
        async with httpx2.AsyncClient(timeout=CALL_S) as http:
            found = samples((await http.get(running.url + "metrics")).text)
    assert found[("maestro_sessions", (("agent", "external"), ("role", "worker"), ("status", "working")))] >= 1


async def test_on_loopback_a_request_a_proxy_passed_on_needs_a_token_too(db: str) -> None:
    """Behind a TLS proxy on the same machine the dashboard is reached from anywhere: the proxy's
    headers, or a public name allowed for it, make the request remote."""
    async with opened(db):
        pass
    operator = await create_token(db, "ops", "--role", "operator")
    async with dashboard(db) as running, httpx2.AsyncClient(base_url=running.url, timeout=CALL_S) as http:
        assert (await http.get("/")).status_code == 200
        for headers in ({"x-forwarded-for": "203.0.113.9"}, {"forwarded": "for=203.0.113.9"}, {"x-real-ip": "1.2.3.4"}):
            assert (await http.get("/", headers=headers)).status_code == 401, headers
            assert (await http.get("/metrics", headers=headers)).status_code == 401, headers
        proxied = {"x-forwarded-for": "203.0.113.9", "authorization": f"Bearer {operator}"}
        page = await http.get("/", headers=proxied)
        assert page.status_code == 200
        match = CSRF.search(page.text)
        assert match is not None
        # The browser's Origin is the public name, which the proxy passes on as X-Forwarded-Host.
        public = {**proxied, "origin": "https://dash.example.com", "accept": "application/json"}
        form = {"text": "from the phone", "csrf": match[1]}
        assert (await http.post("/steer", data=form, headers=public)).status_code == 403
        sent = await http.post("/steer", data=form, headers={**public, "x-forwarded-host": "dash.example.com"})
        assert sent.status_code == 200 and sent.json()["ok"], sent.text


async def test_dashboard_without_a_store_or_with_a_taken_port_says_what_to_do(db: str, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = user_env()
    with anyio.fail_after(CALL_S):
        missing = await anyio.run_process(
            [sys.executable, "-m", "maestro_mcp", "dashboard", "--port", "0"], cwd=elsewhere, env=env, check=False
        )
    assert missing.returncode == 2
    assert "No maestro store found" in missing.stderr.decode() and "maestro init" in missing.stderr.decode()

    async with opened(db):
        pass
    async with dashboard(db) as running:
        code, _, err = await maestro(db, "dashboard", "--port", str(running.port))
    assert code == 2 and f"cannot listen on 127.0.0.1:{running.port}" in err
