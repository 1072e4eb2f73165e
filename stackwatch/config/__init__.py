"""The one typed configuration model, loaded from one YAML file.

The names below load on first use (PEP 562): the MQTT receiver process needs
only `config.services` (its broker settings) and would otherwise import every
model of the site file, about 10 MB it never uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loader import ConfigError, load_config, parse_config
    from .model import SiteConfig

__all__ = ["ConfigError", "SiteConfig", "load_config", "parse_config"]


def __getattr__(name: str) -> Any:
    if name in ("ConfigError", "load_config", "parse_config"):
        from . import loader

        return getattr(loader, name)
    if name == "SiteConfig":
        from .model import SiteConfig

        return SiteConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
