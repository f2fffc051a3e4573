"""The inference runtime: bounded per-model queues run in dynamic batches by one worker each."""
