"""Helpers shared by the test suites (plain functions; fixtures live in the conftest files)."""
