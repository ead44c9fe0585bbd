"""The journal: append, read back from any number, roll, and pick up after a crash."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mcastkit.errors import BadInput
from mcastkit.stream import soup
from mcastkit.stream.journal import ENTRY, Fsync, Journal, JournalError


def message(n: int) -> bytes:
    return f"message {n}".encode() * (1 + n % 7)


def filled(directory: Path, count: int, *, batch: int = 10, roll: int = 1 << 20, **kw: object) -> Journal:
    journal = Journal(directory, "FEED1", roll_bytes=roll, fsync=Fsync.NONE, **kw)  # type: ignore[arg-type]
    for start in range(1, count + 1, batch):
        first = journal.append([message(n) for n in range(start, min(start + batch, count + 1))])
        assert first == start
    return journal


def test_messages_read_back_from_any_number(tmp_path: Path) -> None:
    journal = filled(tmp_path, 1000)
    assert journal.next_sequence == 1001
    for start in (1, 2, 9, 10, 11, 500, 999, 1000):
        assert journal.read(start, 25) == [message(n) for n in range(start, min(start + 25, 1001))]
    assert journal.read(1001, 5) == []
    journal.close()


def test_segments_roll_by_size_and_reads_cross_them(tmp_path: Path) -> None:
    journal = filled(tmp_path, 3000, roll=4096)
    segments = sorted(tmp_path.glob("*.journal"))
    assert len(segments) > 5
    assert all(p.stat().st_size < 4096 + 2000 for p in segments)
    assert journal.read(1, 3000) == [message(n) for n in range(1, 3001)]
    spans = list(journal.spans(7, 2990))
    assert sum(count for *_, count in spans) == 2983
    assert len({path for path, *_ in spans}) == len(segments)
    journal.close()


def test_a_span_is_the_bytes_a_replay_sends(tmp_path: Path) -> None:
    journal = filled(tmp_path, 200, batch=13)
    [(path, offset, length, count)] = journal.spans(50, 120)
    raw = path.read_bytes()[offset : offset + length]
    assert count == 70
    assert soup.split(raw) == ([(soup.SEQUENCED, message(n)) for n in range(50, 120)], length)
    journal.close()


def test_a_restart_continues_the_sequence(tmp_path: Path) -> None:
    filled(tmp_path, 345, roll=2048).close()
    journal = Journal(tmp_path, "FEED1", roll_bytes=2048, fsync=Fsync.NONE)
    assert journal.next_sequence == 346
    assert journal.append([b"after"]) == 346
    assert journal.read(340, 10) == [message(n) for n in range(340, 346)] + [b"after"]
    journal.close()


def test_a_torn_last_record_is_cut_and_its_number_given_again(tmp_path: Path) -> None:
    filled(tmp_path, 100).close()
    [data] = tmp_path.glob("*.journal")
    whole = data.stat().st_size
    with data.open("ab") as f:
        f.write(soup.sequenced(b"half written")[:7])
    journal = Journal(tmp_path, "FEED1", fsync=Fsync.NONE)
    assert (journal.next_sequence, journal.cut_bytes, data.stat().st_size) == (101, 7, whole)
    assert journal.append([b"next"]) == 101
    assert journal.read(100, 2) == [message(100), b"next"]
    journal.close()


def test_index_entries_past_the_data_are_dropped(tmp_path: Path) -> None:
    filled(tmp_path, 100).close()
    [data] = tmp_path.glob("*.journal")
    [index] = tmp_path.glob("*.index")
    # The data of the last two batches lost (a host crash with fsync none), their index kept.
    entries = list(ENTRY.iter_unpack(index.read_bytes()))
    sequence, offset = entries[-2]
    os.truncate(data, offset)
    journal = Journal(tmp_path, "FEED1", fsync=Fsync.NONE)
    assert journal.next_sequence == sequence
    assert journal.read(sequence - 3, 10) == [message(n) for n in range(sequence - 3, sequence)]
    journal.close()


def test_a_journal_serves_one_session(tmp_path: Path) -> None:
    filled(tmp_path, 3).close()
    with pytest.raises(BadInput, match="it holds session 'FEED1', not 'OTHER'"):
        Journal(tmp_path, "OTHER")


def test_a_missing_segment_is_refused(tmp_path: Path) -> None:
    filled(tmp_path, 2000, roll=4096).close()
    segments = sorted(tmp_path.glob("*.journal"))
    segments[2].unlink()
    with pytest.raises(JournalError, match="a segment is missing"):
        Journal(tmp_path, "FEED1")


@pytest.mark.parametrize("policy", list(Fsync))
def test_every_fsync_policy_appends_and_closes(tmp_path: Path, policy: Fsync) -> None:
    journal = Journal(tmp_path, "FEED1", fsync=policy, fsync_interval=0.01)
    journal.append([b"a", b"b"])
    journal.close()
    assert Journal(tmp_path, "FEED1", fsync=Fsync.NONE).read(1, 5) == [b"a", b"b"]


def test_an_unusable_directory_is_an_environment_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(JournalError, match=r"journal .*file"):
        Journal(blocker / "journal", "FEED1")


def test_a_second_writer_is_refused_and_a_reader_changes_nothing(tmp_path: Path) -> None:
    journal = filled(tmp_path, 50)
    with pytest.raises(JournalError, match=re.escape(f"in use by another sequencer (pid {os.getpid()}")):
        Journal(tmp_path, "FEED1")
    [data] = tmp_path.glob("*.journal")
    with data.open("ab") as f:  # a record being written right now
        f.write(soup.sequenced(b"half")[:4])
    reader = Journal.for_reading(tmp_path)
    assert (reader.next_sequence, reader.read(49, 5)) == (51, [message(49), message(50)])
    assert data.read_bytes().endswith(soup.sequenced(b"half")[:4])
    journal.close()
    Journal(tmp_path, "FEED1").close()  # the lock went with the writer


def test_reading_what_is_not_a_journal_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a journal"):
        Journal.for_reading(tmp_path)
