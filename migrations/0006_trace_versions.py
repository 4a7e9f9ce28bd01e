"""A covering index for the versions of a session's agent traces.

Every server-mode request of a session reads the id and creation time of its stored traces among
the anchors it resends. With the text columns in the same row, SQLite would otherwise read each
trace's overflow pages to answer; this index answers from itself (SQLite keeps the row id in
every index, PostgreSQL gets ``id`` as a column).
"""

from peewee import Database


def up(database: Database) -> None:
    database.execute_sql("CREATE INDEX IF NOT EXISTS agent_traces_versions "
                         "ON agent_traces (session_id, anchor, created_at, id)")
