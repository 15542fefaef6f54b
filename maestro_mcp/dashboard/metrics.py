"""`/metrics`: the team in the Prometheus / OpenMetrics text format, for the monitoring people already run.

Counts come from the store at scrape time (one consistent picture per scrape, whichever process
changed it); the wake-latency histogram is measured in this process (`maestro_mcp.wakes`): by
`mail_wait` calls this server answers (`maestro serve --http`) and by the dashboard's own pushes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from maestro_mcp import wakes
from maestro_mcp.models import ApprovalStatus, Role, TaskStatus, now
from maestro_mcp.service import Services

WAKE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

PROCESS = CollectorRegistry(auto_describe=True)
WAKE_LATENCY = Histogram(
    "maestro_wake_latency_seconds",
    "From a message's commit to its waiter taking it: mail_wait calls answered here, and the dashboard's pushes.",
    ["waiter"],
    buckets=WAKE_BUCKETS,
    registry=PROCESS,
)


def _observe(waiter: str, seconds: float) -> None:
    WAKE_LATENCY.labels(waiter=waiter).observe(seconds)


def install() -> None:
    """Start measuring wake latency in this process (idempotent)."""
    wakes.add_observer(_observe)


@dataclass
class Snapshot:
    """The store's numbers at one scrape."""

    sessions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(status, agent, role) -> sessions."""
    tasks: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    receipts: dict[str, int] = field(default_factory=dict)
    approvals_pending: int = 0
    oldest_pending_s: float = 0.0
    exits: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(outcome, agent) -> ended workers."""
    spend: dict[str, float] = field(default_factory=dict)
    """agent kind -> dollars (reported by the CLI, or priced from the price table)."""
    tokens: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(agent kind, input|output|cached) -> tokens."""


async def snapshot(svc: Services) -> Snapshot:
    store = svc.store
    snap = Snapshot()
    sessions = await store.list_sessions()
    agent_of = {s.id: s.agent for s in sessions}
    for session_id, stats in (await store.session_stats()).items():
        agent = agent_of.get(session_id, "unknown")
        snap.spend[agent] = snap.spend.get(agent, 0.0) + stats.usage.cost_usd
        snap.tokens[(agent, "input")] += stats.usage.input_tokens
        snap.tokens[(agent, "output")] += stats.usage.output_tokens
        snap.tokens[(agent, "cached")] += stats.usage.cached_tokens
    for s in sessions:
        snap.sessions[(s.status.value, s.agent, s.role.value)] += 1
        if s.role is Role.worker and not s.live:
            snap.exits[(s.status.value, s.agent)] += 1
    for t in await store.list_tasks():
        snap.tasks[t.status.value] += 1
    counts = await store.counts()
    snap.messages = counts.get("messages", 0)
    snap.receipts = {k: counts.get(k, 0) for k in ("sent", "delivered", "acked")}
    pending = await store.list_approvals(status=ApprovalStatus.pending)
    snap.approvals_pending = len(pending)
    if pending:
        snap.oldest_pending_s = max(now() - min(a.created_at for a in pending), 0.0)
    return snap


class _Scrape(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        sessions = GaugeMetricFamily("maestro_sessions", "Sessions by status, agent kind and role.",
                                     labels=["status", "agent", "role"])  # fmt: skip
        for (status, agent, role), n in sorted(s.sessions.items()):
            sessions.add_metric([status, agent, role], n)
        yield sessions
        tasks = GaugeMetricFamily("maestro_tasks", "Tasks by status.", labels=["status"])
        for status in TaskStatus:
            tasks.add_metric([status.value], s.tasks.get(status.value, 0))
        yield tasks
        yield CounterMetricFamily("maestro_mail_sent", "Messages sent (events and directives included).", s.messages)
        delivered = s.receipts.get("delivered", 0) + s.receipts.get("acked", 0)
        yield CounterMetricFamily(
            "maestro_mail_delivered", "Receipts that reached their recipient's agent (acked ones included).", delivered
        )
        acked = s.receipts.get("acked", 0)
        yield CounterMetricFamily("maestro_mail_acked", "Receipts their recipient acknowledged.", acked)
        receipts = GaugeMetricFamily("maestro_mail_receipts", "Receipts by their current state.", labels=["status"])
        for status in ("sent", "delivered", "acked"):
            receipts.add_metric([status], s.receipts.get(status, 0))
        yield receipts
        yield GaugeMetricFamily("maestro_approvals_pending", "Permission requests waiting for an answer.",
                                s.approvals_pending)  # fmt: skip
        yield GaugeMetricFamily(
            "maestro_approvals_oldest_pending_age_seconds",
            "Age of the oldest request waiting for an answer (0 when none waits).",
            s.oldest_pending_s,
        )
        exits = CounterMetricFamily("maestro_worker_exits", "Workers that ended, by outcome and agent kind.",
                                    labels=["outcome", "agent"])  # fmt: skip
        for (outcome, agent), n in sorted(s.exits.items()):
            exits.add_metric([outcome, agent], n)
        yield exits
        spend = CounterMetricFamily(
            "maestro_spend_usd",
            "Dollars spent, by agent kind (estimates for CLIs that report only tokens).",
            labels=["agent"],
        )
        for agent, dollars in sorted(s.spend.items()):
            spend.add_metric([agent], dollars)
        yield spend
        used = CounterMetricFamily("maestro_tokens", "Tokens used, by agent kind and kind of token.",
                                   labels=["agent", "kind"])  # fmt: skip
        for (agent, kind), n in sorted(s.tokens.items()):
            used.add_metric([agent, kind], n)
        yield used
        yield from PROCESS.collect()


async def exposition(svc: Services, accept: str | None) -> tuple[bytes, str]:
    """The text of one scrape, in the format `accept` asks for (OpenMetrics or Prometheus 0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(await snapshot(svc)))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
