"""Kafka, as every part of the product talks to it: one publisher, one reader, one
admin, and the one place their clients are built."""
