"""Environments: every supported Gymnasium environment's profile, and whether a window can open."""
