"""Orchestrations that span stages (simulate, then diagnose, then score); the CLI calls these.

This layer sits above the stages and below the CLI: it may import every stage, no stage imports it.
"""
