"""Every built-in engine passes the shipped conformance suite (:mod:`filmcolor.testing.engines`).

Each class overrides one fixture, as a third-party engine's tests would. Engines that cannot run here
skip with their probe's reason (TensorRT needs ``--device cuda`` and the tensorrt package).
"""

from __future__ import annotations

import pytest

from filmcolor.testing.engines import EngineConformance


class TestTorch(EngineConformance):
    @pytest.fixture
    def engine_name(self) -> str:
        return "torch"


class TestOnnxRuntime(EngineConformance):
    @pytest.fixture
    def engine_name(self) -> str:
        return "onnxruntime"


class TestOnnxRuntimeInt8(EngineConformance):
    """int8 is judged by its error distribution, not its single worst value: on this uniform-noise L
    (outside the range of the calibration frames, so some activations clip) the max over 24,576 values
    is a tail statistic that moved between 2.9 and 5.4 Lab units over 12 seeds (torch 2.13.0+cpu and
    2.14.1+cu130, onnxruntime 1.32), while the 99th percentile stayed at 0.29-0.30 and the mean at
    0.095-0.097. Bounds: mean and p99 at 3x those figures, the max at 2x the worst seen (a,b span +-110).
    With 7-bit weights (``reduce_range``, needed on AVX2-only CPUs) on an AMD EPYC: mean 0.102, p99 0.33,
    max 2.9-4.4 over 4 seeds; without them it failed there (mean 0.68)."""

    parity_max, parity_mean, parity_p99 = 12.0, 0.3, 1.0

    @pytest.fixture
    def engine_name(self) -> str:
        return "onnxruntime-int8"


class TestTensorRT(EngineConformance):
    parity_max = 0.1  # fp32 builds may use TF32 kernels

    @pytest.fixture
    def engine_name(self) -> str:
        return "tensorrt"


class TestOnnxRuntimeInt8QuantizedGuidance(TestOnnxRuntimeInt8):
    """The int8 engine with its guided graph quantised too."""

    engine_options = {"quantize_guidance": True}
