"""Sessions, incrementally stored transcript turns, client requests and upstream attempts.

The tables are declared here as they were at this version, so later model changes never
change what this migration creates.
"""

from peewee import (
    BooleanField,
    CharField,
    Database,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)


class Session(Model):
    id = CharField(primary_key=True, max_length=128)
    owner = CharField(null=True, index=True, max_length=128)
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        table_name = "sessions"


class Turn(Model):
    session = ForeignKeyField(Session, on_delete="CASCADE")
    parent = ForeignKeyField("self", null=True, on_delete="CASCADE")
    position = IntegerField()
    role = CharField(max_length=16)
    content = TextField()
    chain_hash = CharField(max_length=64)
    source = CharField(max_length=16, default="client")
    created_at = DateTimeField()

    class Meta:
        table_name = "turns"
        indexes = ((("session", "chain_hash"), True),)


class ClientRequest(Model):
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
    created_at = DateTimeField(index=True)

    class Meta:
        table_name = "client_requests"


class UpstreamAttempt(Model):
    request = ForeignKeyField(ClientRequest, on_delete="CASCADE")
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
    created_at = DateTimeField()

    class Meta:
        table_name = "upstream_attempts"


def up(database: Database) -> None:
    tables = [Session, Turn, ClientRequest, UpstreamAttempt]
    with database.bind_ctx(tables):
        database.create_tables(tables)
