"""Alarm engine (issue 3; not yet built)."""
