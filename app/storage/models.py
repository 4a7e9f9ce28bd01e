"""Tables, as peewee models bound to the proxy in :mod:`app.storage.db`.

The schema itself is created by the numbered files in ``migrations/``; these classes describe
the current shape for queries. Times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DateTimeField,
    DoubleField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from app.storage.db import db


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class BaseModel(Model):
    # peewee gives every model without a primary key of its own an ``id = AutoField()``; this
    # annotation only tells the type checker so (no value, so no field and no schema change).
    id: AutoField[int]

    class Meta:
        database = db


class Session(BaseModel):
    """A conversation, identified by the client's session id."""

    id = CharField(primary_key=True, max_length=128)  # type: ignore[assignment]  # a text key instead of the int id
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


class RateWindowEntry(BaseModel):
    """One amount taken in a sliding rate-limit window (epoch seconds), kept for a minute."""

    scope = CharField(max_length=200)
    entry = CharField(max_length=32)
    taken_at = DoubleField()
    amount = BigIntegerField()

    class Meta:
        table_name = "rate_window_entries"
        primary_key = CompositeKey("scope", "entry")
        indexes = ((("scope", "taken_at"), False),)


class Task(BaseModel):
    """A workspace task the model keeps with the ``workspace_task_*`` tools."""

    title = CharField(max_length=500)
    description = TextField(default="")
    status = CharField(max_length=16, default="todo", index=True)  # todo | in_progress | done | blocked
    priority = CharField(max_length=16, default="normal")  # low | normal | high
    owner = CharField(max_length=128, null=True, index=True)
    session_id = CharField(max_length=128, null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "tasks"


class TestRun(BaseModel):
    """One run of the workspace's test command, with the counts parsed from its output."""

    __test__ = False  # not a pytest test class
    session_id = CharField(max_length=128, null=True, index=True)
    profile = CharField(max_length=64, null=True)
    command = TextField()  # JSON argv
    status = CharField(max_length=16)  # passed | failed | error | timeout
    exit_code = IntegerField(null=True)
    passed = IntegerField(default=0)
    failed = IntegerField(default=0)
    skipped = IntegerField(default=0)
    errors = IntegerField(default=0)
    duration_ms = FloatField(null=True)
    output = TextField(default="")  # the tail of stdout + stderr
    coverage = TextField(null=True)  # JSON summary, when a coverage file was found
    created_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "test_runs"


class ToolExecution(BaseModel):
    """A server tool run, kept so a repeated tool_use id in a session reuses its result."""

    session_id = CharField(max_length=128)
    owner = CharField(max_length=128, default="")  # the key id of the request that ran it; '' without keys
    tool_use_id = CharField(max_length=128)
    request_id = CharField(max_length=128, null=True)
    name = CharField(max_length=128)
    input = TextField()  # JSON
    result = TextField()  # JSON: a string or content blocks
    is_error = BooleanField(default=False)
    duration_ms = FloatField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "tool_executions"
        indexes = ((("session_id", "owner", "tool_use_id"), True),)


class AgentTrace(BaseModel):
    """The server steps behind one assistant message a client received, for splicing back.

    ``anchor`` identifies that message as the client will resend it; ``messages`` (JSON) is what
    the model really said and was told, to stand in for it; ``results`` (JSON) are server tool
    results that go at the front of the next user turn (when the message also asked the client).
    """

    session_id = CharField(max_length=128)
    anchor = CharField(max_length=64)
    messages = TextField()
    results = TextField(default="[]")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "agent_traces"
        # Migration 0006 adds agent_traces_versions (session_id, anchor, created_at, id): it covers
        # the version lookup of app.agent.splice.
        indexes = ((("session_id", "anchor"), True),)


ALL_MODELS = (Session, Turn, ClientRequest, UpstreamAttempt, ApiKey, UsageCounter, RateWindowEntry, Task, TestRun,
              ToolExecution, AgentTrace)
