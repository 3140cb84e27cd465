"""BatchStream: a producer thread that dies ends iteration with an error instead of a hang."""

from __future__ import annotations

import threading

import pytest

from filmcolor.train.data import BatchStream


class Broken:
    def __len__(self) -> int:
        raise OSError("images folder vanished")


def test_next_raises_when_the_producer_thread_died():
    stream = BatchStream(Broken(), batch_size=2, size=32, seed=0)  # type: ignore[arg-type]
    outcome: list = []

    def take() -> None:
        with pytest.raises(RuntimeError, match="batch producer failed") as info:
            next(stream)
        assert isinstance(info.value.__cause__, OSError)  # the producer's own error, chained
        outcome.append("raised")

    t = threading.Thread(target=take, daemon=True)
    t.start()
    t.join(10)
    assert outcome == ["raised"]
