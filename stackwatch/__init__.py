"""stackwatch core: the config model, domain types, clock, store and spool shared by every part."""

__version__ = "0.1.0"
