"""Helpers shared by the tests: real recorders, volumes, docks and stores to test against."""
