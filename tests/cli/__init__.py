"""The commands as users run them: real processes, real ports, real Kafka."""
