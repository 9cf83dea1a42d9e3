"""The shell's local stack: the Kafka broker run from its jars, the supervisor, the
`up` plan and its live view."""
