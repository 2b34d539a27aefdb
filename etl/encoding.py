"""GBK/GB18030 text to UTF-8 for the CSV reader, on both cores for a large file.

Python's codecs hold the GIL, so a thread would not decode beside another; a forked child does:
it decodes the second half of the file (from the first line end after the middle) while this
process decodes the first, and hands its UTF-8 back through shared memory. Split at a line end,
the halves decode to exactly what the whole file decodes to: no GB18030 sequence holds the byte
``\\n`` (trail bytes are 0x30-0x39, 0x40-0x7E and 0x80-0xFE), and the codec carries no state from
one character to the next. A file that is not plain GB18030 (a byte sequence it does not have, or
a line that is valid UTF-8: a file in mixed encodings) gives None, and the caller decodes it
the general way (:func:`etl.readers.decode`).

The child is forked from a process with threads (the file's hash is computed in one); it only
decodes, writes shared memory and ``os._exit``\\ s, and imports nothing. Should it still not finish
(stuck, or starved), it is killed after :data:`CHILD_GRACE_S` (or twice this process's own half, if
longer) and the file is decoded in one process: slower, never wrong, never hung.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import mmap
import os
import select
import signal
import time

#: below this many bytes one process decodes (a fork and its shared memory cost ~10 ms)
PARALLEL_MIN_BYTES = 16 * 1024**2
_HEAD = 8  # the child's UTF-8 length, before its bytes in the shared memory
#: how long the child may run on after this process has decoded its own half (the halves are
#: the same size: a child still running long after is stuck, not slow)
CHILD_GRACE_S = 10.0


def no_utf8_lines(data: bytes, start: int = 0, stop: int | None = None) -> bool:
    """True when no non-ASCII line (of ``data[start:stop]``) is valid UTF-8 (so the file is
    not partly UTF-8).

    Each line is tried with the C decoder on a zero-copy view (a GBK line fails at its first
    Chinese character, so this costs little more than finding the line ends)."""
    view, n = memoryview(data), len(data) if stop is None else stop
    decode = codecs.utf_8_decode
    while start < n:
        end = data.find(b"\n", start, n)
        end = n if end < 0 else end + 1
        try:
            line, _ = decode(view[start:end], "strict", True)
        except UnicodeDecodeError:
            start = end
            continue
        if not line.isascii():
            return False
        start = end
    return True


def gb18030_utf8(data: bytes, start: int = 0, stop: int | None = None) -> bytes | None:
    """``data[start:stop]`` decoded as GB18030 and encoded as UTF-8, or None when it does not
    decode or some non-ASCII line of it is valid UTF-8."""
    try:
        text = codecs.decode(memoryview(data)[start:stop], "gb18030")
    except UnicodeDecodeError:
        return None
    if not no_utf8_lines(data, start, stop):
        return None
    return text.encode("utf-8")


def gb18030_utf8_halves(data: bytes) -> bytes | None:
    """:func:`gb18030_utf8`, the second half decoded by a forked child at the same time; one
    process for a file under :data:`PARALLEL_MIN_BYTES`, or without a line end in its second
    half, or where there is no ``os.fork``."""
    cut = data.find(b"\n", len(data) // 2) + 1
    if len(data) < PARALLEL_MIN_BYTES or cut <= 0 or cut >= len(data) or not hasattr(os, "fork"):
        return gb18030_utf8(data)
    # UTF-8 takes at most 1.5 times GB18030's bytes (2 -> 3; 1 -> 1 and 4 -> 4 or less)
    shared = mmap.mmap(-1, _HEAD + (len(data) - cut) * 3 // 2 + 16)
    codecs.lookup("gb18030")  # imported here: the child of a threaded process imports nothing
    pid = os.fork()
    if pid == 0:  # the child: decode the second half, write it to the shared memory, exit
        status = 1
        try:
            out = gb18030_utf8(data, cut)
            if out is None:
                status = 2
            else:
                shared[_HEAD : _HEAD + len(out)] = out
                shared[:_HEAD] = len(out).to_bytes(_HEAD, "little")
                status = 0
        finally:
            os._exit(status)  # never back into the caller's code (no cleanup, no atexit)
    first, wait, began = None, None, time.monotonic()
    try:
        first = gb18030_utf8(data, 0, cut)
    finally:
        if first is None:  # this half does not decode (or this process was interrupted)
            os.kill(pid, signal.SIGKILL)  # the child's half is of no use then
            with contextlib.suppress(ChildProcessError):  # reaped elsewhere (SIGCHLD ignored)
                os.waitpid(pid, 0)
        else:
            wait = _wait(pid, max(CHILD_GRACE_S, 2 * (time.monotonic() - began)))
    try:
        if first is None or wait is None or os.waitstatus_to_exitcode(wait) != 0:
            return None  # the caller decodes the whole file the general way
        size = int.from_bytes(shared[:_HEAD], "little")
        with memoryview(shared) as view:
            return b"".join((first, view[_HEAD : _HEAD + size]))
    finally:
        shared.close()


def _wait(pid: int, timeout: float) -> int | None:
    """The child's wait status; None when it has not ended within ``timeout`` seconds (it is
    killed and reaped then) or was reaped by someone else (a process that ignores SIGCHLD)."""
    deadline = time.monotonic() + timeout
    try:
        handle = os.pidfd_open(pid)  # readable when the child ends (Linux 5.3)
    except (AttributeError, OSError):
        handle = None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            if handle is not None:
                select.select([handle], [], [], left)
            else:
                time.sleep(min(left, 0.005))
    except ChildProcessError:
        return None
    finally:
        if handle is not None:
            os.close(handle)


#: the block a decoding child (:class:`Gb18030Pipe`) decodes at a time, cut at a line end
PIPE_BLOCK = 4 * 1024**2


class Gb18030Pipe:
    """:func:`gb18030_utf8` in a forked child, a block at a time, its UTF-8 written into a pipe
    as each block is decoded: the reader parses the beginning of a file while the child still
    decodes the rest (:class:`etl.readers.CsvStream`). Cut at line ends, the blocks decode to
    what the whole file decodes to (see this module's docstring).

    ``stream``: the UTF-8 to read (a block that does not decode, or holds a line that is valid
    UTF-8, ends it early: the child exits with status 2); :meth:`finished` says, once the stream
    is read to its end, whether the child decoded the whole file. :meth:`close` kills the child
    if it still runs, and reaps it. The child only decodes, writes the pipe and ``os._exit``\\ s;
    if this process dies, its next write fails (the pipe has no reader) and it exits."""

    def __init__(self, data: bytes) -> None:
        codecs.lookup("gb18030")  # imported here: the child of a threaded process imports nothing
        read, write = os.pipe()
        with contextlib.suppress(AttributeError, OSError):  # Linux: fewer, larger writes
            fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 1024**2)
        self.pid = os.fork()
        if self.pid == 0:  # the child
            status = 1
            try:
                os.close(read)
                status = 0 if _decode_into(data, write) else 2
            finally:
                os._exit(status)  # never back into the caller's code (no cleanup, no atexit)
        os.close(write)
        self.stream = open(read, "rb", buffering=1024**2)  # noqa: SIM115 (closed by close())
        self.status: int | None = None

    def finished(self) -> bool:
        """Whether the child decoded the whole file (call once :attr:`stream` is at its end)."""
        if self.status is None:
            try:
                self.status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): status unknown
                self.status = -1
        return self.status == 0

    def kill(self) -> None:
        """End the child if it still runs (the stream then ends), and reap it."""
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.finished()

    def close(self) -> None:
        self.kill()
        self.stream.close()


def _decode_into(data: bytes, fd: int) -> bool:
    """The child of :class:`Gb18030Pipe`: ``data`` decoded a block at a time into ``fd``."""
    start, n = 0, len(data)
    while start < n:
        stop = n if start + PIPE_BLOCK >= n else data.find(b"\n", start + PIPE_BLOCK) + 1
        stop = stop or n  # no line end after the block: the rest of the file
        out = gb18030_utf8(data, start, stop)
        if out is None:
            return False
        with memoryview(out) as view:
            written = 0
            while written < len(out):
                written += os.write(fd, view[written:])
        start = stop
    return True
