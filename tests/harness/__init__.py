"""Helpers for tests that are not fixtures; the fixtures live in tests/conftest.py."""
