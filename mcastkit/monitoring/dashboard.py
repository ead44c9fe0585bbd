"""The CloudWatch dashboard of one region, as the ``DashboardBody`` document, and its picture.

Rows follow the path a datagram takes: the relay link from the datacenter, the Transit
Gateway, the probe receivers that prove delivery, the sequenced streams, then the ECS tasks
and hosts that run it all, and the alarms. A row appears only when the region has what it
shows. :func:`picture` draws the layout as text for the README, from the same document.

Transit Gateway metrics (``AWS/TransitGateway``, by ``TransitGateway``) count all its traffic:
AWS documents no multicast-only metric, so that row is context, not proof of delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcastkit.config.models import Config, Region
from mcastkit.config.names import pascal
from mcastkit.monitoring import emf
from mcastkit.monitoring.alarms import (
    AUTO_SCALING,
    CONTAINER_INSIGHTS,
    MANAGED_SCALING,
    MINUTE,
    Cluster,
    Service,
    region_alarms,
)

#: The dashboard grid is 24 units wide.
GRID_WIDTH = 24
HEIGHT = 6
TRANSIT_GATEWAY = "AWS/TransitGateway"

Widget = dict[str, Any]


def _own(metric: emf.Metric, service: str, statistic: str, label: str | None = None) -> list[Any]:
    return _aws(emf.NAMESPACE, metric.name, (emf.DIMENSION, service), statistic, label or metric.name)


def _graph(title: str, metrics: list[list[Any]], region: str, *, width: int) -> Widget:
    return {
        "type": "metric",
        "width": width,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "period": MINUTE,
            "metrics": metrics,
        },
    }


def _aws(
    namespace: str, name: str, dimensions: Sequence[str], statistic: str, label: str | None = None
) -> list[Any]:
    options = {"stat": statistic} if label is None else {"stat": statistic, "label": label}
    return [namespace, name, *dimensions, options]


def region_dashboard(
    project: str,
    region: str,
    settings: Region,
    *,
    cluster: Cluster,
    services: Sequence[Service],
    transit_gateway: str,
    alarm_arns: Sequence[str],
) -> dict[str, Any]:
    """The ``DashboardBody`` document (``cluster``, service names, ``transit_gateway`` and the
    alarm ARNs may be CloudFormation tokens: the stack serializes the document)."""
    rows: list[list[Widget]] = [
        [
            {
                "type": "text",
                "width": GRID_WIDTH,
                "height": 3,
                "properties": {
                    "markdown": f"## mcastkit {project} {region}\n"
                    "datacenter → relay → Transit Gateway → probe, streams · ECS hosts"
                },
            }
        ]
    ]
    if settings.relay is not None:
        relay = emf.service_name(project, "relay")
        m = emf.Relay
        rows.append(
            [
                _graph("Relay: links up", [_own(m.PEERS, relay, "Maximum")], region, width=8),
                _graph(
                    "Relay: datagrams",
                    [_own(m.DATAGRAMS_IN, relay, "Sum"), _own(m.DATAGRAMS_OUT, relay, "Sum")],
                    region,
                    width=8,
                ),
                _graph(
                    "Relay: loss, links",
                    [_own(x, relay, "Sum") for x in (m.GAPS, m.DROPS, m.DISCONNECTS, m.AUTH_FAILURES)],
                    region,
                    width=8,
                ),
            ]
        )
    tgw = ("TransitGateway", transit_gateway)
    rows.append(
        [
            _graph(
                "TGW: bytes (all traffic)",
                [_aws(TRANSIT_GATEWAY, name, tgw, "Sum") for name in ("BytesIn", "BytesOut")],
                region,
                width=12,
            ),
            _graph(
                "TGW: packets dropped",
                [
                    _aws(TRANSIT_GATEWAY, name, tgw, "Sum")
                    for name in ("PacketDropCountNoRoute", "PacketDropCountBlackhole")
                ],
                region,
                width=12,
            ),
        ]
    )
    if settings.probe is not None:
        probe = emf.service_name(project, "probe", settings.probe.group)
        p = emf.Probe
        rows.append(
            [
                _graph(
                    "Probe: received",
                    [
                        _own(p.RECEIVED, probe, "Minimum"),
                        _own(p.FOREIGN, probe, "Sum"),
                    ],
                    region,
                    width=8,
                ),
                _graph(
                    "Probe: loss %",
                    [_own(p.LOSS, probe, "Maximum")],
                    region,
                    width=8,
                ),
                _graph(
                    "Probe: latency p99 µs",
                    [_own(p.LATENCY_P99, probe, "Maximum")],
                    region,
                    width=8,
                ),
            ]
        )
    if settings.streams:
        s = emf.Sequencer
        names = [
            (stream.name, emf.service_name(project, "stream", stream.name)) for stream in settings.streams
        ]
        rows.append(
            [
                _graph(
                    "Streams: messages",
                    [_own(s.MESSAGES, service, "Sum", name) for name, service in names],
                    region,
                    width=12,
                ),
                _graph(
                    "Streams: resent, errors",
                    [
                        _own(metric, service, "Sum", f"{name} {metric.name}")
                        for name, service in names
                        for metric in (s.RETRANSMITTED, s.SEND_ERRORS)
                    ],
                    region,
                    width=12,
                ),
            ]
        )
    rows.append(
        [
            _graph(
                "ECS: tasks running",
                [
                    _aws(
                        CONTAINER_INSIGHTS,
                        "RunningTaskCount",
                        ("ClusterName", cluster.name, "ServiceName", service.name),
                        "Minimum",
                        f"{service.key} (of {service.desired})",
                    )
                    for service in services
                ],
                region,
                width=12,
            ),
            _graph(
                "Hosts: in service, reservation %",
                [
                    _aws(
                        AUTO_SCALING,
                        "GroupInServiceInstances",
                        ("AutoScalingGroupName", cluster.auto_scaling_group),
                        "Minimum",
                    ),
                    _aws(
                        MANAGED_SCALING,
                        "CapacityProviderReservation",
                        ("CapacityProviderName", cluster.capacity_provider, "ClusterName", cluster.name),
                        "Maximum",
                    ),
                ],
                region,
                width=12,
            ),
        ]
    )
    if alarm_arns:
        rows.append(
            [
                {
                    "type": "alarm",
                    "width": GRID_WIDTH,
                    "height": 3,
                    "properties": {"title": "Alarms", "alarms": list(alarm_arns)},
                }
            ]
        )
    return {"widgets": _place(rows)}


def _place(rows: list[list[Widget]]) -> list[Widget]:
    """Give every widget its ``x`` and ``y``: rows top to bottom, widgets left to right."""
    placed = []
    y = 0
    for row in rows:
        x = 0
        for widget in row:
            placed.append({**widget, "x": x, "y": y})
            x += widget["width"]
        if x > GRID_WIDTH:
            raise ValueError(f"dashboard row at y={y} is {x} units wide (at most {GRID_WIDTH})")
        y += max(widget["height"] for widget in row)
    return placed


def layout(config: Config, region: str) -> str:
    """The :func:`picture` of ``region``'s dashboard (resource names stand in for the tokens)."""
    settings = config.regions[region]
    services = []
    if settings.relay is not None:
        services.append(Service("Relay", "relay", settings.relay.desired_count))
    if settings.probe is not None:
        services += [
            Service("ProbeReceivers", "receivers", settings.probe.receivers),
            Service("ProbeSender", "sender", 1),
        ]
    services += [Service(f"Sequencer{pascal(s.name)}", s.name, 1) for s in settings.streams]
    cluster = Cluster("cluster", "hosts", "capacity")
    alarms = region_alarms(
        config.project, settings, config.monitoring.alarms, cluster=cluster, services=services
    )
    body = region_dashboard(
        config.project,
        region,
        settings,
        cluster=cluster,
        services=services,
        transit_gateway="tgw",
        alarm_arns=[alarm.key for alarm in alarms],
    )
    return picture(body)


