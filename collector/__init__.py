"""Collectors: poll Modbus devices and subscribe to MQTT devices, producing quality-flagged readings."""
