"""Prefetch and WriteBehind: order, ownership of what is read, errors handed over as the original exception."""

from __future__ import annotations

import threading
import time

import pytest

from filmcolor.video.threads import Prefetch, WriteBehind


class Resource:
    def __init__(self) -> None:
        self.closed_by: str | None = None
        self.in_use = False

    def close(self) -> None:
        assert not self.in_use, "closed while still being read"
        self.closed_by = threading.current_thread().name


def test_prefetch_yields_in_order_and_its_thread_closes_what_it_owns():
    res = Resource()
    with Prefetch(lambda: iter(range(50)), owns=res, size=2, name="reader") as items:
        assert list(items) == list(range(50))
        time.sleep(0.05)
        assert res.closed_by is None  # the caller may still hold what was read: not closed yet
    assert res.closed_by == "reader"


def test_prefetch_reraises_the_producers_exception_itself():
    class Boom(RuntimeError):
        pass

    def produce():
        yield 1
        raise Boom("demux failed")

    res = Resource()
    with pytest.raises(Boom, match="demux failed") as info:
        with Prefetch(produce, owns=res) as items:
            list(items)
    assert any(frame.name == "produce" for frame in __import__("traceback").extract_tb(info.value.__traceback__))
    assert res.closed_by is not None


def test_prefetch_broken_off_early_stops_a_producer_blocked_on_a_full_queue():
    res = Resource()
    with Prefetch(lambda: iter(range(10_000)), owns=res, size=1) as items:
        assert next(iter(items)) == 0
    assert res.closed_by is not None  # the thread was unblocked, stopped and closed it


def test_write_behind_consumes_in_order_then_finishes():
    got, finished = [], []
    with WriteBehind(got.append, lambda: finished.append(len(got)), size=2) as w:
        for i in range(20):
            w.put(i)
        w.close()
    assert got == list(range(20)) and finished == [20]


def test_write_behind_raises_the_consumers_error_on_put_and_does_not_finish():
    finished = []

    def consume(item):
        if item == 3:
            raise BrokenPipeError("reader went away")

    with pytest.raises(BrokenPipeError):
        with WriteBehind(consume, lambda: finished.append(1), size=1) as w:
            for i in range(1000):
                w.put(i)
    assert finished == []
