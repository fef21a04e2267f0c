"""User messages as users see them: list, show, delete (CINDER-CONTRACT §1.9).

The failure paths write them (ashbox.db.messages.add, in the transaction of
the failure); here they are read and deleted. Cinder's message policy is
checked first; then a caller sees its own project's messages, and an admin
every project's, as Cinder's `project_only` lookups give them. Cinder's list
query has not been narrowed to the project since it gained pagination (3.5),
so there anyone lists every project's messages; ashbox keeps Cinder's original
rule for lists too.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from ashbox.backups.access import scope
from ashbox.backups.volumes import VolumeOps
from ashbox.db import messages as message_rows
from ashbox.db.models import Message
from ashbox.errors import MessageNotFound
from ashbox.records import ListQuery, MessageRecord, RequestContext
from ashbox.user_messages import user_message

log = logging.getLogger(__name__)

GET_ALL_RULE = "message:get_all"
GET_RULE = "message:get"
DELETE_RULE = "message:delete"


class MessageOps(VolumeOps):
    def get_message(self, ctx: RequestContext, message_id: str) -> MessageRecord:
        ctx.authorize(GET_RULE)
        with self.db.reading() as s:
            return self._message_record(load_message(s, ctx, message_id))

    def list_messages(
        self, ctx: RequestContext, query: ListQuery, *, matches_nothing: bool = False
    ) -> list[MessageRecord]:
        """A page of the messages the caller may see; `matches_nothing`: a filter
        on a field messages do not have (the policy is checked all the same)."""
        ctx.authorize(GET_ALL_RULE)
        if matches_nothing:
            return []
        with self.db.reading() as s:
            marker = load_message(s, ctx, query.marker) if query.marker is not None else None
            rows, _total = message_rows.list_messages(s, scope(ctx), query, marker)
            return [self._message_record(m) for m in rows]

    def delete_message(self, ctx: RequestContext, message_id: str) -> None:
        ctx.authorize(DELETE_RULE)
        with self.db.transaction() as s:
            load_message(s, ctx, message_id)
            message_rows.delete(s, message_id)
        log.info("message deleted message_id=%s", message_id)

    def _message_record(self, m: Message) -> MessageRecord:
        return MessageRecord(
            id=m.id,
            project_id=m.project_id,
            request_id=m.request_id,
            resource_type=m.resource_type,
            resource_uuid=m.resource_uuid,
            event_id=m.event_id,
            action_id=m.action_id,
            detail_id=m.detail_id,
            message_level=m.message_level,
            user_message=user_message(m.action_id, m.detail_id),
            created_at=m.created_at,
            guaranteed_until=m.created_at + timedelta(seconds=self.settings.message_ttl),
        )


def load_message(s: Session, ctx: RequestContext, message_id: str) -> Message:
    """The message the request may see; MessageNotFound otherwise."""
    message = message_rows.get(s, message_id)
    if message is None or scope(ctx) not in (None, message.project_id):
        raise MessageNotFound(message_id)
    return message
