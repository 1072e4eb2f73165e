"""The device model library (`stackwatch models` lists it)."""

from . import modbus_models, mqtt_models  # noqa: F401  (registers the models)
from .library import MODELS, DeviceModel, describe_models, expand_device

__all__ = ["MODELS", "DeviceModel", "describe_models", "expand_device"]
