"""Keys in the database, shared budget / rate-limit counters, and a cost per usage row.

``api_keys`` keeps only the SHA-256 of each key. ``usage_counters`` holds one integer per
(scope, period) — tokens, micro-USD or requests — changed only by conditional increments so
every worker and instance sees the same count. ``cost_usd`` is added to ``client_requests``
and ``upstream_attempts`` (NULL when the model has no price).
"""

from peewee import BigIntegerField, BooleanField, CharField, CompositeKey, Database, DateTimeField, FloatField, Model
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator
from playhouse.migrate import migrate as run


class ApiKey(Model):
    name = CharField(max_length=128, index=True)
    key_hash = CharField(max_length=64, unique=True)
    admin = BooleanField(default=False)
    created_at = DateTimeField()
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "api_keys"


class UsageCounter(Model):
    scope = CharField(max_length=200)
    period = CharField(max_length=32)
    used = BigIntegerField(default=0)

    class Meta:
        table_name = "usage_counters"
        primary_key = CompositeKey("scope", "period")


def up(database: Database) -> None:
    tables = [ApiKey, UsageCounter]
    with database.bind_ctx(tables):
        database.create_tables(tables, safe=True)
    migrator = (PostgresqlMigrator(database) if "postgres" in type(database).__name__.lower()
                else SqliteMigrator(database))
    run(migrator.add_column("client_requests", "cost_usd", FloatField(null=True)),
        migrator.add_column("upstream_attempts", "cost_usd", FloatField(null=True)))
