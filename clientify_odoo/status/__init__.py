"""What `status` and the live view read: Kafka's state, the services' health, the
per-flow counts."""
