"""A species: many worker processes, on one or many machines, training one memory."""
