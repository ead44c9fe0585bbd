"""The sequencer's journal: every message, in sequence order, on disk before it is published.

A journal is a directory::

    SESSION                         the session name; a journal serves one session
    00000000000000000001.journal    messages from sequence 1, as SoupBinTCP sequenced packets
    00000000000000000001.index      (sequence, byte offset) of each appended batch, 16 bytes each
    00000000000001048577.journal    the next segment, begun when the last passed --roll-bytes
    ...

A segment's records are the bytes a SoupBinTCP replay sends (2-byte length, ``S``, the
message), so a replay is a ``sendfile`` of a byte range. The index is sparse, one entry a
batch; a lookup bisects it and walks at most one batch. Writes append only. Opening a
journal scans each segment from its last index entry to its end, cuts a torn last record
(a crash mid-write) and drops index entries past the data, so the sequence continues after
the last whole message and no number is ever given to two messages -- within what the
fsync policy made durable (see :class:`Fsync`).
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import logging
import os
import struct
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.stream import soup
from mcastkit.stream.fsync import Fsync

log = logging.getLogger(__name__)

ENTRY = struct.Struct("!QQ")
DEFAULT_ROLL_BYTES = 256 * 1024 * 1024
DEFAULT_FSYNC_INTERVAL = 0.1
#: Bytes a read takes at a time when it walks records.
_READ_CHUNK = 1 << 20
FIRST_SEQUENCE = 1


class JournalError(EnvironmentFailure):
    """The journal's directory or files cannot be used."""


@dataclass
class Segment:
    first: int
    data: Path
    index: Path
    #: Sequence and byte offset of each batch (the first entry: ``first`` at 0).
    sequences: array[int] = field(default_factory=lambda: array("Q"))
    offsets: array[int] = field(default_factory=lambda: array("Q"))
    size: int = 0
    #: One past the last message in the segment.
    end: int = 0

    def locate(self, sequence: int) -> tuple[int, int]:
        """(sequence, offset) of the indexed batch that holds ``sequence``."""
        at = bisect.bisect_right(self.sequences, sequence) - 1
        return self.sequences[at], self.offsets[at]


def _name(first: int) -> str:
    return f"{first:020d}"


