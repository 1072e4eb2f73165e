"""Device simulators over the real protocols, driven by a room model. Never imports service code."""
