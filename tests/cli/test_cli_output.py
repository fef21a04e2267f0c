from __future__ import annotations

import json

from ashbox.cli.output import (
    VOLUME_COLUMNS,
    VOLUME_FIELDS,
    Format,
    cell,
    human_bytes,
    label,
    render_list,
    render_object,
    render_table,
    volume_view,
)


def _volume() -> dict[str, object]:
    return {
        "id": "v-1",
        "name": "disk",
        "status": "available",
        "size": 2,
        "os-vol-ashbox-attr:path": "/srv/disk.img",
        "metadata": {"b": "2", "a": "1"},
        "links": [{"rel": "self", "href": "http://x/v3/volumes/v-1"}],
        "bootable": "false",
    }


def test_a_table_is_boxed_and_columns_fit_the_widest_cell():
    assert render_table(("ID", "Name"), [("1", "first"), ("22", "")]) == (
        "+----+-------+\n"
        "| ID | Name  |\n"
        "+----+-------+\n"
        "| 1  | first |\n"
        "| 22 |       |\n"
        "+----+-------+"
    )


def test_an_empty_list_is_a_table_of_headers_only():
    assert render_table(("ID",), []) == "+----+\n| ID |\n+----+\n+----+"


def test_a_volume_shows_its_path_under_path_right_after_its_id():
    view = volume_view(_volume())  # type: ignore[arg-type]
    assert list(view)[:2] == ["id", "path"]
    assert view["path"] == "/srv/disk.img"
    assert "os-vol-ashbox-attr:path" not in view


def test_a_volume_without_a_path_still_has_the_key():
    volume = _volume()
    del volume["os-vol-ashbox-attr:path"]
    assert volume_view(volume)["path"] is None  # type: ignore[arg-type]


def test_json_output_is_the_whole_object_with_id_and_path():
    shown = json.loads(render_object(volume_view(_volume()), Format.JSON))  # type: ignore[arg-type]
    assert shown["id"] == "v-1"
    assert shown["path"] == "/srv/disk.img"
    assert shown["links"]  # scripts get everything


def test_a_table_shows_the_first_fields_in_order_then_the_rest_by_name_without_links():
    text = render_object(volume_view(_volume()), Format.TABLE, VOLUME_FIELDS)  # type: ignore[arg-type]
    fields = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("|")]
    assert fields == ["Field", "id", "name", "status", "size", "path", "bootable", "metadata"]
    assert '{"a": "1", "b": "2"}' in text
    assert "links" not in text


def test_a_list_table_has_one_row_per_item_and_json_has_every_key():
    volumes = [volume_view(_volume()), volume_view({**_volume(), "id": "v-2"})]  # type: ignore[arg-type, typeddict-item]
    table = render_list(volumes, Format.TABLE, VOLUME_COLUMNS)
    assert table.splitlines()[1].split() == ["|", "ID", "|", "Name", "|", "Status", "|", "Size",
                                             "|", "Path", "|"]  # fmt: skip
    assert len(table.splitlines()) == 6
    assert [v["id"] for v in json.loads(render_list(volumes, Format.JSON, VOLUME_COLUMNS))] == [
        "v-1",
        "v-2",
    ]


def test_extension_prefixes_are_dropped_from_labels():
    assert label("os-backup-stats:stored_size") == "stored_size"
    assert label("status") == "status"


def test_cells_are_one_line_and_readable():
    assert cell("fail_reason", None) == ""
    assert cell("is_incremental", True) == "true"
    assert cell("os-backup-stats:stored_size", 3 * 1024 * 1024) == "3145728 (3.0 MiB)"
    assert cell("size", 3) == "3"
    assert cell("fail_reason", "first\nsecond") == "first second"


def test_human_bytes_uses_binary_units():
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(2 * 1024**3) == "2.0 GiB"
    assert human_bytes(5 * 1024**4) == "5.0 TiB"
