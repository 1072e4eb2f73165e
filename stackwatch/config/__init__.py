"""The one typed configuration model, loaded from one YAML file."""

from .loader import ConfigError, load_config, parse_config
from .model import SiteConfig

__all__ = ["ConfigError", "SiteConfig", "load_config", "parse_config"]
