"""hypothesis strategies for the repository codecs."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from ashbox.repository.manifest import ENTRY_SIZE, Manifest, block_count_for, entry_of

blob_ids = st.binary(min_size=32, max_size=32)
raw_blocks = st.one_of(
    st.binary(min_size=1, max_size=5000),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(1, 2000)),
)
ids = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=40)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    block_size = draw(st.sampled_from([4096, 8192, 1 << 20]))
    volume_size = draw(st.integers(0, block_size * 40))
    count = block_count_for(volume_size, block_size)
    entries = b"".join(entry_of(draw(st.one_of(st.none(), blob_ids))) for _ in range(count))
    assert len(entries) == count * ENTRY_SIZE
    return Manifest(
        backup_id=draw(ids),
        parent_id=draw(st.one_of(st.none(), ids.filter(bool))),
        volume_size=volume_size,
        block_size=block_size,
        created_at=draw(
            st.datetimes(
                min_value=datetime(1971, 1, 1),
                max_value=datetime(2200, 1, 1),
                timezones=st.just(UTC),
            )
        ),
        entries=entries,
        metadata=draw(st.dictionaries(ids, st.text(max_size=200), max_size=5)),
    )
