"""Healing: policies as data, a safety guard, a write-ahead audit of every action, executors."""
