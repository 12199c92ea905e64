"""The durable queue's runtime: the runner (one worker per kind) and the workers."""
