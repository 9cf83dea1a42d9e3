"""The contract every part shares: envelopes on the topics, and their serialisation."""

from schemas.envelope import (
    Command,
    Envelope,
    EnvelopeError,
    Fact,
    Result,
    ResultStatus,
    System,
    decode,
    encode,
)

__all__ = [
    "Command",
    "Envelope",
    "EnvelopeError",
    "Fact",
    "Result",
    "ResultStatus",
    "System",
    "decode",
    "encode",
]
