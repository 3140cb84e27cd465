"""The engine conformance suite: what the pipeline relies on from every engine.

A third-party engine, registered under the ``filmcolor.engines`` entry-point group, runs it like this::

    from filmcolor.testing.engines import EngineConformance

    class TestMyEngine(EngineConformance):
        @pytest.fixture
        def engine_name(self):
            return "my-engine"

The engine is built around a tiny random generator (attention switched on) on the device of pytest's
``--device`` option where the project defines one (else the CPU), and is compared with the float32
PyTorch engine on the same device. An engine that cannot run here skips with its probe's reason.
Tolerances are class attributes, so an approximate engine (int8) states its own.
"""

from __future__ import annotations

import pytest
import torch

from filmcolor.engines import Engine, create_engine, probe
from filmcolor.engines.base import EngineClosed
from filmcolor.models import ModelConfig, create_model

AB_MAX = 110.0  # generators emit tanh * 110 (Lab units)


def tiny_generator(guidance: bool = False, seed: int = 0) -> tuple[torch.nn.Module, ModelConfig]:
    """A tiny random SAGAN U-Net (render size 64) with its self-attention switched on, so it is exercised."""
    torch.manual_seed(seed)
    model = create_model("sagan-unet-tiny", guidance=guidance).eval()
    with torch.no_grad():
        model.attn.gamma.fill_(0.7)        # gamma starts at 0: attention would be skipped
        model.head[-1].bias.copy_(torch.tensor([0.3, 0.5]))  # some colour, so outputs are not grey
        for out in getattr(model.guide, "outs", ()):  # guidance outputs start at zero: give hints an effect
            torch.nn.init.normal_(out.weight, std=0.3)
    kwargs = {"guidance": True} if guidance else {}
    return model, ModelConfig(architecture="sagan-unet-tiny", kwargs=kwargs, render_size=64, name="tiny-conformance")


def random_L(n: int, h: int, w: int, device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, h, w, generator=g) * 100.0).to(device)


