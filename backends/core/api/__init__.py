"""The framework-free API layer: body validation, dispatch to the engine, error bodies.

Both backends route every operation of ``shared_schemas.operations`` through here, so the
same input produces the same status code and body whichever framework serves it.
"""
