"""Framework-free ML engine shared by every backend (no web framework imports here)."""
