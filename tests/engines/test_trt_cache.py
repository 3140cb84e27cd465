"""TensorRT cache logic without TensorRT (keys, profile shapes, the lock, atomic writes), plus one GPU test
that builds and runs a real engine for the tiny model (skipped unless ``--device cuda`` and tensorrt)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from filmcolor.engines import trt_cache
from filmcolor.engines.trt_cache import (engine_cache_key, engine_path, profile_shapes, render_hw, shape_in_profile, timing_cache_path)
from filmcolor.render import render_shape

SHAPES = ((1, 1, 256, 256), (8, 1, 256, 448), (8, 1, 448, 608))
BASE = dict(onnx_bytes_hash="ab" * 32, shapes=SHAPES, precision="fp16", trt_version="10.3.0",
            gpu_name="NVIDIA H100 80GB HBM3", compute_capability=(9, 0))


# ---------------------------------------------------------------------------------------------------------------
# Cache key


def test_key_is_stable_hex():
    k = engine_cache_key(**BASE)
    assert k == engine_cache_key(**BASE) and len(k) == 32 and int(k, 16) >= 0
    # equivalent spellings give the same key
    same = dict(BASE, shapes=[list(s) for s in SHAPES], compute_capability="9.0")
    assert engine_cache_key(**same) == k


@pytest.mark.parametrize("field, value", [
    ("onnx_bytes_hash", "cd" * 32),
    ("shapes", ((1, 1, 256, 256), (8, 1, 256, 448), (8, 1, 480, 608))),
    ("shapes", ((1, 1, 256, 256), (4, 1, 256, 448), (8, 1, 448, 608))),
    ("precision", "fp32"),
    ("trt_version", "10.4.0"),
    ("gpu_name", "NVIDIA H200"),
    ("compute_capability", (8, 9)),
])
def test_key_changes_with_each_component(field, value):
    assert engine_cache_key(**dict(BASE, **{field: value})) != engine_cache_key(**BASE)


def test_key_extra_settings():
    k = engine_cache_key(**BASE)
    assert engine_cache_key(**BASE, extra={"workspace": 1 << 30}) != k
    assert engine_cache_key(**BASE, extra={"a": 1, "b": 2}) == engine_cache_key(**BASE, extra={"b": 2, "a": 1})


def test_cache_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("FILMCOLOR_CACHE", str(tmp_path / "fc"))
    root = trt_cache.cache_root()
    assert root == tmp_path / "fc"
    monkeypatch.delenv("FILMCOLOR_CACHE")
    assert trt_cache.cache_root() == Path.home() / ".cache" / "filmcolor"
    assert trt_cache.cache_root(tmp_path) == tmp_path
    p = engine_path(root, "my model/v1", "0" * 32)
    assert p.parent == root / "tensorrt" and p.name == f"my-model-v1-{'0' * 32}.engine"
    t = timing_cache_path(root, "10.3.0", "NVIDIA H100 80GB HBM3", (9, 0))
    assert t.name == "timing-10.3.0-NVIDIA-H100-80GB-HBM3-sm9.0.cache"


# ---------------------------------------------------------------------------------------------------------------
# Profile shapes


def test_render_hw_matches_the_pipeline():
    for r in (64, 192, 256, 320, 384):
        for h, w in ((1080, 1920), (1920, 1080), (480, 640), (800, 1920), (1000, 1000), (1080, 2592)):
            assert render_hw(r, w / h, 32) == render_shape(h, w, r, 32)


def test_profile_shapes_from_render_sizes_and_aspects():
    lo, opt, hi = profile_shapes([192, 256, 320], (9 / 16, 2.4), max_batch=8)
    assert lo == (1, 1, 192, 192)          # smallest render size, square-ish extremes
    assert hi == (8, 1, 576, 768)          # tallest portrait side (320 * 16/9 -> 576), widest 2.4:1 (320 * 2.4)
    assert opt == (8, 1, 320, 576)         # largest render size at 16:9
    for r in (192, 256, 320):
        for a in (9 / 16, 1.0, 4 / 3, 16 / 9, 2.39):
            h, w = render_hw(r, a)
            assert shape_in_profile((1, 1, h, w), (lo, opt, hi)) and shape_in_profile((8, 1, h, w), (lo, opt, hi))
    assert not shape_in_profile((9, 1, 256, 256), (lo, opt, hi))
    assert not shape_in_profile((1, 1, 160, 256), (lo, opt, hi))


def test_profile_shapes_landscape_only_and_options():
    lo, opt, hi = profile_shapes([256], (1.3, 1.8), max_batch=4, opt_batch=2)
    assert lo == (1, 1, 256, 320) and hi == (4, 1, 256, 448) and opt == (2, 1, 256, 448)
    for shape in (lo, opt, hi):
        assert shape[2] % 32 == 0 and shape[3] % 32 == 0
    lo, opt, hi = profile_shapes([64], (1.0, 1.0), max_batch=1, multiple=16, opt_aspect=2.0)
    assert lo == opt == hi == (1, 1, 64, 64)  # opt aspect clamped into the range


def test_profile_shapes_explicit_sides():
    lo, opt, hi = profile_shapes([], ((64, 64), (64, 96), (128, 128)), max_batch=2)
    assert (lo, opt, hi) == ((1, 1, 64, 64), (2, 1, 64, 96), (2, 1, 128, 128))
    with pytest.raises(ValueError):
        profile_shapes([], ((64, 64), (32, 96), (128, 128)), max_batch=2)  # opt below min
    with pytest.raises(ValueError):
        profile_shapes([], ((64, 64), (64, 100), (128, 128)), max_batch=2)  # not a multiple of 32


def test_profile_shapes_rejects_bad_input():
    with pytest.raises(ValueError):
        profile_shapes([], (1.0, 2.0))
    with pytest.raises(ValueError):
        profile_shapes([16], (1.0, 2.0))  # below the size multiple
    with pytest.raises(ValueError):
        profile_shapes([256], (1.0, 2.0), max_batch=0)
    with pytest.raises(ValueError):
        profile_shapes([256], (1.0, 2.0), max_batch=2, opt_batch=3)


# ---------------------------------------------------------------------------------------------------------------
# TensorRT on a GPU


@pytest.mark.cuda
def test_tensorrt_engine_builds_runs_and_caches(tiny_model_path, device, tmp_path):
    pytest.importorskip("tensorrt")
    from filmcolor.engines.tensorrt_engine import TensorRTEngine
    from filmcolor.engines.torch_engine import TorchEngine
    from filmcolor.models import load_model

    model, config = load_model(tiny_model_path)
    with torch.no_grad():
        model.attn.gamma.fill_(0.7)
    ref = TorchEngine(model, config, device=str(device), fp16=False)
    L = torch.rand(2, 1, 64, 96, device=device) * 100
    want = ref.infer(L)
    sides = ((64, 64), (64, 96), (128, 128))
    t0 = time.perf_counter()
    eng = TensorRTEngine(model, config, device=str(device), precision="fp32", batch=2, aspects=sides,
                         cache_dir=tmp_path)
    built = time.perf_counter() - t0
    got = eng.infer(L)
    assert got.shape == (2, 2, 64, 96) and got.device == L.device and got.dtype == torch.float32
    assert (got - want).abs().max().item() < 0.1  # fp32 (TF32 kernels allowed)
    assert eng.infer(L[:1]).shape == (1, 2, 64, 96) and eng.infer(L[..., :64]).shape == (2, 2, 64, 64)
    assert eng.engine_file is not None and eng.engine_file.exists()
    assert list((tmp_path / "tensorrt").glob("timing-*.cache"))
    assert torch.equal(eng.infer(L), eng.infer(L))
    eng.close()
    t0 = time.perf_counter()
    again = TensorRTEngine(model, config, device=str(device), precision="fp32", batch=2, aspects=sides,
                           cache_dir=tmp_path)
    assert time.perf_counter() - t0 < max(built, 1.0) and again.engine_file == eng.engine_file  # loaded from cache
    outside = torch.rand(1, 1, 64, 192, device=device) * 100
    with pytest.raises(ValueError, match="outside the TensorRT profile"):
        again.infer(outside)  # never a build inside infer
    again.prepare(64, 192)  # widened (a rebuild) before frames flow
    assert again.infer(outside).shape == (1, 2, 64, 192)
    again.close()
    half = TensorRTEngine(model, config, device=str(device), batch=2, aspects=sides, cache_dir=tmp_path)
    assert half.capabilities.fp16 and (half.infer(L) - want).abs().max().item() < 2.0
    half.close()


def test_tensorrt_builds_in_prepare_never_in_infer():
    """The profile logic without a GPU: prepare widens only for shapes outside it; infer refuses them."""
    from filmcolor.engines.tensorrt_engine import TensorRTEngine

    eng = TensorRTEngine.__new__(TensorRTEngine)  # no TensorRT here: the attributes _load would set
    eng.profile = profile_shapes((64,), ((64, 64), (64, 96), (128, 128)), 2, 32)
    eng.batch = eng.max_batch = 2
    eng.context, eng.size_multiple, eng.accepts_guidance, eng.device = object(), 32, False, torch.device("cpu")
    widened = []
    eng._widen = lambda h, w: widened.append((h, w))
    eng.prepare(64, 96)
    assert widened == []
    with pytest.raises(ValueError, match=r"call prepare\(64, 192\)"):
        eng.infer(torch.zeros(1, 1, 64, 192))
    assert widened == []
    eng.prepare(64, 192)
    assert widened == [(64, 192)]


# ---------------------------------------------------------------------------------------------------------------
# The build recipe against a stand-in for the tensorrt module (no GPU): flags, profile, timing cache


class _FakeTimingCache:
    def __init__(self, data: bytes) -> None:
        self.entries = set(data.decode().split(",")) - {""}

    def combine(self, other: "_FakeTimingCache", ignore_mismatch: bool) -> bool:
        self.entries |= other.entries
        return True

    def serialize(self) -> bytes:
        return ",".join(sorted(self.entries)).encode()


def _fake_trt(version: str = "10.3.0", weak_typing: bool = True, parse_ok: bool = True):
    from types import ModuleType, SimpleNamespace

    calls: dict = {"flags": [], "profiles": []}

    class Config:
        def set_memory_pool_limit(self, pool, size):
            calls["workspace"] = (pool, size)

        def set_flag(self, flag):
            calls["flags"].append(flag)

        def add_optimization_profile(self, profile):
            calls["profiles"].append(list(profile.shapes))

        def create_timing_cache(self, data):
            return _FakeTimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache

        def get_timing_cache(self):
            return self.cache

    class Profile:
        def __init__(self):
            self.shapes = []

        def set_shape(self, name, lo, opt, hi):
            self.shapes.append((name, lo, opt, hi))

    class Builder:
        def __init__(self, logger):
            self.config = Config()

        def create_network(self, flags):
            calls["network_flags"] = flags
            return "network"

        def create_builder_config(self):
            return self.config

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            if hasattr(config, "cache"):  # the build times layers into the attached timing cache
                config.cache.entries.add(f"layer{len(calls['profiles'])}")
            return memoryview(b"PLAN")

    class Parser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls["onnx"] = path
            return parse_ok

        def get_error(self, i):
            return "unsupported node Foo"

    flags = SimpleNamespace(BF16="BF16", FP16="FP16") if weak_typing else SimpleNamespace()
    trt = ModuleType("tensorrt")  # a module, like the real one (hashable: the logger is cached per module)
    trt.__dict__.update(__version__=version, Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda s, lvl: None}),
                        Builder=Builder, OnnxParser=Parser, BuilderFlag=flags,
                        MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
                        NetworkDefinitionCreationFlag=SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=1))
    return trt, calls


def test_build_plan_recipe(tmp_path):
    from filmcolor.engines.tensorrt_engine import build_plan

    trt, calls = _fake_trt()
    timing = tmp_path / "tensorrt" / "timing.cache"
    plan = build_plan(trt, tmp_path / "m.onnx", SHAPES, precision="fp16", workspace=1 << 30, timing_cache=timing)
    assert plan == b"PLAN" and calls["onnx"] == str(tmp_path / "m.onnx")
    assert calls["network_flags"] == 0 and calls["flags"] == ["FP16"]
    assert calls["profiles"] == [[("L", *SHAPES)]] and calls["workspace"] == ("WORKSPACE", 1 << 30)
    assert timing.read_bytes() == b"layer1"
    timing.write_bytes(b"layer1,other")  # another process added to the shared cache meanwhile: merged, not lost
    build_plan(trt, tmp_path / "m.onnx", SHAPES, precision="bf16", timing_cache=timing)
    assert calls["flags"][1:] == ["BF16", "FP16"]
    assert set(timing.read_bytes().decode().split(",")) == {"layer1", "layer2", "other"}


def test_build_plan_guided_graph_profiles_every_input(tmp_path):
    from filmcolor.engines.tensorrt_engine import build_plan

    trt, calls = _fake_trt()
    build_plan(trt, tmp_path / "g.onnx", SHAPES, inputs={"L": 1, "hint_ab": 2, "mask": 1})
    (profile,) = calls["profiles"]
    by_name = {name: shapes for name, *shapes in profile}
    assert by_name["L"] == list(SHAPES)
    assert by_name["hint_ab"] == [(n, 2, h, w) for n, _, h, w in SHAPES]   # same batch and sides, 2 channels
    assert by_name["mask"] == [(n, 1, h, w) for n, _, h, w in SHAPES]


def test_engine_io_check():
    from types import SimpleNamespace

    from filmcolor.engines.tensorrt_engine import check_io

    trt = SimpleNamespace(float32="f32")
    engine = lambda names, dt="f32": SimpleNamespace(num_io_tensors=len(names), get_tensor_name=names.__getitem__,  # noqa: E731
                                                     get_tensor_dtype=lambda n: dt)
    check_io(trt, engine(["L", "hint_ab", "mask", "ab"]), ["L", "hint_ab", "mask", "ab"])
    with pytest.raises(RuntimeError, match="expected"):
        check_io(trt, engine(["L", "ab"]), ["L", "hint_ab", "mask", "ab"])
    with pytest.raises(RuntimeError, match="float32"):
        check_io(trt, engine(["L", "ab"], "f16"), ["L", "ab"])


def test_build_plan_strongly_typed_and_errors(tmp_path):
    from filmcolor.engines.tensorrt_engine import _flag, build_plan

    trt, calls = _fake_trt(version="11.0.0", weak_typing=False)
    assert _flag(trt, "fp16") is None  # TensorRT 11: no FP16 flag -> strongly typed fp16 graph instead
    build_plan(trt, tmp_path / "m.onnx", SHAPES, precision="fp16", strongly_typed=True)
    assert calls["network_flags"] == 1 << 1 and calls["flags"] == []
    trt, _ = _fake_trt(parse_ok=False)
    with pytest.raises(RuntimeError, match="unsupported node Foo"):
        build_plan(trt, tmp_path / "m.onnx", SHAPES)