class EngineConformance:
    """Subclass and override the ``engine_name`` fixture; every test below then runs on that engine."""

    parity_max = 1e-3       # max |a,b - torch float32| in Lab units, full-precision engines
    parity_max_fp16 = 1.0   # the same for engines running in half precision
    parity_mean: float | None = None  # optional bounds on the error distribution (approximate engines)
    parity_p99: float | None = None
    engine_options: dict = {}  # engine-specific keyword arguments every engine of the suite is built with

    @pytest.fixture(autouse=True)
    def _cache(self, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
        """Exports and built engines go to a temporary cache (``FILMCOLOR_CACHE``), never to ~/.cache;
        one folder per test class, so its tests reuse one export."""
        folder = tmp_path_factory.getbasetemp() / f"engine-cache-{type(self).__name__}"
        folder.mkdir(exist_ok=True)
        monkeypatch.setenv("FILMCOLOR_CACHE", str(folder))

    @pytest.fixture
    def engine_name(self) -> str:
        raise NotImplementedError("override the engine_name fixture with your engine's registered name")

    @pytest.fixture
    def device(self, request: pytest.FixtureRequest) -> str:
        dev = str(request.config.getoption("--device", "cpu"))
        if dev.startswith("cuda") and not torch.cuda.is_available():
            pytest.skip("--device cuda given but torch sees no CUDA device")
        return dev

    @pytest.fixture
    def tiny(self) -> tuple[torch.nn.Module, ModelConfig]:
        return tiny_generator()

    @pytest.fixture
    def make(self, engine_name: str, device: str, tiny):
        """``make(**options)`` -> a new engine on ``device`` (closed at the end of the test)."""
        if reason := probe(engine_name, device):
            pytest.skip(f"{engine_name} on {device}: {reason}")
        made: list[Engine] = []

        def build(model_config=None, **options) -> Engine:
            model, config = model_config or tiny
            made.append(create_engine(engine_name, model, config, device=device, **{**self.engine_options, **options}))
            return made[-1]

        yield build
        for eng in made:
            eng.close()

    @pytest.fixture
    def engine(self, make) -> Engine:
        return make()

    # -- the contract of infer -------------------------------------------------------------------------
    def test_output_shape_dtype_device(self, engine: Engine):
        caps = engine.capabilities
        out = engine.infer(random_L(2, 64, 96, caps.device))
        assert out.shape == (2, 2, 64, 96) and out.dtype == torch.float32
        assert out.device.type == torch.device(caps.device).type
        assert torch.isfinite(out).all() and out.abs().max() <= AB_MAX + 1e-3
        assert caps.dynamic_shapes and caps.preferred_batch >= 1

    def test_deterministic(self, engine: Engine):
        L = random_L(2, 64, 64, engine.capabilities.device, seed=1)
        assert torch.equal(engine.infer(L).clone(), engine.infer(L))

    def test_batch_invariance(self, engine: Engine):
        L = random_L(3, 64, 96, engine.capabilities.device, seed=2)
        together = engine.infer(L)
        alone = torch.cat([engine.infer(L[i:i + 1]) for i in range(3)])
        assert (together - alone).abs().max().item() <= (0.5 if engine.capabilities.fp16 else 1e-4)

    def test_parity_with_torch_float32(self, engine: Engine, tiny, device):
        model, config = tiny
        reference = create_engine("torch", model, config, device=device, fp16=False)
        L = random_L(2, 96, 64, engine.capabilities.device, seed=3)
        delta = (engine.infer(L).float().cpu() - reference.infer(L.to(device)).cpu()).abs()
        reference.close()
        bound = self.parity_max_fp16 if engine.capabilities.fp16 else self.parity_max
        assert delta.max().item() <= bound, f"{engine.describe()}: max |delta ab| = {delta.max().item():.3g}"
        if self.parity_mean is not None:
            assert delta.mean().item() <= self.parity_mean, f"mean |delta ab| = {delta.mean().item():.3g}"
        if self.parity_p99 is not None:
            p99 = delta.flatten().quantile(0.99).item()
            assert p99 <= self.parity_p99, f"99th percentile |delta ab| = {p99:.3g}"

    def test_dynamic_height_width(self, engine: Engine):
        for h, w in ((64, 128), (96, 64)):
            engine.prepare(h, w)
            assert engine.infer(random_L(1, h, w, engine.capabilities.device)).shape == (1, 2, h, w)

    # -- common options, guidance, lifetime --------------------------------------------------------------
    def test_common_options_are_taken_and_reported(self, make):
        eng = make(batch=3, threads=1, fp16=False, render_sizes=(64,))
        caps = eng.capabilities
        assert caps.preferred_batch == 3 and not caps.fp16
        assert eng.name in eng.describe() and eng.size_multiple >= 1

    def test_guidance_is_used_or_refused(self, make, device):
        model_config = tiny_generator(guidance=True)
        eng = make(model_config)
        L = random_L(1, 64, 64, eng.capabilities.device, seed=4)
        hint = torch.full((1, 2, 64, 64), 40.0, device=L.device)
        if not eng.accepts_guidance:  # automatic-only engines: the pipeline pastes hints itself
            with pytest.raises(ValueError, match="takes no guidance"):
                eng.infer(L, (hint, torch.ones(1, 1, 64, 64, device=L.device)))
            return
        auto = eng.infer(L)
        empty = eng.infer(L, (hint, torch.zeros(1, 1, 64, 64, device=L.device)))
        full = eng.infer(L, (hint, torch.ones(1, 1, 64, 64, device=L.device)))
        delta = (empty - auto).abs()
        if self.parity_mean is not None:  # approximate engines: the guided graph is quantised on its own
            assert delta.mean().item() <= self.parity_mean and delta.max().item() <= self.parity_max
        else:  # an empty mask is the automatic model
            assert delta.max().item() <= (0.5 if eng.capabilities.fp16 else 1e-3)
        assert (full - auto).abs().mean().item() > 10 * max(delta.mean().item(), 0.01)  # and hints are used

    def test_close_is_idempotent_and_infer_after_close_is_one_clear_error(self, make, engine_name):
        eng = make()
        dev = eng.capabilities.device
        eng.close()
        eng.close()
        with pytest.raises(EngineClosed, match=f"the {engine_name} engine is closed"):
            eng.infer(random_L(1, 64, 64, dev))
