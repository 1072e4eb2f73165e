"""Modbus polling: register maps compiled into read plans, decoding, per-gateway scheduling."""
