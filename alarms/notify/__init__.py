"""On-call notifications: routing, rotations, escalation, grouping, channels, acknowledge links and replies."""
