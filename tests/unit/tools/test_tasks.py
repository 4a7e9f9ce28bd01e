"""The workspace task tools keep a per-key task list in the database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from app.storage.models import Task
from app.tools.base import ToolContext, ToolError
from app.tools.tasks import TASK_TOOLS

TOOLS = {tool.name: tool for tool in TASK_TOOLS}
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def call(ctx: ToolContext, name: str, **args: Any) -> str:
    result = TOOLS[name].run(ctx, args)
    assert isinstance(result, str)
    return result


def rows() -> list[tuple[Any, ...]]:
    query = Task.select().order_by(Task.id)
    return [(t.id, t.title, t.description, t.status, t.priority, t.owner, t.session_id) for t in query]


def age(task_id: int) -> None:
    """Backdate a task's ``updated_at`` so a later change is visible."""
    Task.update(updated_at=LONG_AGO).where(Task.id == task_id).execute()


def updated_at(task_id: int) -> datetime:
    return Task.get_by_id(task_id).updated_at


def test_the_tools_are_offered_as_workspace_tools_with_strict_schemas() -> None:
    assert list(TOOLS) == ["workspace_task_create", "workspace_tasks_list", "workspace_task_update",
                           "workspace_task_set_status", "workspace_task_delete"]
    required = {name: tool.input_schema.get("required") for name, tool in TOOLS.items()}
    assert required == {"workspace_task_create": ["title"], "workspace_tasks_list": None,
                        "workspace_task_update": ["id"], "workspace_task_set_status": ["id", "status"],
                        "workspace_task_delete": ["id"]}
    create = TOOLS["workspace_task_create"].input_schema["properties"]
    assert create["priority"]["enum"] == ["low", "normal", "high"]
    assert create["status"]["enum"] == ["todo", "in_progress", "done", "blocked"]
    assert TOOLS["workspace_task_set_status"].definition()["input_schema"]["properties"]["status"]["enum"] == [
        "todo", "in_progress", "done", "blocked"]


def test_a_task_lives_from_creation_to_deletion(database: Any, ctx: ToolContext) -> None:
    assert call(ctx, "workspace_tasks_list") == "No tasks."
    assert call(ctx, "workspace_task_create", title="Fix login", priority="high") == \
        "Created task #1: Fix login (todo, high)"
    assert call(ctx, "workspace_task_create", title="  Write docs ", description="README first",
                status="in_progress") == "Created task #2: Write docs (in_progress, normal)"
    assert rows() == [(1, "Fix login", "", "todo", "high", "key-1", "sess-1"),
                      (2, "Write docs", "README first", "in_progress", "normal", "key-1", "sess-1")]
    assert call(ctx, "workspace_tasks_list") == \
        "#1 [todo] (high) Fix login\n#2 [in_progress] (normal) Write docs"

    age(1)
    assert call(ctx, "workspace_task_update", id=1, title="Fix login redirect", description="after SSO",
                priority="low") == "Updated task #1: Fix login redirect (todo, low)"
    assert updated_at(1) > LONG_AGO
    age(1)
    assert call(ctx, "workspace_task_set_status", id=1, status="done") == "Task #1 is now done: Fix login redirect"
    assert updated_at(1) > LONG_AGO
    assert rows()[0] == (1, "Fix login redirect", "after SSO", "done", "low", "key-1", "sess-1")
    assert call(ctx, "workspace_tasks_list", status="done") == "#1 [done] (low) Fix login redirect"
    assert call(ctx, "workspace_tasks_list", status="blocked") == "No tasks with status blocked."

    assert call(ctx, "workspace_task_delete", id=1) == "Deleted task #1: Fix login redirect"
    assert [row[0] for row in rows()] == [2]
    assert call(ctx, "workspace_tasks_list") == "#2 [in_progress] (normal) Write docs"


def test_update_changes_only_the_fields_given(database: Any, ctx: ToolContext) -> None:
    call(ctx, "workspace_task_create", title="Ship it", description="v1", priority="high")
    assert call(ctx, "workspace_task_update", id="#1", description="") == "Updated task #1: Ship it (todo, high)"
    assert rows() == [(1, "Ship it", "", "todo", "high", "key-1", "sess-1")]


def test_created_at_stays_while_updated_at_moves(database: Any, ctx: ToolContext) -> None:
    call(ctx, "workspace_task_create", title="Pin versions")
    Task.update(created_at=LONG_AGO, updated_at=LONG_AGO).execute()
    call(ctx, "workspace_task_set_status", id=1, status="blocked")
    task = Task.get_by_id(1)
    assert task.created_at == LONG_AGO
    assert task.updated_at > LONG_AGO


def test_the_list_stops_at_its_limit_and_says_how_many_are_left(database: Any, ctx: ToolContext) -> None:
    for n in range(3):
        call(ctx, "workspace_task_create", title=f"task {n}")
    assert call(ctx, "workspace_tasks_list", limit=2) == \
        "#1 [todo] (normal) task 0\n#2 [todo] (normal) task 1\n… 1 more (raise limit to see them)"
    assert call(ctx, "workspace_tasks_list", limit="3").count("\n") == 2


