"""The per-frame unit of a swap: crop stages as pure functions and the swap session that strings them together."""
