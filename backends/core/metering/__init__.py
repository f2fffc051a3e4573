"""Credits: what one request costs, computed by the backend that did the work."""
