"""Recorder drivers (one module per recorder family), their registry, and the simulated recorder."""
