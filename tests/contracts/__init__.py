"""Suites of promises that every implementation of a role must keep."""
