"""Workflows that chain stages (simulate, diagnose every failure, score, measure) for the CLI."""