#: Characters per grid unit across, in :func:`picture`.
CHARS_PER_UNIT = 3


def picture(body: dict[str, Any]) -> str:
    """The layout of a ``DashboardBody`` as text: one box per widget, with its title and metrics."""
    widgets = body["widgets"]
    width = GRID_WIDTH * CHARS_PER_UNIT + 1
    height = max(w["y"] + w["height"] for w in widgets) + 1
    grid = [[" "] * width for _ in range(height)]
    for widget in widgets:
        left, right = widget["x"] * CHARS_PER_UNIT, (widget["x"] + widget["width"]) * CHARS_PER_UNIT
        top, bottom = widget["y"], widget["y"] + widget["height"]
        for col in range(left, right + 1):
            for row in (top, bottom):
                grid[row][col] = "+" if col in (left, right) else "-"
        for row in range(top + 1, bottom):
            grid[row][left] = grid[row][right] = "|"
        for offset, text in enumerate(_lines(widget)[: bottom - top - 1]):
            room = right - left - 2
            clipped = text if len(text) <= room else text[: room - 1] + "…"
            for i, char in enumerate(clipped):
                grid[top + 1 + offset][left + 2 + i] = char
    return "\n".join("".join(row).rstrip() for row in grid)


def _lines(widget: Widget) -> list[str]:
    properties = widget["properties"]
    if widget["type"] == "text":
        return [line.lstrip("# ") for line in properties["markdown"].splitlines()]
    if widget["type"] == "alarm":
        return [f"{properties['title']}: {len(properties['alarms'])} alarms, their state"]
    lines = [properties["title"]]
    for metric in properties["metrics"]:
        options = metric[-1] if isinstance(metric[-1], dict) else {}
        lines.append(f"· {options.get('label', metric[1])} ({options.get('stat', 'Average')})")
    return lines
