"""The workspace task tools: a small task list the model keeps in the database.

A task belongs to the API key of the request that created it (``owner``; requests without a key
share the ``NULL`` scope). Every query filters by owner, so another key's task reads as "no task
#N", exactly like one that never existed. Each tool opens its own connection context because
tools run on worker threads, outside any Flask request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from peewee import Expression

from app.storage.db import db
from app.storage.models import Task, utcnow
from app.tools.base import Tool, ToolContext, ToolError, arg, int_arg, str_arg

STATUSES = ("todo", "in_progress", "done", "blocked")
PRIORITIES = ("low", "normal", "high")
TITLE_MAX = 500  # Task.title's column width
LIST_DEFAULT = 50
LIST_MAX = 200

_ID = {"type": "integer", "minimum": 1, "description": "The task number, as shown by workspace_tasks_list."}
_TITLE = {"type": "string", "minLength": 1, "maxLength": TITLE_MAX, "description": "A short summary."}
_DESCRIPTION = {"type": "string", "description": "Details, acceptance criteria or notes."}
_PRIORITY = {"type": "string", "enum": list(PRIORITIES)}
_STATUS = {"type": "string", "enum": list(STATUSES)}


def _schema(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:  # JSON Schema draft 4 (still met in the wild) forbids an empty "required"
        schema["required"] = list(required)
    return schema


def _owned(ctx: ToolContext) -> Expression:
    """The rows ``ctx``'s key may see: its own, or the keyless scope's."""
    return Task.owner.is_null() if ctx.api_key is None else Task.owner == ctx.api_key


def _choice(args: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = str_arg(args, name)
    if value is not None and value not in allowed:
        raise ToolError(f"argument '{name}' must be one of {', '.join(allowed)} (got {value!r})")
    return value


def _title(args: Mapping[str, Any], *, required: bool) -> str | None:
    value = str_arg(args, "title", required=required)
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ToolError("argument 'title' must not be empty")
    if len(value) > TITLE_MAX:
        raise ToolError(f"argument 'title' must be at most {TITLE_MAX} characters")
    return value


def _task_id(args: Mapping[str, Any]) -> int:
    value = arg(args, "id", required=True)
    text = "" if isinstance(value, bool) else str(value).strip().removeprefix("#")
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ToolError(f"argument 'id' must be a task number such as 3 (got {value!r})")
    return int(text)


def _find(ctx: ToolContext, task_id: int) -> Task:
    task = Task.get_or_none((Task.id == task_id) & _owned(ctx))
    if task is None:
        raise ToolError(f"no task #{task_id} (workspace_tasks_list shows your tasks)")
    return task


def _change(ctx: ToolContext, task_id: int, changes: dict[str, Any]) -> Task:
    """Apply ``changes`` to the caller's task ``task_id`` and refresh its ``updated_at``."""
    changes = {**changes, "updated_at": utcnow()}
    with db.connection_context(), db.atomic():
        task = _find(ctx, task_id)
        for name, value in changes.items():
            setattr(task, name, value)
        task.save(only=list(changes))
    return task


def _summary(task: Task) -> str:
    return f"#{task.id}: {task.title} ({task.status}, {task.priority})"


def create_task(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Create a task owned by the caller's key; returns ``Created task #N: …``."""
    title = _title(args, required=True)
    description = str_arg(args, "description", default="")
    priority = _choice(args, "priority", PRIORITIES) or "normal"
    status = _choice(args, "status", STATUSES) or "todo"
    now = utcnow()
    with db.connection_context():
        task = Task.create(title=title, description=description, priority=priority, status=status,
                           owner=ctx.api_key, session_id=ctx.session_id, created_at=now, updated_at=now)
    return f"Created task {_summary(task)}"


def list_tasks(ctx: ToolContext, args: dict[str, Any]) -> str:
    """The caller's tasks, oldest first, one ``#id [status] (priority) title`` line each."""
    status = _choice(args, "status", STATUSES)
    limit = min(int_arg(args, "limit", default=LIST_DEFAULT, minimum=1) or LIST_DEFAULT, LIST_MAX)
    where = _owned(ctx) if status is None else _owned(ctx) & (Task.status == status)
    with db.connection_context():
        tasks = list(Task.select().where(where).order_by(Task.id).limit(limit))
        total = Task.select().where(where).count() if len(tasks) == limit else len(tasks)
    if not tasks:
        return "No tasks." if status is None else f"No tasks with status {status}."
    lines = [f"#{t.id} [{t.status}] ({t.priority}) {t.title}" for t in tasks]
    if total > len(tasks):
        lines.append(f"… {total - len(tasks)} more (raise limit to see them)")
    return "\n".join(lines)


def update_task(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Change a task's title, description or priority; returns ``Updated task #N: …``."""
    task_id = _task_id(args)
    changes = {"title": _title(args, required=False), "description": str_arg(args, "description"),
               "priority": _choice(args, "priority", PRIORITIES)}
    changes = {name: value for name, value in changes.items() if value is not None}
    if not changes:
        raise ToolError("nothing to update: give title, description or priority")
    return f"Updated task {_summary(_change(ctx, task_id, changes))}"


def set_task_status(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Move a task to another status; returns ``Task #N is now …``."""
    task_id = _task_id(args)
    status = _choice(args, "status", STATUSES)
    if status is None:
        raise ToolError(f"missing required argument 'status' (one of {', '.join(STATUSES)})")
    task = _change(ctx, task_id, {"status": status})
    return f"Task #{task.id} is now {task.status}: {task.title}"


def delete_task(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Delete one of the caller's tasks; returns ``Deleted task #N: …``."""
    task_id = _task_id(args)
    with db.connection_context(), db.atomic():
        task = _find(ctx, task_id)
        task.delete_instance()
    return f"Deleted task #{task.id}: {task.title}"


TASK_TOOLS: tuple[Tool, ...] = (
    Tool(
        name="workspace_task_create",
        description="Add a task to this workspace's task list. Returns its number (#N) for the other task tools.",
        input_schema=_schema({"title": _TITLE, "description": _DESCRIPTION,
                              "priority": {**_PRIORITY, "default": "normal"},
                              "status": {**_STATUS, "default": "todo"}}, "title"),
        run=create_task,
    ),
    Tool(
        name="workspace_tasks_list",
        description="List this workspace's tasks, one line each: #id [status] (priority) title.",
        input_schema=_schema({"status": {**_STATUS, "description": "Only tasks with this status."},
                              "limit": {"type": "integer", "minimum": 1, "maximum": LIST_MAX,
                                        "default": LIST_DEFAULT}}),
        run=list_tasks,
    ),
    Tool(
        name="workspace_task_update",
        description="Change a task's title, description or priority (use workspace_task_set_status for status).",
        input_schema=_schema({"id": _ID, "title": _TITLE, "description": _DESCRIPTION,
                              "priority": _PRIORITY}, "id"),
        run=update_task,
    ),
    Tool(
        name="workspace_task_set_status",
        description="Set a task's status: todo, in_progress, done or blocked.",
        input_schema=_schema({"id": _ID, "status": _STATUS}, "id", "status"),
        run=set_task_status,
    ),
    Tool(
        name="workspace_task_delete",
        description="Delete a task from this workspace's task list.",
        input_schema=_schema({"id": _ID}, "id"),
        run=delete_task,
    ),
)
