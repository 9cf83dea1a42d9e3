"""The two runtimes every consumer stands on, apart from what is built on them.

- `tracked`: a consumer group, at-least-once, with the *tracking* pattern on
  `sync.applied` (the writers' runtime): `TrackingConsumer` runs a `Handler`.
- `sink`: no group, exactly-once into SQLite (the reporting runtime): `SinkConsumer`
  runs a `Sink`.
"""

from consumers.base.sink import Message, Sink, SinkConfig, SinkConsumer, SinkError, Store, Unusable
from consumers.base.tracked import (
    ConsumerConfig,
    Handler,
    NotReady,
    Reassignable,
    TrackingConsumer,
)

__all__ = [
    "ConsumerConfig",
    "Handler",
    "Message",
    "NotReady",
    "Reassignable",
    "Sink",
    "SinkConfig",
    "SinkConsumer",
    "SinkError",
    "Store",
    "TrackingConsumer",
    "Unusable",
]
