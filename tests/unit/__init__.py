"""Unit tests: no broker, no server, seconds."""
