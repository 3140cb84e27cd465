"""Scoped thread settings of filmcolor.cpu: set for the block, restored after, even on errors."""

import cv2
import pytest
import torch

from filmcolor.cpu import cpu_count, opencv_threads, torch_threads


@pytest.mark.parametrize("scope,get", [(opencv_threads, cv2.getNumThreads), (torch_threads, torch.get_num_threads)])
def test_threads_scoped_and_restored(scope, get):
    before = get()
    with pytest.raises(RuntimeError):
        with scope(1):
            assert get() == 1
            raise RuntimeError("inside")
    assert get() == before
    with scope(None):
        assert get() == before


def test_cpu_count_positive():
    assert cpu_count() >= 1
