"""Server tool runs per API key: ``tool_executions.owner``.

A run is reused (the deduplication window) and shown in a session's transcript only for the key
that ran it, so another key sending the same session id neither gets its results nor shows up in
the owner's transcript. ``owner`` is the key id of the request that ran the tool, ``''`` without
keys (an empty string rather than NULL, so the unique index covers requests without a key too).
Existing runs take the key of their recorded request. The unique index over the session and
tool_use id alone is dropped, whatever its name.
"""

from peewee import Database

NEW_INDEX = "toolexecution_session_id_owner_tool_use_id"  # the name peewee gives the model's index


def up(database: Database) -> None:
    if "owner" not in {column.name for column in database.get_columns("tool_executions")}:
        database.execute_sql("ALTER TABLE tool_executions ADD COLUMN owner VARCHAR(128) NOT NULL DEFAULT ''")
    database.execute_sql(
        "UPDATE tool_executions SET owner = (SELECT client_requests.api_key FROM client_requests "
        "WHERE client_requests.request_id = tool_executions.request_id) "
        "WHERE owner = '' AND request_id IN (SELECT request_id FROM client_requests WHERE api_key IS NOT NULL)")
    for index in database.get_indexes("tool_executions"):
        if index.unique and index.columns == ["session_id", "tool_use_id"]:
            database.execute_sql(f'DROP INDEX "{index.name}"')
    database.execute_sql(f"CREATE UNIQUE INDEX IF NOT EXISTS {NEW_INDEX} "
                         "ON tool_executions (session_id, owner, tool_use_id)")
