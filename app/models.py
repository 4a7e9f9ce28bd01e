"""Tables, as peewee models bound to the proxy in :mod:`app.db`.

The schema itself is created by the numbered files in ``migrations/``; these classes describe
the current shape for queries. Times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from app.db import db


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class BaseModel(Model):
    class Meta:
        database = db


class Session(BaseModel):
    """A conversation, identified by the client's session id."""

    id = CharField(primary_key=True, max_length=128)
    owner = CharField(null=True, index=True, max_length=128)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "sessions"


class Turn(BaseModel):
    """One message of a session, stored once.

    ``chain_hash`` covers the message and every message before it, so a resent history
    matches its stored prefix in one lookup; a rewritten history (compaction) gets new rows
    whose ``parent`` is the last shared turn — a new branch, never a duplicate.
    """

    session = ForeignKeyField(Session, backref="turns", on_delete="CASCADE")
    parent = ForeignKeyField("self", null=True, backref="children", on_delete="CASCADE")
    position = IntegerField()
    role = CharField(max_length=16)
    content = TextField()
    chain_hash = CharField(max_length=64)
    source = CharField(max_length=16, default="client")  # client | response
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "turns"
        indexes = ((("session", "chain_hash"), True),)


class ClientRequest(BaseModel):
    """One request a client made, with its outcome and total usage."""

    request_id = CharField(max_length=128, unique=True)
    session_id = CharField(max_length=128, null=True, index=True)
    api_key = CharField(max_length=128, null=True)
    path = CharField(max_length=64)
    model_requested = CharField(max_length=128, null=True)
    provider = CharField(max_length=32, null=True)
    model = CharField(max_length=128, null=True)
    stream = BooleanField(default=False)
    status = IntegerField(null=True)
    error_type = CharField(max_length=64, null=True)
    route_reason = CharField(max_length=64, null=True)
    input_tokens = IntegerField(default=0)
    output_tokens = IntegerField(default=0)
    cache_read_input_tokens = IntegerField(default=0)
    cache_creation_input_tokens = IntegerField(default=0)
    duration_ms = FloatField(null=True)
    cost_usd = FloatField(null=True)  # None: the model has no price
    created_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "client_requests"


class UpstreamAttempt(BaseModel):
    """One call to an upstream made for a client request (retries and fallbacks included)."""

    request = ForeignKeyField(ClientRequest, backref="attempts", on_delete="CASCADE")
    attempt = IntegerField()
    provider = CharField(max_length=32)
    model = CharField(max_length=128)
    status = IntegerField(null=True)
    error_type = CharField(max_length=64, null=True)
    route_reason = CharField(max_length=64, null=True)
    input_tokens = IntegerField(default=0)
    output_tokens = IntegerField(default=0)
    cache_read_input_tokens = IntegerField(default=0)
    cache_creation_input_tokens = IntegerField(default=0)
    latency_ms = FloatField(null=True)
    cost_usd = FloatField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "upstream_attempts"


class ApiKey(BaseModel):
    """An inbound key kept in the database (besides LYNKR_API_KEYS); only its SHA-256 is stored."""

    name = CharField(max_length=128, index=True)
    key_hash = CharField(max_length=64, unique=True)
    admin = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "api_keys"


class UsageCounter(BaseModel):
    """A shared counter (a budget or a rate-limit window), changed only by atomic increments."""

    scope = CharField(max_length=200)
    period = CharField(max_length=32)
    used = BigIntegerField(default=0)

    class Meta:
        table_name = "usage_counters"
        primary_key = CompositeKey("scope", "period")


ALL_MODELS = (Session, Turn, ClientRequest, UpstreamAttempt, ApiKey, UsageCounter)
