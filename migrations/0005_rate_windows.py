"""Sliding rate-limit windows: one row per admitted request (or its tokens) with when it was taken.

``rate_window_entries`` holds, per scope, the amounts taken in the last minute; a take sums the
rows newer than 60 s under the lock of the scope's ``usage_counters`` row (period ``window``), so
workers and instances on one database never admit more than the limit in any 60 s.
"""

from peewee import BigIntegerField, CharField, CompositeKey, Database, DoubleField, Model


class RateWindowEntry(Model):
    scope = CharField(max_length=200)
    entry = CharField(max_length=32)
    taken_at = DoubleField()
    amount = BigIntegerField()

    class Meta:
        table_name = "rate_window_entries"
        primary_key = CompositeKey("scope", "entry")
        indexes = ((("scope", "taken_at"), False),)


def up(database: Database) -> None:
    with database.bind_ctx([RateWindowEntry]):
        database.create_tables([RateWindowEntry], safe=True)
