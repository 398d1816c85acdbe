"""Real-time plumbing: the timed event queue, the clock loop, shared-memory rings."""
