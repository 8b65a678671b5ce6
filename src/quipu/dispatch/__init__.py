"""The dispatcher: queues scan jobs, splits tasks into scanner jobs, advances phases, sweeps."""
