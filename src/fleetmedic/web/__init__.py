"""The web dashboard, REST API and Prometheus metrics: ``fleetmedic serve`` (docs/web.md)."""

from fleetmedic.web.app import create_app

__all__ = ["create_app"]
