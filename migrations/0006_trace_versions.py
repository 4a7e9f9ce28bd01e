"""Agent traces per session and API key, and a covering index for their versions.

Every server-mode request of a session reads the id and creation time of its stored traces among
the anchors it resends. With the text columns in the same row, SQLite would otherwise read each
trace's overflow pages to answer; ``agent_traces_versions`` answers from itself (SQLite keeps the
row id in every index, PostgreSQL gets ``id`` as a column).

Traces are now stored under :func:`app.agent.splice.trace_session` (the session as one API key
sees it) instead of the raw session id. A session's existing traces move to that key when one API
key made all its recorded requests; the others cannot be told apart and are dropped (those
sessions go on without the steps behind their older answers).
"""

from peewee import CharField, Database, Model

from app.agent.splice import trace_session


class AgentTrace(Model):
    session_id = CharField(max_length=128)

    class Meta:
        table_name = "agent_traces"


class ClientRequest(Model):
    session_id = CharField(max_length=128, null=True)
    api_key = CharField(max_length=128, null=True)

    class Meta:
        table_name = "client_requests"


def up(database: Database) -> None:
    database.execute_sql("CREATE INDEX IF NOT EXISTS agent_traces_versions "
                         "ON agent_traces (session_id, anchor, created_at, id)")
    with database.bind_ctx([AgentTrace, ClientRequest]):
        for session in list(AgentTrace.select(AgentTrace.session_id).distinct().scalars()):
            keys = list(ClientRequest.select(ClientRequest.api_key).distinct()
                        .where(ClientRequest.session_id == session).scalars())
            moved = AgentTrace.session_id == session
            if len(keys) == 1:
                AgentTrace.update(session_id=trace_session(session, keys[0])).where(moved).execute()
            else:
                AgentTrace.delete().where(moved).execute()
