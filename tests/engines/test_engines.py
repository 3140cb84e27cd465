"""The engine registry, ONNX export parity, int8 calibration, engine benchmarks (conformance: test_conformance.py).

The ONNX cache goes to a temporary folder (``FILMCOLOR_CACHE``), never to ~/.cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from filmcolor.engines import EngineUnavailable, create_engine, engine_specs, probe
from filmcolor.engines.registry import BUILTIN_ENGINES, EngineSpec, engine_class
from filmcolor.models import ModelConfig, create_model, load_model
from filmcolor.testing.engines import random_L as _L

ENGINES = ["torch", "onnxruntime", "onnxruntime-int8", "tensorrt"]


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory):
    """Every export/engine cache of this module lives in a temporary folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FILMCOLOR_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def tiny(tiny_model_path: Path) -> tuple[torch.nn.Module, ModelConfig]:
    model, config = load_model(tiny_model_path)
    with torch.no_grad():  # switch the self-attention on (gamma starts at 0), so it is exercised
        model.attn.gamma.fill_(0.7)
    return model, config


# ---------------------------------------------------------------------------------------------------------------
# Registry


def test_engine_specs_include_builtins():
    specs = engine_specs()
    for name in ENGINES:
        assert name in specs and specs[name] == BUILTIN_ENGINES[name]
        assert specs[name].install_hint


def test_unknown_engine_lists_known_names():
    with pytest.raises(EngineUnavailable, match=r"unknown engine 'nope'.*onnxruntime.*tensorrt.*torch"):
        engine_class("nope")
    assert "unknown engine" in probe("nope", "cpu")


def test_missing_module_gives_install_hint(monkeypatch, tiny):
    monkeypatch.setitem(BUILTIN_ENGINES, "fake", EngineSpec("fake", "filmcolor_no_such_module:Fake", "pip install fake-x"))
    with pytest.raises(EngineUnavailable, match="pip install fake-x"):
        engine_class("fake")
    model, config = tiny
    with pytest.raises(EngineUnavailable, match="pip install fake-x"):
        create_engine("fake", model, config)


def test_missing_package_probe_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    reason = probe("onnxruntime", "cpu")
    assert reason and BUILTIN_ENGINES["onnxruntime"].install_hint in reason
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    reason = probe("tensorrt", "cuda")
    assert reason and BUILTIN_ENGINES["tensorrt"].install_hint in reason


def test_probe_reasons_on_cpu_only_machine():
    assert "cuda" in probe("tensorrt", "cpu").lower()
    if not torch.cuda.is_available():
        assert probe("torch", "cuda")
        pytest.importorskip("onnxruntime")
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            assert "CUDAExecutionProvider" in probe("onnxruntime", "cuda")


def test_auto_picks_onnxruntime_int8_on_cpu(tiny):
    if probe("onnxruntime-int8", "cpu"):
        pytest.skip(probe("onnxruntime-int8", "cpu"))
    model, config = tiny
    eng = create_engine("auto", model, config, device="cpu")
    assert eng.name == "onnxruntime-int8" and eng.capabilities.device == "cpu"
    eng.close()
    if not torch.cuda.is_available():  # no device given: the CUDA choices are skipped with their reasons
        eng = create_engine("auto", model, config)
        assert eng.name == "onnxruntime-int8"
        eng.close()


def test_onnxruntime_cpu_threads_and_zero_copy(tiny):
    if probe("onnxruntime", "cpu"):
        pytest.skip(probe("onnxruntime", "cpu"))
    from filmcolor.engines.onnxruntime_engine import OnnxRuntimeEngine

    model, config = tiny
    eng = OnnxRuntimeEngine(model, config, device="cpu", threads=1)
    assert eng.threads == 1 and "1 threads" in eng.describe()
    assert eng.onnx_path.exists() and eng.onnx_path.suffix == ".onnx"
    out = eng.infer(_L(1, 64, 64, "cpu"))
    assert out.is_contiguous() and not out.requires_grad
    eng.close()


# ---------------------------------------------------------------------------------------------------------------
# Export


