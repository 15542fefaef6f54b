"""The plan as a picture: one column per wave, one box per task, an arrow per dependency.

Only coordinates are computed here; the template draws them, escaping every label (task titles
are agent-written). Boxes are ordered within a wave by the mean row of their dependencies, which
keeps most arrows short without a layout engine.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from maestro_mcp.models import Task

BOX_W = 150
BOX_H = 44
GAP_X = 50
GAP_Y = 14
PAD = 8
LABEL_CHARS = 20


@dataclass(frozen=True)
class Node:
    task: Task
    x: int
    y: int
    label: str
    sub: str

    @property
    def cx(self) -> int:
        return self.x + BOX_W // 2


@dataclass(frozen=True)
class Edge:
    path: str
    done: bool


@dataclass(frozen=True)
class Picture:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    waves: list[tuple[int, int]]
    """(wave, x) of each column's heading."""
    box_w: int = BOX_W
    box_h: int = BOX_H


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout(tasks: list[Task]) -> Picture:
    by_wave: dict[int, list[Task]] = defaultdict(list)
    for task in tasks:
        by_wave[task.wave].append(task)
    waves = sorted(by_wave)
    row: dict[str, float] = {}
    nodes: dict[str, Node] = {}
    heading = 18
    for column, wave in enumerate(waves):
        members = by_wave[wave]
        members.sort(key=lambda t: _mean([row[d] for d in t.depends_on if d in row], default=len(row)))
        for index, task in enumerate(members):
            row[task.id] = index
            x = PAD + column * (BOX_W + GAP_X)
            y = PAD + heading + index * (BOX_H + GAP_Y)
            sub = task.status.value.replace("_", " ") + (f" · {task.assignee}" if task.assignee else "")
            nodes[task.id] = Node(task, x, y, _short(task.key or task.title), _short(sub, 24))
    edges = []
    for node in nodes.values():
        for dep in node.task.depends_on:
            source = nodes.get(dep)
            if source is None:
                continue
            x1, y1 = source.x + BOX_W, source.y + BOX_H // 2
            x2, y2 = node.x - 6, node.y + BOX_H // 2
            bend = (x1 + x2) // 2
            edges.append(Edge(f"M{x1},{y1} C{bend},{y1} {bend},{y2} {x2},{y2}", source.task.status.value == "done"))
    tallest = max((len(m) for m in by_wave.values()), default=0)
    width = PAD * 2 + max(len(waves), 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + heading + max(tallest, 1) * (BOX_H + GAP_Y) - GAP_Y
    columns = [(wave, PAD + i * (BOX_W + GAP_X)) for i, wave in enumerate(waves)]
    return Picture(list(nodes.values()), edges, width, height, columns)


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default
