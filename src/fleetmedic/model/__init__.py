"""Typed records shared by every stage, and the failure taxonomy they speak."""

from fleetmedic.model.records import (
    Action,
    ActionRef,
    Attempt,
    Diagnosis,
    Event,
    Evidence,
    Job,
    Node,
    Secondary,
    Ticket,
)
from fleetmedic.model.taxonomy import CATEGORIES, OWNERS, Category, category

__all__ = [
    "CATEGORIES",
    "OWNERS",
    "Action",
    "ActionRef",
    "Attempt",
    "Category",
    "Diagnosis",
    "Event",
    "Evidence",
    "Job",
    "Node",
    "Secondary",
    "Ticket",
    "category",
]
