"""The contract every part shares: envelopes on the topics, and their serialisation."""

from schemas.envelope import (
    AnyEnvelope,
    Command,
    ConflictReport,
    DeadLetter,
    EchoNotice,
    Envelope,
    EnvelopeError,
    Fact,
    Requeue,
    Result,
    ResultStatus,
    Routed,
    Skip,
    System,
    decode,
    encode,
)

__all__ = [
    "AnyEnvelope",
    "Command",
    "ConflictReport",
    "DeadLetter",
    "EchoNotice",
    "Envelope",
    "EnvelopeError",
    "Fact",
    "Requeue",
    "Result",
    "ResultStatus",
    "Routed",
    "Skip",
    "System",
    "decode",
    "encode",
]
