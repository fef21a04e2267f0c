"""docs/states.md and ashbox.transitions say the same, and a transition is one compare-and-swap."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ashbox.db import lifecycle, outbox
from ashbox.db.engine import Database
from ashbox.db.models import Volume
from ashbox.statuses import VolumeStatus
from ashbox.transitions import MACHINES, NEW, PREVIOUS, VOLUME

STATES = Path(__file__).resolve().parents[1] / "docs" / "states.md"
_ROW = re.compile(r"^\| `(?P<event>[a-z_-]+)` \| (?P<source>[^|]+) \| (?P<target>[^|]+) \|$")


def _documented() -> dict[str, set[tuple[str, frozenset[str], str]]]:
    text = STATES.read_text()
    declared = text.split("## Declared transitions", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, set[tuple[str, frozenset[str], str]]] = {}
    resource = ""
    for line in declared.splitlines():
        if line.startswith("### "):
            resource = line[4:].strip()
            tables[resource] = set()
        elif m := _ROW.match(line):
            source = frozenset(
                NEW if part.strip() == "(new row)" else part.strip().strip("`")
                for part in m["source"].split(",")
            )
            target = m["target"].strip()
            target = PREVIOUS if target == "its `previous_status`" else target.strip("`")
            tables[resource].add((m["event"], source, target))
    return tables


def test_the_documented_transitions_are_the_declared_ones() -> None:
    declared = {
        str(resource): {(t.event, t.source, t.target) for t in machine}
        for resource, machine in MACHINES.items()
    }
    assert _documented() == declared


def test_a_transition_changes_nothing_from_a_status_it_does_not_start_from(db: Database) -> None:
    volume_id = _volume(db, VolumeStatus.IN_USE)
    with db.transaction() as s:
        assert not lifecycle.apply(s, VOLUME["restore_start"], volume_id)
    with db.transaction() as s:
        assert lifecycle.status_of(s, VOLUME.resource, volume_id) == VolumeStatus.IN_USE
        assert outbox.rows_after(s, 0) == []


def test_a_transition_and_its_outbox_row_commit_together(db: Database) -> None:
    volume_id = _volume(db, VolumeStatus.IN_USE)
    try:
        with db.transaction() as s:
            assert lifecycle.apply(
                s, VOLUME["backup_start"], volume_id, values={"previous_status": Volume.status}
            )
            raise RuntimeError("crash before the commit")
    except RuntimeError:
        pass
    with db.transaction() as s:
        assert lifecycle.status_of(s, VOLUME.resource, volume_id) == VolumeStatus.IN_USE
        assert outbox.rows_after(s, 0) == []
    with db.transaction() as s:
        lifecycle.apply(
            s, VOLUME["backup_start"], volume_id, values={"previous_status": Volume.status}
        )
    with db.transaction() as s:
        lifecycle.apply(s, VOLUME["backup_failed"], volume_id, reason="disk gone")
    with db.transaction() as s:
        rows = outbox.rows_after(s, 0)
        volume = s.get(Volume, volume_id)
        assert volume is not None and volume.status == VolumeStatus.IN_USE  # its previous status
    assert [(r.event, r.status, r.reason) for r in rows] == [
        ("backup_start", "backing-up", None),
        ("backup_failed", "in-use", "disk gone"),
    ]


def _volume(db: Database, status: VolumeStatus) -> str:
    volume_id = str(uuid.uuid4())
    with db.transaction() as s:
        s.add(
            Volume(
                id=volume_id,
                project_id="p",
                user_id="u",
                size=1,
                status=status,
                path=f"/tmp/{volume_id}",
                managed_file=False,
                availability_zone="nova",
                bootable=False,
                volume_metadata={},
                created_at=datetime.now(UTC),
            )
        )
    return volume_id


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=st.lists(st.sampled_from(sorted(VOLUME.transitions)), max_size=15))
def test_any_sequence_of_events_moves_a_volume_as_the_declarations_say(
    db: Database, events: list[str]
) -> None:
    volume_id = _volume(db, VolumeStatus.AVAILABLE)
    status, previous = str(VolumeStatus.AVAILABLE), None
    for event in events:
        transition = VOLUME[event]
        if transition.inserts:
            continue
        values = {"previous_status": Volume.status} if event == "backup_start" else None
        with db.transaction() as s:
            moved = lifecycle.apply(s, transition, volume_id, values=values)
        assert moved == (status in transition.source), (event, status)
        if moved:
            if event == "backup_start":
                previous = status
            target = transition.target
            if target == PREVIOUS:
                target = previous if previous in ("available", "in-use") else "available"
            status = target
        with db.transaction() as s:
            assert lifecycle.status_of(s, VOLUME.resource, volume_id) == (
                None if status == "deleted" else status
            )
        if status == "deleted":
            break
