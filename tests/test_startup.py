"""The console script's start-up collector settings (filmcolor.startup)."""

import gc

import pytest

from filmcolor import startup


@pytest.fixture
def gc_state():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_settled_without_begin_leaves_the_host_programs_collector_alone(gc_state):
    gc.set_threshold(1234, 5, 6)
    frozen = gc.get_freeze_count()
    startup.settled()
    assert gc.get_threshold() == (1234, 5, 6)
    assert gc.get_freeze_count() == frozen


def test_begin_then_settled_freezes_and_restores_the_defaults(gc_state):
    startup.begin()
    assert gc.get_threshold()[0] == startup.START_THRESHOLD
    alive = [object() for _ in range(10)]  # noqa: F841 (kept alive across the freeze)
    startup.settled()
    assert gc.get_threshold() == startup.DEFAULT_THRESHOLDS
    assert gc.get_freeze_count() > 0
    frozen = gc.get_freeze_count()
    startup.settled()  # only the first time
    assert gc.get_freeze_count() == frozen


def test_the_colorizer_settles_the_start_up(gc_state, tiny_model_path):
    from filmcolor.colorizer import Colorizer

    startup.begin()
    Colorizer(model=str(tiny_model_path), engine="torch", smoothing="off").close()
    assert gc.get_threshold() == startup.DEFAULT_THRESHOLDS