@pytest.mark.parametrize("arch, kwargs, sizes", [
    ("sagan-unet-tiny", {}, [(1, 64, 64), (2, 96, 128)]),
    ("sagan-unet", {"pretrained": False}, [(1, 64, 96), (2, 128, 64)]),
])
def test_export_parity(tmp_path, arch, kwargs, sizes):
    pytest.importorskip("onnxruntime")
    from filmcolor.engines.export import export_onnx, parity

    torch.manual_seed(0)
    model = create_model(arch, **kwargs).eval()
    with torch.no_grad():
        model.attn.gamma.fill_(0.5)  # make the self-attention block matter
    config = ModelConfig(architecture=arch, kwargs=kwargs)
    path = export_onnx(model, config, tmp_path / f"{arch}.onnx")
    assert path.exists() and not list(tmp_path.glob("*.tmp"))  # atomic: no temp file left behind
    # measured: tiny 1.5e-5, full sagan-unet 7.6e-6 (Lab units)
    assert parity(model, path, sizes) < 1e-3
    with torch.no_grad():  # the original model is untouched by the export (spectral norm still parametrised)
        assert model(_L(1, 64, 64, "cpu")).shape == (1, 2, 64, 64)


def test_export_graph_is_dynamic(tmp_path):
    onnx = pytest.importorskip("onnx")
    from filmcolor.engines.export import export_onnx

    model = create_model("sagan-unet-tiny")
    path = export_onnx(model, ModelConfig("sagan-unet-tiny"), tmp_path / "t.onnx", verify=False)
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["L"] and [o.name for o in proto.graph.output] == ["ab"]
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", "", "H", "W"]
    assert {p.key for p in proto.metadata_props} >= {"filmcolor.architecture"}


def test_export_half_precision_keeps_float32_io(tmp_path):
    """The graph for strongly typed TensorRT builds: computes in fp16, L and ab stay float32."""
    onnx = pytest.importorskip("onnx")
    from filmcolor.engines.export import export_onnx

    path = export_onnx(create_model("sagan-unet-tiny"), ModelConfig("sagan-unet-tiny"), tmp_path / "h.onnx",
                       dtype=torch.float16)
    proto = onnx.load(str(path))
    f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert proto.graph.input[0].type.tensor_type.elem_type == f32
    assert proto.graph.output[0].type.tensor_type.elem_type == f32
    assert {t.data_type for t in proto.graph.initializer if t.dims} == {f16}


def test_onnx_cache_path(tmp_path, monkeypatch):
    from filmcolor.engines.export import onnx_cache_path

    monkeypatch.setenv("FILMCOLOR_CACHE", str(tmp_path / "c"))
    torch.manual_seed(0)
    a = create_model("sagan-unet-tiny")
    cfg = ModelConfig("sagan-unet-tiny", name="my model")
    p1 = onnx_cache_path(a, cfg)
    assert p1 == onnx_cache_path(a, cfg)  # deterministic
    assert p1.parent == tmp_path / "c" / "onnx" and p1.name.startswith("my-model-sagan-unet-tiny-")
    with torch.no_grad():
        a.head[-1].bias.add_(1.0)
    assert onnx_cache_path(a, cfg) != p1  # weights are part of the key
    assert onnx_cache_path(a, ModelConfig("sagan-unet-tiny", kwargs={"width": 8}, name="my model")) != \
        onnx_cache_path(a, cfg)  # so is the graph-defining config
    assert onnx_cache_path(a, cfg, opset=18) != onnx_cache_path(a, cfg)
    assert onnx_cache_path(a, cfg, cache_dir=tmp_path / "x").parent == tmp_path / "x" / "onnx"


def test_bench_engine_rows(tiny):
    from filmcolor.bench_model import bench_engine

    model, config = tiny
    eng = create_engine("torch", model, config, device="cpu")
    rows = bench_engine(eng, render_sizes=(64, 96), frames=2, batch=1, warmup=1)
    assert [r["render_size"] for r in rows] == [64, 96]
    assert rows[0]["height"] == 64 and rows[0]["width"] == 128  # 16:9 at short side 64, multiples of 32
    assert all(r["ms_per_frame"] > 0 and r["frames"] == 2 for r in rows)
    eng.close()


def test_bench_engines_interleaves_and_keeps_each_engines_batch(tiny):
    from filmcolor.bench_model import bench_engines

    model, config = tiny
    calls = []

    class Counting:  # wraps an engine, records the order of calls
        def __init__(self, eng, tag):
            self.eng, self.tag, self.capabilities = eng, tag, eng.capabilities

        def infer(self, L):
            calls.append((self.tag, L.shape[0]))
            return self.eng.infer(L)

    a = Counting(create_engine("torch", model, config, device="cpu", batch=1), "a")
    b = Counting(create_engine("torch", model, config, device="cpu", batch=2), "b")
    rows = bench_engines({"a": a, "b": b}, render_sizes=(64,), frames=4, warmup=0)
    assert [(r["engine"], r["batch"], r["frames"]) for r in rows] == [("a", 1, 4), ("b", 2, 4)]
    assert calls == [("a", 1), ("b", 2), ("a", 1), ("b", 2), ("a", 1), ("a", 1)]  # round by round
    assert all(r["ms_per_frame"] > 0 for r in rows)


