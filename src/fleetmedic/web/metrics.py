"""``/metrics``: the server's own request counts and latencies, the fleet's KPIs, the controller.

A private :class:`CollectorRegistry`, so nothing else in the process (a library's default
collectors, a second app in a test) leaks into or collides with it. Request metrics are labelled
by route *template* (``/api/v1/jobs/{job_id}``), never by the raw path, so a crawler cannot blow
up the series count. The KPI gauges come from the cache without computing: a scrape never starts a
KPI run, it reports what the dashboard last computed for the default period (absent until then).
The controller's gauges are read from the control store on each scrape (a few microseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.state import SWITCHES, Switches
from fleetmedic.kpi import STATUSES
from fleetmedic.web.stores import ControlAccess

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DashboardCollector:
    """KPI gauges from the cached default period, controller gauges from the control store.

    Not :class:`fleetmedic.kpi.metrics_out.FleetCollector` (what ``fleetmedic metrics`` serves):
    that one recomputes the KPIs on a scrape when the store changed, seconds on a large store;
    here the dashboard's own cache already holds them, so a scrape never waits on a KPI run.
    """

    def __init__(
        self, kpis: Callable[[], tuple[str, dict[str, Any]] | None], control: ControlAccess
    ):
        self.kpis = kpis
        self.control = control

    def collect(self) -> Iterator[Metric]:
        yield from self._kpis()
        yield from self._controller()

    def _kpis(self) -> Iterator[Metric]:
        found = self.kpis()
        if found is None:
            return
        period, kpis = found
        for name, key, text in (
            ("fleetmedic_goodput_ratio", "goodput", "Productive share of allocated GPU-hours."),
            ("fleetmedic_ettr_ratio", "ettr", "Effective training time ratio."),
        ):
            gauge = GaugeMetricFamily(name, f"{text} (dashboard period)", labels=["period"])
            if kpis.get(key) is not None:
                gauge.add_metric([period], float(kpis[key]))
            yield gauge
        jobs = GaugeMetricFamily(
            "fleetmedic_jobs",
            "Jobs in the dashboard period by final status.",
            labels=["period", "status"],
        )
        counts = kpis.get("jobs", {}).get("count_by_status", {})
        for status in STATUSES:
            jobs.add_metric([period, status], float(counts.get(status) or 0))
        yield jobs

    def _controller(self) -> Iterator[Metric]:
        with self.control.open() as control:
            if control is None:
                return
            counts = AuditLog(control).counts()
            switches = Switches(control)
            engaged = {name: switches.engaged(name) for name in SWITCHES}
        actions = GaugeMetricFamily(
            "fleetmedic_heal_actions", "Actions in the control store by state.", labels=["state"]
        )
        for state, n in sorted(counts.items()):
            actions.add_metric([state], float(n))
        yield actions
        switch = GaugeMetricFamily(
            "fleetmedic_heal_switch_engaged",
            "1 when the kill switch or the circuit breaker is engaged.",
            labels=["switch"],
        )
        for name, on in engaged.items():
            switch.add_metric([name], 1.0 if on else 0.0)
        yield switch


class Metrics:
    def __init__(self, collector: DashboardCollector) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fleetmedic_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fleetmedic_http_request_duration_seconds",
            "Time to answer, by route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(collector)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
