"""The scan: stream the fleet through the core's decision, and report it."""
