"""Alarm engine: rules, the ISA-18.2 lifecycle, the journal, performance figures and alarm outputs."""
