"""The gateway: a thin streaming reverse proxy in front of the selected ML API backend."""
