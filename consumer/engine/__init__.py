"""The worker process: the consumer thread, processing pool, delivery and offsets."""
