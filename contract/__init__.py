"""The shared OpenAPI contract and its conformance suite (`python -m contract check ...`)."""
