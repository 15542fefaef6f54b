"""Wake latency, measured in-process: how long mail waited between its commit and a waiter handing it on.

`mail_wait` records, for each message that arrived while it slept, the time from the message's
`created_at` to the moment the wait took it; the dashboard records the same for the messages it
pushes to open pages. Nothing here knows Prometheus: a process that exposes metrics
(`maestro dashboard`, `maestro serve --http`) adds an observer, every other process (a stdio
server per agent) pays one empty loop.
"""

from __future__ import annotations

from collections.abc import Callable

Observer = Callable[[str, float], None]

_observers: list[Observer] = []


def add_observer(observer: Observer) -> None:
    """Call `observer(waiter, seconds)` for every wake measured in this process from now on."""
    if observer not in _observers:
        _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    if observer in _observers:
        _observers.remove(observer)


def observe(waiter: str, seconds: float) -> None:
    """A wake of `waiter` ("mail_wait", "dashboard") took `seconds` after the commit it reports."""
    for observer in _observers:
        observer(waiter, max(seconds, 0.0))


def observing() -> bool:
    return bool(_observers)
