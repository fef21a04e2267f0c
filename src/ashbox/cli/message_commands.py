"""`ashbox message list|show|delete`: the user messages that tell why an
operation failed (docs/cli.md, "User messages")."""

from __future__ import annotations

import argparse

from ashbox.cli.context import Context
from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.output import Format, render_list, render_object

# The list's filters: (flag's dest, the API's filter).
FILTERS = (
    ("resource_uuid", "resource_uuid"),
    ("resource_type", "resource_type"),
    ("event_id", "event_id"),
    ("request_id", "request_id"),
    ("level", "message_level"),
)
MESSAGE_FIELDS = (
    "id",
    "resource_type",
    "resource_uuid",
    "event_id",
    "user_message",
    "message_level",
    "request_id",
    "created_at",
    "guaranteed_until",
)
_COLUMNS = (
    ("ID", "id"),
    ("Resource Type", "resource_type"),
    ("Resource UUID", "resource_uuid"),
    ("Event ID", "event_id"),
    ("User Message", "user_message"),
    ("Level", "message_level"),
    ("Created At", "created_at"),
)


def list_(ctx: Context, args: argparse.Namespace) -> ExitCode:
    filters = {key: getattr(args, dest) for dest, key in FILTERS if getattr(args, dest)}
    messages = ctx.client.list_messages(filters)
    ctx.print(render_list(messages, Format(args.format), _COLUMNS))
    return ExitCode.OK


def show(ctx: Context, args: argparse.Namespace) -> ExitCode:
    message = ctx.client.get_message(args.message)
    ctx.print(render_object(message, Format(args.format), MESSAGE_FIELDS))
    return ExitCode.OK


def delete(ctx: Context, args: argparse.Namespace) -> ExitCode:
    ctx.client.delete_message(args.message)
    return ExitCode.OK
