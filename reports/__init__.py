"""Inspectors' reports: compliance figures and preservation metrics (issue 7)."""
