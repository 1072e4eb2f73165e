"""MQTT subscription: topic → device routing and payload mapping."""