def test_a_key_never_sees_another_keys_tasks(database: Any, ctx: ToolContext) -> None:
    other = replace(ctx, api_key="key-2", session_id="sess-2")
    call(ctx, "workspace_task_create", title="Mine")
    assert call(other, "workspace_task_create", title="Theirs") == "Created task #2: Theirs (todo, normal)"
    assert call(ctx, "workspace_tasks_list") == "#1 [todo] (normal) Mine"
    assert call(other, "workspace_tasks_list") == "#2 [todo] (normal) Theirs"

    for name, args in [("workspace_task_update", {"title": "Hijacked"}),
                       ("workspace_task_set_status", {"status": "done"}),
                       ("workspace_task_delete", {})]:
        with pytest.raises(ToolError, match=r"^no task #1 "):
            call(other, name, id=1, **args)
    assert rows() == [(1, "Mine", "", "todo", "normal", "key-1", "sess-1"),
                      (2, "Theirs", "", "todo", "normal", "key-2", "sess-2")]


def test_requests_without_a_key_share_their_own_scope(database: Any, ctx: ToolContext) -> None:
    anonymous = replace(ctx, api_key=None)
    call(ctx, "workspace_task_create", title="Keyed")
    call(anonymous, "workspace_task_create", title="Open")
    assert call(replace(anonymous, session_id="sess-9"), "workspace_tasks_list") == "#2 [todo] (normal) Open"
    assert Task.get_by_id(2).owner is None
    with pytest.raises(ToolError, match="no task #1"):
        call(anonymous, "workspace_task_delete", id=1)


def test_a_tool_on_a_worker_thread_opens_and_returns_its_own_connection(database: Any, ctx: ToolContext) -> None:
    def work() -> tuple[str, bool]:
        return call(ctx, "workspace_task_create", title="From a thread"), database.is_closed()

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(work).result() == ("Created task #1: From a thread (todo, normal)", True)
    assert rows() == [(1, "From a thread", "", "todo", "normal", "key-1", "sess-1")]


@pytest.mark.parametrize(("name", "args", "message"), [
    ("workspace_task_create", {}, "missing required argument 'title'"),
    ("workspace_task_create", {"title": "   "}, "argument 'title' must not be empty"),
    ("workspace_task_create", {"title": "x" * 501}, "argument 'title' must be at most 500 characters"),
    ("workspace_task_create", {"title": 7}, "argument 'title' must be a string"),
    ("workspace_task_create", {"title": "t", "priority": "urgent"},
     "argument 'priority' must be one of low, normal, high (got 'urgent')"),
    ("workspace_task_create", {"title": "t", "status": "doing"},
     "argument 'status' must be one of todo, in_progress, done, blocked (got 'doing')"),
    ("workspace_task_create", {"title": "t", "description": ["a"]}, "argument 'description' must be a string"),
    ("workspace_tasks_list", {"status": "open"},
     "argument 'status' must be one of todo, in_progress, done, blocked (got 'open')"),
    ("workspace_tasks_list", {"limit": 0}, "argument 'limit' must be at least 1"),
    ("workspace_tasks_list", {"limit": "many"}, "argument 'limit' must be a whole number"),
    ("workspace_task_update", {"title": "t"}, "missing required argument 'id'"),
    ("workspace_task_update", {"id": 1}, "nothing to update: give title, description or priority"),
    ("workspace_task_update", {"id": 1, "title": ""}, "argument 'title' must not be empty"),
    ("workspace_task_update", {"id": 1, "priority": "HIGH"},
     "argument 'priority' must be one of low, normal, high (got 'HIGH')"),
    ("workspace_task_update", {"id": 99, "title": "t"}, "no task #99 (workspace_tasks_list shows your tasks)"),
    ("workspace_task_set_status", {"id": 1},
     "missing required argument 'status' (one of todo, in_progress, done, blocked)"),
    ("workspace_task_set_status", {"id": 1, "status": "finished"},
     "argument 'status' must be one of todo, in_progress, done, blocked (got 'finished')"),
    ("workspace_task_set_status", {"status": "done"}, "missing required argument 'id'"),
    ("workspace_task_set_status", {"id": 99, "status": "done"}, "no task #99"),
    ("workspace_task_delete", {}, "missing required argument 'id'"),
    ("workspace_task_delete", {"id": 99}, "no task #99"),
    ("workspace_task_delete", {"id": "one"}, "argument 'id' must be a task number such as 3 (got 'one')"),
    ("workspace_task_delete", {"id": 1.5}, "argument 'id' must be a task number such as 3 (got 1.5)"),
    ("workspace_task_delete", {"id": True}, "argument 'id' must be a task number such as 3 (got True)"),
    ("workspace_task_delete", {"id": 0}, "argument 'id' must be a task number such as 3 (got 0)"),
    ("workspace_task_delete", {"id": -1}, "argument 'id' must be a task number such as 3 (got -1)"),
])
def test_invalid_arguments_are_refused_and_change_nothing(database: Any, ctx: ToolContext, name: str,
                                                          args: dict[str, Any], message: str) -> None:
    call(ctx, "workspace_task_create", title="Existing")
    before = [(*row, Task.get_by_id(row[0]).updated_at) for row in rows()]
    with pytest.raises(ToolError) as raised:
        call(ctx, name, **args)
    assert str(raised.value).startswith(message)
    assert [(*row, Task.get_by_id(row[0]).updated_at) for row in rows()] == before
