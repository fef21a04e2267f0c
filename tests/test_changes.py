"""Announcements wake the requests listening for an object, from any thread."""

from __future__ import annotations

import asyncio
import threading

from ashbox.changes import Changes, announced


def test_an_announcement_from_another_thread_wakes_only_its_listeners() -> None:
    changes = Changes()

    async def scenario() -> tuple[bool, bool]:
        with changes.listening("b1") as mine, changes.listening("b2") as other:
            threading.Thread(target=changes.announce, args=("b1", None)).start()
            return await announced(mine, 30), await announced(other, 0.05)

    assert asyncio.run(scenario()) == (True, False)


def test_an_announcement_before_listening_is_not_kept() -> None:
    changes = Changes()
    changes.announce("b1")  # nobody listens: nothing to keep

    async def scenario() -> bool:
        with changes.listening("b1") as event:
            return await announced(event, 0.05)

    assert asyncio.run(scenario()) is False


def test_listeners_are_forgotten_once_they_stop_listening() -> None:
    changes = Changes()

    async def scenario() -> None:
        with changes.listening("b1"), changes.listening("b1"):
            pass
        with changes.listening("b2") as event:
            changes.announce("b2")
            assert await announced(event, 30)

    asyncio.run(scenario())
    assert changes.listening_to() == set()