# ---------------------------------------------------------------------------------------------------------------
# int8 quantisation


def test_packaged_calibration_frames_are_lab_l():
    from filmcolor.engines.quantize import calibration_frames

    frames = calibration_frames(limit=4)
    assert len(frames) == 4
    assert all(f.shape == (1, 1, 256, 448) and f.dtype == np.float32 for f in frames)
    assert 0.0 <= min(f.min() for f in frames) and max(f.max() for f in frames) <= 100.0
    assert np.ptp(frames[0]) > 20  # real pictures, not a flat frame


def test_calibration_from_the_users_clip(tmp_path):
    from conftest import make_clip

    from filmcolor.engines.quantize import calibration_frames

    clip = make_clip(tmp_path / "a.mkv", frames=2, size=(128, 96))
    assert len(calibration_frames(clip)) == 2
    with pytest.raises(FileNotFoundError):
        calibration_frames(tmp_path / "missing.mp4")


def test_guided_calibration_feeds_hints_and_none():
    from filmcolor.engines.quantize import calibration_feeds

    frames = [np.full((1, 1, 32, 64), 50.0, np.float32)] * 3
    plain, guided = calibration_feeds(frames), calibration_feeds(frames, guided=True)
    assert [set(f) for f in plain] == [{"L"}] * 3 and len(guided) == 6
    assert all(set(f) == {"L", "hint_ab", "mask"} for f in guided)
    assert [float(f["mask"].max()) > 0 for f in guided] == [False, True] * 3   # each frame without and with hints
    assert np.abs(guided[1]["hint_ab"]).max() <= 80 and guided[1]["hint_ab"].shape == (1, 2, 32, 64)
    again = calibration_feeds(frames, guided=True)
    assert all(np.array_equal(a["hint_ab"], b["hint_ab"]) for a, b in zip(guided, again))  # fixed seed: a stable cache key


def test_int8_graph_is_cached_under_a_key_of_graph_and_frames(tiny):
    from filmcolor.engines.export import ensure_onnx
    from filmcolor.engines.quantize import calibration_feeds, calibration_frames, ensure_int8, int8_path_for

    model, config = tiny
    fp32 = ensure_onnx(model, config)
    frames = calibration_frames(limit=3)
    path = ensure_int8(fp32, frames)
    assert path.exists() and path.parent.name == "onnx-int8"
    mtime = path.stat().st_mtime_ns
    assert ensure_int8(fp32, frames) == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert int8_path_for(fp32, calibration_feeds(frames[:2])) != path  # other calibration frames, other graph
    import onnx

    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_int8_cache_hit_does_not_decode_the_calibration_clip(tiny, tmp_path, monkeypatch):
    from conftest import make_clip

    from filmcolor.engines import quantize
    from filmcolor.engines.export import ensure_onnx

    model, config = tiny
    fp32 = ensure_onnx(model, config)
    clip = make_clip(tmp_path / "a.mkv", frames=2, size=(128, 96))
    path = quantize.ensure_int8(fp32, quantize.Calibration(clip))
    assert path.exists()

    def no_decoding(*a, **k):
        raise AssertionError("decoded the calibration clip although the int8 graph was cached")

    monkeypatch.setattr(quantize, "calibration_frames", no_decoding)
    assert quantize.ensure_int8(fp32, quantize.Calibration(clip)) == path
    other = make_clip(tmp_path / "b.mkv", frames=3, size=(128, 96))
    assert quantize.Calibration(other).key() != quantize.Calibration(clip).key()        # the clip's bytes
    assert quantize.Calibration(clip, limit=1).key() != quantize.Calibration(clip).key()  # and the frame count
    with pytest.raises(FileNotFoundError):
        quantize.Calibration(tmp_path / "missing.mp4").key()


def test_int8_engine_is_cpu_only_and_the_first_automatic_choice_there(tiny):
    from filmcolor.engines.registry import AUTO_ORDER

    assert "int8 is for CPUs" in (probe("onnxruntime-int8", "cuda") or "")
    cpu = [name for name, dev in AUTO_ORDER if dev == "cpu"]
    assert cpu[0] == "onnxruntime-int8" and ("onnxruntime-int8", "cuda") not in AUTO_ORDER
