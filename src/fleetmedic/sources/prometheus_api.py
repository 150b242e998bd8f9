"""A small client of the Prometheus HTTP API: instant and range queries, nothing else.

Why only these two endpoints: they are what Thanos Query, Mimir, Cortex and VictoriaMetrics all
serve with the same request and response shapes, so one client reads any of them. Authentication
is what those stores put in front: a bearer token, HTTP basic auth, and Mimir's tenant header
``X-Scope-OrgID``. The transport is injectable (``httpx.MockTransport``) so tests never need a
network to check the error paths.

Errors::

    FleetmedicError
    └── PrometheusError      one line: the query, then what went wrong; ``.transient`` says
                             whether asking again later may work (connection, timeout, 429, 5xx)

A response that is not JSON, has the wrong shape, or an ``"error"`` status is a PrometheusError;
a sample that is NaN or ±Inf (Prometheus sends them as strings) is not an error: it is dropped and
counted in :attr:`QueryResult.skipped`, since a gap in one series must not hide the others.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from fleetmedic.model.errors import FleetmedicError

_TRANSIENT_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
_SNIPPET = 200


class PrometheusError(FleetmedicError):
    """A query failed; ``transient`` when retrying later may succeed."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Series:
    """One time series of a result: its labels and its (unix seconds, value) points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class QueryResult:
    """The series of one query, the non-finite samples dropped, and the server's warnings."""

    series: list[Series]
    skipped: int = 0
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Auth:
    """How to present ourselves; at most one of token and username/password."""

    token: str | None = None
    username: str | None = None
    password: str | None = None
    org_id: str | None = None

    def headers(self) -> dict[str, str]:
        out = {}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        if self.org_id:
            out["X-Scope-OrgID"] = self.org_id
        return out

    def basic(self) -> httpx.BasicAuth | None:
        if self.username is None:
            return None
        return httpx.BasicAuth(self.username, self.password or "")


class PrometheusAPI:
    """Queries one Prometheus-compatible endpoint (``url`` is the part before ``/api/v1``)."""

    def __init__(
        self,
        url: str,
        *,
        auth: Auth | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        auth = auth or Auth()
        if auth.token and auth.username:
            raise FleetmedicError("give a bearer token or a username, not both")
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.url,
            headers=auth.headers(),
            auth=auth.basic(),
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusAPI:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def query(self, promql: str, at: datetime | None = None) -> QueryResult:
        """An instant query (``/api/v1/query``), evaluated at ``at`` (default: the server's now)."""
        form = {"query": promql}
        if at is not None:
            form["time"] = f"{at.timestamp():.3f}"
        return self._ask("/api/v1/query", form, promql)

    def query_range(
        self, promql: str, start: datetime, end: datetime, step_seconds: float
    ) -> QueryResult:
        """A range query (``/api/v1/query_range``): every series' points from start to end."""
        form = {
            "query": promql,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step_seconds:g}",
        }
        return self._ask("/api/v1/query_range", form, promql)

    def _ask(self, path: str, form: dict[str, str], promql: str) -> QueryResult:
        """POST (long PromQL fits) with retries on transient errors, then parse."""
        attempt = 0
        while True:
            try:
                return parse_response(self._post(path, form), promql)
            except PrometheusError as exc:
                if not exc.transient or attempt >= self.retries:
                    raise
            self._sleep(self.backoff * 2**attempt)
            attempt += 1

    def _post(self, path: str, form: dict[str, str]) -> httpx.Response:
        short = _short(form["query"])
        try:
            return self._http.post(path, data=form)
        except httpx.TimeoutException:
            raise PrometheusError(f"{short}: {self.url} timed out", transient=True) from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise PrometheusError(
                f"{short}: cannot reach {self.url}: {reason}", transient=True
            ) from None


def _short(promql: str) -> str:
    flat = " ".join(promql.split())
    return flat if len(flat) <= 80 else flat[:79] + "…"


def parse_response(response: httpx.Response, promql: str) -> QueryResult:
    """The series of a query response, or a :class:`PrometheusError` saying what was wrong."""
    short = _short(promql)
    code = response.status_code
    try:
        body = json.loads(response.content)
    except ValueError:
        snippet = " ".join(response.text[:_SNIPPET].split())
        raise PrometheusError(
            f"{short}: HTTP {code}, not JSON: {snippet or '(empty)'}",
            transient=code in _TRANSIENT_CODES,
        ) from None
    if not isinstance(body, dict):
        raise PrometheusError(f"{short}: HTTP {code}, expected a JSON object")
    if body.get("status") != "success" or code >= 400:
        kind = body.get("errorType") or "error"
        text = " ".join(str(body.get("error") or "no error message").split())
        raise PrometheusError(
            f"{short}: HTTP {code} {kind}: {text[:_SNIPPET]}", transient=code in _TRANSIENT_CODES
        )
    data = body.get("data")
    if not isinstance(data, dict):
        raise PrometheusError(f"{short}: response has no data object")
    warnings = tuple(str(w) for w in body.get("warnings") or ())
    try:
        series, skipped = _series(data)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise PrometheusError(f"{short}: unexpected result shape: {exc}") from None
    return QueryResult(series, skipped, warnings)


def _series(data: dict[str, Any]) -> tuple[list[Series], int]:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        point = _point(result)
        return ([Series({}, (point,))] if point else []), 0 if point else 1
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        raise ValueError(f"resultType {kind!r}")
    out: list[Series] = []
    skipped = 0
    for item in result:
        labels = item["metric"]
        if not isinstance(labels, dict):
            raise TypeError("metric is not an object")
        raw = [item["value"]] if kind == "vector" else item["values"]
        points = [p for p in map(_point, raw) if p is not None]
        skipped += len(raw) - len(points)
        if points:
            out.append(Series(labels, tuple(points)))
    return out, skipped


def _point(pair: Any) -> tuple[float, float] | None:
    """``[ts, "value"]`` as floats; ``None`` for NaN and ±Inf (Prometheus's "NaN", "+Inf")."""
    ts, text = pair
    value = float(text)
    if not math.isfinite(value):
        return None
    return float(ts), value
