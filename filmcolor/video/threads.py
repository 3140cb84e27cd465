"""Two small thread helpers for streaming stages joined by bounded queues (memory stays flat).

- :class:`Prefetch`: runs a producer (demux/decode, a raw reader) ahead of the caller. The thread owns
  the resource it reads (a container) and closes it itself, on every way out; an exception in it is
  re-raised in the caller's thread, the original object with its traceback.
- :class:`WriteBehind`: runs a consumer (encode/mux, a raw writer) behind the caller; its exception is
  re-raised by the next :meth:`~WriteBehind.put` or by :meth:`~WriteBehind.close`.

Used by the file pipeline and by ``filmcolor pipe``; neither re-implements threads or error passing.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Generic, Iterator, Protocol, TypeVar

T = TypeVar("T")
_END = object()
_POLL = 0.1  # seconds between checks of the other side while a queue is full


class Closeable(Protocol):
    def close(self) -> Any: ...


class Prefetch(Generic[T]):
    """``with Prefetch(produce, owns=container) as items: for item in items: ...``

    ``produce()`` returns an iterator, run in a daemon thread; items come out in order. Leaving the
    ``with`` block (finished, failed or broken off) stops the thread and waits for it (``join_timeout``
    seconds at most; None: until it has closed ``owns``). The thread closes ``owns`` only then, never
    while it still reads it nor while the caller still holds frames or packets that point into it.
    """

    def __init__(self, produce: Callable[[], Iterator[T]], *, owns: Closeable | None = None, size: int = 8,
                 name: str = "filmcolor-prefetch", join_timeout: float | None = None) -> None:
        self._produce, self._owns, self._join_timeout = produce, owns, join_timeout
        self._q: queue.Queue = queue.Queue(maxsize=max(1, size))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def __enter__(self) -> "Prefetch[T]":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[T]:
        while True:
            kind, obj = self._q.get()
            if kind is _END:
                return
            if kind == "error":
                raise obj
            yield obj

    def close(self) -> None:
        """Stop the producer and wait for it (it closes what it owns); safe to call twice."""
        self._stop.set()
        if not self._thread.is_alive():
            return
        while True:  # unblock a producer waiting on a full queue
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        self._thread.join(self._join_timeout)

    def _put(self, item: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._produce():
                if not self._put(("item", item)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(("error", exc))
        finally:
            if self._owns is not None:
                # frames and packets still in flight downstream point into the container: it is closed
                # only once the consumer is done with them too (close())
                self._stop.wait()
                self._owns.close()


class WriteBehind(Generic[T]):
    """``with WriteBehind(consume, finish) as w: w.put(item)``; ``w.close()`` flushes and raises any error.

    ``consume(item)`` runs in a daemon thread for every item in order; ``finish()`` runs there after the
    last one when :meth:`close` is called (not when the block is left by an exception: then the thread
    only stops).
    """

    def __init__(self, consume: Callable[[T], Any], finish: Callable[[], Any] | None = None, *, size: int = 8,
                 name: str = "filmcolor-write") -> None:
        self._consume, self._finish = consume, finish
        self._q: queue.Queue = queue.Queue(maxsize=max(1, size))
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)
        self.error: BaseException | None = None
        self._closed = False

    def __enter__(self) -> "WriteBehind[T]":
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if not self._closed:
            self._end(finish=False)

    def put(self, item: T) -> None:
        """Queue ``item``; raises the consumer's exception if it has failed."""
        self._send(("item", item))

    @property
    def backlog(self) -> int:
        """Items queued and not yet taken by the consumer (approximate, as ``queue.Queue.qsize``)."""
        return self._q.qsize()

    @property
    def size(self) -> int:
        """The most items :meth:`put` queues before it waits."""
        return self._q.maxsize

    def close(self) -> None:
        """Consume what is queued, run ``finish``, wait; raises the consumer's exception if it failed."""
        self._end(finish=True)
        if self.error is not None:
            raise self.error

    def _send(self, item: tuple) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self._q.put(item, timeout=_POLL)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise self.error or RuntimeError("the writer thread ended early")

    def _end(self, finish: bool) -> None:
        self._closed = True
        while self._thread.is_alive():
            try:
                self._q.put((_END, finish), timeout=_POLL)
                break
            except queue.Full:
                continue
        self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                kind, obj = self._q.get()
                if kind is _END:
                    if obj and self._finish is not None:
                        self._finish()
                    return
                self._consume(obj)
        except BaseException as exc:  # re-raised by put()/close() in the caller's thread
            self.error = exc
            while self._q.get()[0] is not _END:  # drain so the caller never blocks
                pass
