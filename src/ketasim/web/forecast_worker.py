"""The individual forecast's worker process: computes out of the server's process, so the
request threads never wait for the interpreter while a forecast runs (a forecast computed in
a thread of the server raised a chart page's p95 from about 20 ms to about 270 ms).

The server starts it on first use (``python -m ketasim.web.forecast_worker``, the same
interpreter) and talks to it over its standard input and output: each message is a 4-byte
big-endian length and a pickle — a request ``(inputs, part)`` for
:func:`ketasim.clinic.individual.compute`, its answer the dict that returns. Both ends are
this program (pickle is not read from anywhere else). The worker exits when its input closes
(the server stopped); anything a library prints goes to standard error, never into the
answers. :class:`WorkerProcess` is the server's end: a call that fails, times out or finds the
worker gone stops it (the next call starts a new one) and answers an error.

>>> WorkerProcess().running
False
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from typing import IO, Any

HEADER = struct.Struct("!I")
MAX_MESSAGE = 256 * 1024 * 1024


def send(stream: IO[bytes], obj: Any) -> None:
    """Write one message."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exactly(fd: int, n: int, timeout: float | None) -> bytes:
    out = bytearray()
    while len(out) < n:
        if timeout is not None:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no answer within {timeout:g} s")
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise EOFError("the other end closed")
        out += chunk
    return bytes(out)


def receive(fd: int, timeout: float | None = None) -> Any:
    """Read one message from file descriptor ``fd`` (``timeout`` seconds of silence at most)."""
    (n,) = HEADER.unpack(_read_exactly(fd, HEADER.size, timeout))
    if n > MAX_MESSAGE:
        raise EOFError(f"a message of {n} bytes")
    return pickle.loads(_read_exactly(fd, n, timeout))


class WorkerProcess:
    """The server's end: one worker process, started on first use, called one request at a
    time (thread-safe)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the worker process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def call(self, inputs: Any, part: str, timeout: float) -> dict[str, Any]:
        """``compute(inputs, part)`` in the worker; an error dict when that fails."""
        with self.lock:
            try:
                if not self.running:
                    self._start()
                assert self.proc is not None and self.proc.stdin is not None \
                    and self.proc.stdout is not None
                send(self.proc.stdin, (inputs, part))
                answer = receive(self.proc.stdout.fileno(), timeout)
                if not isinstance(answer, dict):
                    raise EOFError("an answer that is not a dict")
                return answer
            except (OSError, EOFError, TimeoutError, pickle.PickleError, struct.error) as exc:
                self.stop()
                return {"error": f"the forecast worker process failed ({type(exc).__name__}: "
                                 f"{exc})", "expected": False, "trace": ""}

    def _start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ketasim.web.forecast_worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     close_fds=True)

    def stop(self) -> None:
        """End the worker process (it is started again on the next call)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


def main() -> None:
    """Serve requests from standard input until it closes."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to standard error, never into the answers
    sys.stdout = sys.stderr
    from ketasim.clinic.individual import compute
    fd = sys.stdin.fileno()
    while True:
        try:
            inputs, part = receive(fd)
        except EOFError:
            return
        send(out, compute(inputs, part))


if __name__ == "__main__":
    main()


__all__ = ["WorkerProcess", "main", "receive", "send"]
