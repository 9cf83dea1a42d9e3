"""The whole product end to end: every service running, chaos, crash recovery, `up`."""