class Journal:
    """Append-only, segmented, indexed; safe to read from other threads while one appends."""

    def __init__(
        self,
        directory: Path,
        session: str,
        *,
        roll_bytes: int = DEFAULT_ROLL_BYTES,
        fsync: Fsync = Fsync.INTERVAL,
        fsync_interval: float = DEFAULT_FSYNC_INTERVAL,
        writer: bool = True,
    ) -> None:
        """Open (a writer: create) the journal of ``session`` in ``directory``.

        A writer holds the journal's lock (``flock`` on ``LOCK``; the Linux NFS client, so EFS,
        carries it to the server as a byte-range lock, which other hosts see) for as long as it
        is open: a second sequencer on the same directory is refused.
        A reader (``writer=False``: ``stream show``) takes no lock and changes nothing.
        """
        self.directory = directory
        self.session = session
        self.roll_bytes = roll_bytes
        self.fsync = fsync
        self._segments: list[Segment] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        self._closing = threading.Event()
        self._dirty = False
        self.cut_bytes = 0
        self.writer = writer
        self._syncer: threading.Thread | None = None
        self._lock_fd = -1
        try:
            if writer:
                directory.mkdir(parents=True, exist_ok=True)
                self._take_lock(directory / "LOCK")
            self._claim(directory / "SESSION")
            self._open_segments()
        except OSError as err:
            self._release_lock()
            raise JournalError(f"journal {directory}: {err.strerror}") from None
        except BaseException:
            self._release_lock()
            raise
        if not writer:
            return
        last = self._segments[-1]
        self._data_fd = os.open(last.data, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._index_fd = os.open(last.index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        if fsync is Fsync.INTERVAL:
            self._syncer = threading.Thread(
                target=self._sync_every, args=(fsync_interval,), name="journal-fsync", daemon=True
            )
            self._syncer.start()

    @classmethod
    def for_reading(cls, directory: Path) -> Journal:
        """The journal in ``directory`` as it is now, for reading only."""
        try:
            session = (directory / "SESSION").read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            raise BadInput(
                f"{directory}: not a journal (no SESSION file); give the sequencer's --journal directory"
            ) from None
        return cls(directory, session, writer=False)

    # -- opening ---------------------------------------------------------------------

    def _take_lock(self, path: Path) -> None:
        self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(self._lock_fd, 64, 0).decode("ascii", "replace").strip() or "?"
            self._release_lock()
            raise JournalError(
                f"journal {self.directory}: in use by another sequencer (pid {holder} on its host); "
                "a journal takes one writer: stop that one first"
            ) from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = -1

    def _claim(self, path: Path) -> None:
        if path.exists():
            found = path.read_text(encoding="ascii", errors="replace").strip()
            if found != self.session:
                raise BadInput(
                    f"journal {self.directory}: it holds session {found!r}, not {self.session!r}; "
                    "give each session a journal directory of its own"
                )
            return
        path.write_text(self.session + "\n", encoding="ascii")

    def _open_segments(self) -> None:
        firsts = sorted(int(p.stem) for p in self.directory.glob("*.journal") if p.stem.isdigit())
        if not firsts and not self.writer:
            self._segments.append(
                Segment(FIRST_SEQUENCE, Path(os.devnull), Path(os.devnull), end=FIRST_SEQUENCE)
            )
            self._segments[0].sequences.append(FIRST_SEQUENCE)
            self._segments[0].offsets.append(0)
            return
        if not firsts:
            self._segments.append(self._new_segment(FIRST_SEQUENCE))
            return
        for number, first in enumerate(firsts):
            segment = self._load(first)
            if number and segment.first != self._segments[-1].end:
                raise JournalError(
                    f"journal {self.directory}: segment {segment.data.name} starts at {segment.first}, "
                    f"but the one before ends at {self._segments[-1].end}: a segment is missing"
                )
            self._segments.append(segment)

    def _new_segment(self, first: int) -> Segment:
        base = self.directory / _name(first)
        segment = Segment(first, base.with_suffix(".journal"), base.with_suffix(".index"), end=first)
        segment.data.touch()
        with segment.index.open("wb") as index:
            index.write(ENTRY.pack(first, 0))
        segment.sequences.append(first)
        segment.offsets.append(0)
        return segment

    def _load(self, first: int) -> Segment:
        base = self.directory / _name(first)
        segment = Segment(first, base.with_suffix(".journal"), base.with_suffix(".index"))
        size = segment.data.stat().st_size
        raw = segment.index.read_bytes() if segment.index.exists() else b""
        entries = [(s, o) for s, o in ENTRY.iter_unpack(raw[: len(raw) - len(raw) % ENTRY.size])]
        entries = [(s, o) for s, o in entries if o < size or (s, o) == (first, 0)]
        if not entries or entries[0] != (first, 0):
            entries.insert(0, (first, 0))
        last_sequence, last_offset = entries[-1]
        with segment.data.open("rb") as data:
            data.seek(last_offset)
            tail = data.read()
        count, whole = _whole_records(tail)
        if last_offset + whole < size and not self.writer:
            size = last_offset + whole  # a reader leaves a torn record (or one being written) be
        elif last_offset + whole < size:
            cut = size - last_offset - whole
            log.warning("journal %s: cut %d bytes of a torn last record", segment.data.name, cut)
            self.cut_bytes += cut
            os.truncate(segment.data, last_offset + whole)
            size = last_offset + whole
        if self.writer:
            with segment.index.open("wb") as index:
                index.write(b"".join(ENTRY.pack(s, o) for s, o in entries))
        segment.sequences.extend(s for s, _ in entries)
        segment.offsets.extend(o for _, o in entries)
        segment.size = size
        segment.end = last_sequence + count
        return segment

    # -- writing ---------------------------------------------------------------------

    @property
    def next_sequence(self) -> int:
        return self._segments[-1].end

    @property
    def first_sequence(self) -> int:
        return self._segments[0].first

    def append(self, messages: list[bytes]) -> int:
        """Write ``messages`` as the next sequence numbers; returns the first one's.

        With ``fsync=always`` the bytes are on the disk when this returns.
        """
        assert self.writer, "a journal opened for reading is not appended to"
        record = soup.sequenced
        return self.append_records(b"".join([record(m) for m in messages]), len(messages))

    def append_records(self, records: bytes, count: int) -> int:
        """Append ``count`` records already in the journal's format (see :func:`soup.sequenced`)."""
        segment = self._segments[-1]
        first = segment.end
        try:
            written = os.write(self._data_fd, records)
            while written < len(records):  # a regular file takes it all unless the disk is full
                written += os.write(self._data_fd, records[written:])
            if first != segment.first:
                os.write(self._index_fd, ENTRY.pack(first, segment.size))
            if self.fsync is Fsync.ALWAYS:
                os.fdatasync(self._data_fd)
        except OSError as err:
            raise JournalError(f"journal {segment.data}: {err.strerror}") from None
        with self._changed:
            if first != segment.first:
                segment.sequences.append(first)
                segment.offsets.append(segment.size)
            segment.size += len(records)
            segment.end = first + count
            self._dirty = True
            self._changed.notify_all()
        if segment.size >= self.roll_bytes:
            self._roll()
        return first

    def _roll(self) -> None:
        if self.fsync is not Fsync.NONE:
            os.fdatasync(self._data_fd)
            os.fdatasync(self._index_fd)
        os.close(self._data_fd)
        os.close(self._index_fd)
        segment = self._new_segment(self.next_sequence)
        self._data_fd = os.open(segment.data, os.O_WRONLY | os.O_APPEND)
        self._index_fd = os.open(segment.index, os.O_WRONLY | os.O_APPEND)
        with self._changed:
            self._segments.append(segment)
            self._changed.notify_all()
        log.info("journal: began segment %s", segment.data.name)

    def _sync_every(self, interval: float) -> None:
        # On a timer of its own, not on the append condition: waking at every append (to find
        # nothing to do) cost the sequencer a quarter of its time in lock hand-overs.
        while not self._closing.wait(interval):
            with self._lock:
                dirty, self._dirty = self._dirty, False
                fd = self._data_fd
            if dirty:
                with contextlib.suppress(OSError):  # closed by a roll in between: the roll synced it
                    os.fdatasync(fd)

    def close(self) -> None:
        if not self.writer:
            return
        self._closing.set()
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._syncer is not None:
            self._syncer.join()
        if self.fsync is not Fsync.NONE:
            os.fdatasync(self._data_fd)
        os.close(self._data_fd)
        os.close(self._index_fd)
        self._release_lock()

    # -- reading ---------------------------------------------------------------------

    def wait_beyond(self, sequence: int, timeout: float) -> int:
        """Wait up to ``timeout`` for a message numbered ``sequence`` or later; the next sequence."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self.next_sequence > sequence, timeout)
            return self.next_sequence

    def _segment_of(self, sequence: int) -> Segment:
        segments = self._segments
        at = bisect.bisect_right([s.first for s in segments], sequence) - 1
        return segments[max(at, 0)]

    def spans(self, sequence: int, end: int) -> Iterator[tuple[Path, int, int, int]]:
        """(file, offset, byte count, message count) covering messages ``sequence`` to ``end - 1``."""
        while sequence < end:
            segment = self._segment_of(sequence)
            stop = min(end, segment.end)
            if stop <= sequence:
                return
            start_offset = self._offset(segment, sequence)
            stop_offset = segment.size if stop == segment.end else self._offset(segment, stop)
            yield segment.data, start_offset, stop_offset - start_offset, stop - sequence
            sequence = stop

    def _offset(self, segment: Segment, sequence: int) -> int:
        batch, offset = segment.locate(sequence)
        if batch == sequence:
            return offset
        with segment.data.open("rb") as data:
            data.seek(offset)
            skip = sequence - batch
            position = 0
            while skip:
                chunk = data.read(_READ_CHUNK)
                if not chunk:
                    break
                count, used = _whole_records(chunk, limit=skip)
                position += used
                skip -= count
                data.seek(offset + position)
            return offset + position

    def read(self, sequence: int, count: int) -> list[bytes]:
        """Up to ``count`` messages from ``sequence`` (fewer at the end of the journal)."""
        if sequence < self.first_sequence:
            return []
        end = min(sequence + count, self.next_sequence)
        messages: list[bytes] = []
        for path, offset, length, number in self.spans(sequence, end):
            with path.open("rb") as data:
                data.seek(offset)
                chunk = data.read(length)
            messages.extend(_messages(chunk, number))
        return messages


def _whole_records(data: bytes, *, limit: int = -1) -> tuple[int, int]:
    """(records, bytes) of the whole, well-formed sequenced records at the start of ``data``."""
    position, count, end = 0, 0, len(data)
    while position + 3 <= end and count != limit:
        length = (data[position] << 8) | data[position + 1]
        if length == 0 or data[position + 2] != soup.SEQUENCED or position + 2 + length > end:
            break
        position += 2 + length
        count += 1
    return count, position


def _messages(data: bytes, count: int) -> list[bytes]:
    out = []
    position = 0
    for _ in range(count):
        length = (data[position] << 8) | data[position + 1]
        out.append(data[position + 3 : position + 2 + length])
        position += 2 + length
    return out
