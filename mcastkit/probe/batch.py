"""Send or receive many datagrams per system call (Linux ``sendmmsg``/``recvmmsg``).

One ``sendto`` per datagram costs a Python call and a syscall each; at several hundred
thousand datagrams per second that overhead is the limit. A :class:`DatagramBatch` owns a
contiguous buffer cut into fixed-size slots and moves up to ``slots`` datagrams per call.
Where the libc lacks the calls, it falls back to one ``send``/``recv_into`` per slot.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket


class _IoVec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_IoVec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint))


_MSG_WAITFORONE = 0x10000


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
        libc.recvmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


class DatagramBatch:
    """``slots`` datagram buffers of ``slot_size`` bytes, sent or received in one call.

    ``view`` is the writable memory of all slots (slot ``i`` starts at ``i * slot_size``).
    The socket must be connected for :meth:`send` (every datagram goes to the same group).
    """

    def __init__(self, sock: socket.socket, *, slots: int, slot_size: int) -> None:
        self.sock = sock
        self.slots = slots
        self.slot_size = slot_size
        self._buffer = ctypes.create_string_buffer(slots * slot_size)
        self.view = memoryview(self._buffer).cast("B")
        self._iovecs = (_IoVec * slots)()
        self._messages = (_MMsgHdr * slots)()
        base = ctypes.addressof(self._buffer)
        for index in range(slots):
            self._iovecs[index].iov_base = base + index * slot_size
            self._iovecs[index].iov_len = slot_size
            self._messages[index].msg_hdr.msg_iov = ctypes.pointer(self._iovecs[index])
            self._messages[index].msg_hdr.msg_iovlen = 1
        self.vectored = _LIBC is not None
        self._length = slot_size

    def send(self, count: int, length: int) -> int:
        """Send the first ``count`` slots, ``length`` bytes each; return how many left.

        Returns 0 instead of raising when the kernel has no buffer space right now.
        """
        if not self.vectored:
            return self._send_each(count, length)
        if length != self._length:
            for index in range(self.slots):
                self._iovecs[index].iov_len = length
            self._length = length
        assert _LIBC is not None
        sent = int(_LIBC.sendmmsg(self.sock.fileno(), self._messages, count, 0))
        if sent < 0:
            code = ctypes.get_errno()
            if code in (errno.ENOBUFS, errno.EAGAIN, errno.ECONNREFUSED):
                return 0
            raise OSError(code, os.strerror(code))
        return sent

    def receive(self) -> list[int]:
        """Wait (up to the socket timeout) for datagrams; return the length of each slot filled."""
        if not self.vectored:
            return self._receive_each()
        assert _LIBC is not None  # recvmmsg leaves iov_len alone: the slots stay full size
        count = int(_LIBC.recvmmsg(self.sock.fileno(), self._messages, self.slots, _MSG_WAITFORONE, None))
        if count < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EINTR):
                return []
            raise OSError(code, os.strerror(code))
        messages = self._messages
        return [messages[index].msg_len for index in range(count)]

    def _send_each(self, count: int, length: int) -> int:
        for index in range(count):
            start = index * self.slot_size
            try:
                self.sock.send(self.view[start : start + length])
            except (BlockingIOError, ConnectionRefusedError):
                return index
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    return index
                raise
        return count

    def _receive_each(self) -> list[int]:
        lengths: list[int] = []
        try:
            lengths.append(self.sock.recv_into(self.view[0 : self.slot_size]))
        except (TimeoutError, BlockingIOError, InterruptedError):
            return lengths
        for index in range(1, self.slots):
            start = index * self.slot_size
            try:
                lengths.append(
                    self.sock.recv_into(self.view[start : start + self.slot_size], 0, socket.MSG_DONTWAIT)
                )
            except (BlockingIOError, InterruptedError):
                break
        return lengths
