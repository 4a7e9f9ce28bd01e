"""Tables for server-side tools and the agent loop.

``tasks`` (the workspace task tools), ``test_runs`` (stored test runs and their counts),
``tool_executions`` (a server tool run per session and tool_use id, for deduplication) and
``agent_traces`` (server steps spliced back into a session's next upstream request).
"""

from peewee import BooleanField, CharField, Database, DateTimeField, FloatField, IntegerField, Model, TextField


class Task(Model):
    title = CharField(max_length=500)
    description = TextField(default="")
    status = CharField(max_length=16, default="todo", index=True)
    priority = CharField(max_length=16, default="normal")
    owner = CharField(max_length=128, null=True, index=True)
    session_id = CharField(max_length=128, null=True)
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        table_name = "tasks"


class TestRun(Model):
    session_id = CharField(max_length=128, null=True, index=True)
    profile = CharField(max_length=64, null=True)
    command = TextField()
    status = CharField(max_length=16)
    exit_code = IntegerField(null=True)
    passed = IntegerField(default=0)
    failed = IntegerField(default=0)
    skipped = IntegerField(default=0)
    errors = IntegerField(default=0)
    duration_ms = FloatField(null=True)
    output = TextField(default="")
    coverage = TextField(null=True)
    created_at = DateTimeField(index=True)

    class Meta:
        table_name = "test_runs"


class ToolExecution(Model):
    session_id = CharField(max_length=128)
    tool_use_id = CharField(max_length=128)
    request_id = CharField(max_length=128, null=True)
    name = CharField(max_length=128)
    input = TextField()
    result = TextField()
    is_error = BooleanField(default=False)
    duration_ms = FloatField(null=True)
    created_at = DateTimeField()

    class Meta:
        table_name = "tool_executions"
        indexes = ((("session_id", "tool_use_id"), True),)


class AgentTrace(Model):
    session_id = CharField(max_length=128)
    anchor = CharField(max_length=64)
    messages = TextField()
    results = TextField(default="[]")
    created_at = DateTimeField()

    class Meta:
        table_name = "agent_traces"
        indexes = ((("session_id", "anchor"), True),)


def up(database: Database) -> None:
    tables = [Task, TestRun, ToolExecution, AgentTrace]
    with database.bind_ctx(tables):
        database.create_tables(tables, safe=True)
