"""ONNX export of any registered generator, with dynamic batch, height and width, and an on-disk cache.

Input ``"L"`` ``[N,1,H,W]`` float32 (Lab L, 0..100), output ``"ab"`` ``[N,2,H,W]`` float32 (Lab units);
N, H and W are dynamic (H, W multiples of the model's ``size_multiple``). Spectral norm is baked in
first (the exported weights are the normalised ones), and pixel-shuffle upsampling is rewritten as the
equivalent stride-2 transposed convolution (``filmcolor.models.layers.TransposedShuffleUp``: about 10%
faster under ONNX Runtime's CPU kernels, same output).

Exporter choice (measured with torch 2.13 / onnxscript 0.7 on all six registered architectures):
the TorchScript exporter (``dynamo=False`` + ``dynamic_axes``) exports every one of them, the SAGAN
self-attention block included, honours opset 17, names the dynamic dims N/H/W and takes 1-3 s; the
torch.export one (``dynamo=True`` + ``dynamic_shapes``) also gives exact graphs but takes 3-7x longer,
cannot down-convert ``resnet-gen``'s reflection Pad to opset 17 (it stays at 18) and names dims
``s4``/``s11``. So ``exporter="auto"`` uses TorchScript first, checks the graph (names, symbolic
dims) and its output at a second shape against PyTorch, and falls back to torch.export (opset >= 18)
if any of that fails or the TorchScript exporter is gone from a future torch.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np
import torch
from torch import nn

from filmcolor.models import ModelConfig
from filmcolor.models.layers import baked_copy, export_friendly

from filmcolor.fs import FileLock, atomic_write

from .trt_cache import cache_root, slug

ONNX_INPUT = "L"
ONNX_OUTPUT = "ab"
ONNX_GUIDANCE = ("hint_ab", "mask")  # extra inputs of a guided graph: [N,2,H,W] Lab units, [N,1,H,W] 0..1
DEFAULT_OPSET = 17
DYNAMO_MIN_OPSET = 18       # torch.export's native opset; down-conversion fails for some ops (Pad)
EXPORT_VERSION = 2          # bump when the export recipe changes: invalidates cached ONNX files
EXPORTERS = ("auto", "torchscript", "dynamo")
VERIFY_TOLERANCE = 1e-2     # Lab units; fp32 exports measure ~1e-5

PathLike = Union[str, os.PathLike]


class _ComputeIn(nn.Module):
    """Runs ``net`` in ``dtype`` while keeping float32 input and output (I/O stays the same for engines)."""

    def __init__(self, net: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net = net.to(dtype)
        self.dtype = dtype
        self.size_multiple = int(getattr(net, "size_multiple", 32))

        self.guided = bool(getattr(net, "guided", False))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.net(*(x.to(self.dtype) for x in inputs)).float()


class _Guided(nn.Module):
    """The guided graph of a generator with a guidance branch: inputs ``L``, ``hint_ab``, ``mask``.

    The plain export of such a generator calls it with ``L`` alone, which skips the branch (exactly the
    automatic model, at the automatic model's cost); this wrapper exports the branch too.
    """

    guided = True

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.size_multiple = int(getattr(net, "size_multiple", 32))

    def forward(self, L: torch.Tensor, hint_ab: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(L, hint_ab, mask)


def accepts_guidance(model: nn.Module) -> bool:
    """True for generators built with a guidance branch (``guidance=True``)."""
    return getattr(model, "guide", None) is not None


def graph_inputs(guided: bool) -> list[str]:
    """Graph inputs: ``L``, plus ``hint_ab`` and ``mask`` for a guided graph."""
    return [ONNX_INPUT, *ONNX_GUIDANCE] if guided else [ONNX_INPUT]


def input_names(model: nn.Module) -> list[str]:
    """Graph inputs of an export-ready model (:func:`graph_inputs` of its ``guided`` flag)."""
    return graph_inputs(bool(getattr(model, "guided", False)))


def prepare_for_export(model: nn.Module, dtype: torch.dtype = torch.float32, *, guided: bool = False) -> nn.Module:
    """A CPU float32 eval-mode copy with spectral norm baked in; computing in ``dtype`` if not float32.

    ``guided``: the graph takes guidance inputs too (the model must have a guidance branch).
    The caller's model is left untouched (it may be on a GPU, channels-last, or in training).
    """
    if guided and not accepts_guidance(model):
        raise ValueError("this model has no guidance inputs (built without guidance=True)")
    m = export_friendly(baked_copy(model)).cpu().float()
    for p in m.parameters():
        p.requires_grad_(False)
    m = _Guided(m).eval() if guided else m
    return m if dtype == torch.float32 else _ComputeIn(m, dtype).eval()


def _size_multiple(model: nn.Module) -> int:
    return max(1, int(getattr(model, "size_multiple", 32)))


def _base_side(model: nn.Module) -> int:
    """A side length valid for the model and large enough for every stride: lcm(size_multiple, 32)."""
    m = _size_multiple(model)
    return m * 32 // math.gcd(m, 32)


def _example_inputs(model: nn.Module, n: int = 2, h: int | None = None, w: int | None = None,
                    seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Batch 2, H != W by default, so no exporter can mistake the dynamic dims for constants or for each
    other; L uniform in 0..100, and for a guided graph hints of +-60 with a sparse mask."""
    b = _base_side(model)
    h, w = h or 2 * b, w or 3 * b
    g = torch.Generator().manual_seed(seed)
    L = torch.rand(n, 1, h, w, generator=g) * 100.0
    if len(input_names(model)) == 1:
        return (L,)
    hint = (torch.rand(n, 2, h, w, generator=g) - 0.5) * 120.0
    mask = (torch.rand(n, 1, h, w, generator=g) > 0.9).float()
    return L, hint, mask


# ----------------------------------------------------------------------------------------------------------------
# Cache keys


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 over every tensor of the state dict (names, dtypes, shapes, bytes), in name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _code_fingerprint(model: nn.Module) -> str:
    """Hash of the source files defining the model's (non-torch) module classes: edits re-export."""
    h = hashlib.sha256()
    files = set()
    for mod in model.modules():
        module_name = type(mod).__module__
        if module_name.split(".")[0] == "torch":
            continue
        file = getattr(sys.modules.get(module_name), "__file__", None)
        if file:
            files.add(file)
    for file in sorted(files):
        try:
            h.update(Path(file).read_bytes())
        except OSError:
            h.update(file.encode())
    return h.hexdigest()


def export_key(model: nn.Module, config: ModelConfig, *, opset: int = DEFAULT_OPSET,
               dtype: torch.dtype = torch.float32, guided: bool = False) -> str:
    """Hex key of an export: the model's weights, the graph-defining config (architecture and its
    arguments), the model code, the graph's inputs, opset, compute dtype and the export recipe version.

    Taken from ``model`` as given, not from its export-ready copy: that copy (spectral norm baked, layers
    rewritten) is a deterministic function of the model's state and code, and making it costs a deep
    copy (0.3 s for the default model), which a cached export does not need."""
    payload = {
        "v": EXPORT_VERSION,
        "inputs": graph_inputs(guided),
        "weights": weights_fingerprint(model),
        "code": _code_fingerprint(model),
        "architecture": config.architecture,
        "kwargs": config.kwargs,
        "opset": int(opset),
        "dtype": str(dtype).replace("torch.", ""),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def onnx_cache_path(model: nn.Module, config: ModelConfig, *, opset: int = DEFAULT_OPSET,
                    dtype: torch.dtype = torch.float32, cache_dir: PathLike | None = None,
                    guided: bool = False) -> Path:
    """Deterministic path of ``model``'s ONNX file in the cache (``$FILMCOLOR_CACHE`` or ``~/.cache/filmcolor``)."""
    key = export_key(model, config, opset=opset, dtype=dtype, guided=guided)
    dt = "" if dtype == torch.float32 else f"-{str(dtype).replace('torch.', '')}"
    dt += "-guided" if guided else ""
    name = f"{slug(config.name)}-{slug(config.architecture)}{dt}-{key[:20]}.onnx"
    return cache_root(cache_dir) / "onnx" / name


# ----------------------------------------------------------------------------------------------------------------
# Export


def _export_torchscript(model: nn.Module, example: tuple[torch.Tensor, ...], path: Path, opset: int) -> None:
    dims = {0: "N", 2: "H", 3: "W"}
    names = input_names(model)
    kwargs = dict(input_names=names, output_names=[ONNX_OUTPUT], opset_version=opset,
                  dynamic_axes={name: dims for name in (*names, ONNX_OUTPUT)}, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice and tracer warnings
        torch.onnx.export(model, example, str(path), **kwargs)


def _export_dynamo(model: nn.Module, example: tuple[torch.Tensor, ...], path: Path, opset: int) -> None:
    dim = getattr(torch.export.Dim, "DYNAMIC", None)
    spec = {0: dim, 2: dim, 3: dim} if dim is not None else {
        0: torch.export.Dim("N"), 2: torch.export.Dim("H"), 3: torch.export.Dim("W")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, example, input_names=input_names(model), output_names=[ONNX_OUTPUT],
                                    opset_version=max(opset, DYNAMO_MIN_OPSET), dynamic_shapes=(spec,) * len(example),
                                    dynamo=True, optimize=True, verbose=False)
    program.save(str(path))


_EXPORTERS = {"torchscript": _export_torchscript, "dynamo": _export_dynamo}


def _check_graph(path: Path, config: ModelConfig, model: nn.Module) -> None:
    """Names and symbolic N/H/W dims as promised; stamps filmcolor metadata. Skipped without ``onnx``."""
    try:
        import onnx
    except ImportError:
        return
    proto = onnx.load(str(path))
    ins = [i.name for i in proto.graph.input]
    outs = [o.name for o in proto.graph.output]
    if ins != input_names(model) or outs != [ONNX_OUTPUT]:
        raise ValueError(f"exported graph has inputs {ins} and outputs {outs}, expected {input_names(model)} and ['ab']")
    for value in (*proto.graph.input, proto.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        fixed = [i for i in (0, 2, 3) if len(dims) == 4 and dims[i].HasField("dim_value")]
        if len(dims) != 4 or fixed:
            raise ValueError(f"{value.name!r} has fixed dims {fixed}: the export is not dynamic")
    meta = {"filmcolor.architecture": config.architecture, "filmcolor.kwargs": json.dumps(config.kwargs, default=str),
            "filmcolor.size_multiple": str(_size_multiple(model)), "filmcolor.export_version": str(EXPORT_VERSION)}
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))


def _verify(model: nn.Module, path: Path) -> None:
    """Run the file at a shape other than the traced one (onnxruntime, CPU) and compare with PyTorch."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    b = _base_side(model)
    err = parity(model, path, [(1, 3 * b, 2 * b)], prepared=True)
    if not err <= VERIFY_TOLERANCE:
        raise ValueError(f"exported graph differs from PyTorch by {err:.3g} at a second shape (not dynamic?)")


def _export_prepared(prepared: nn.Module, config: ModelConfig, path: Path, opset: int, exporter: str,
                     verify: bool) -> Path:
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    order = ("torchscript", "dynamo") if exporter == "auto" else (exporter,)
    example = _example_inputs(prepared)
    fp32 = not isinstance(prepared, _ComputeIn)
    errors = []
    for name in order:
        def write(tmp: Path, name: str = name) -> None:
            _EXPORTERS[name](prepared, example, tmp, opset)
            _check_graph(tmp, config, prepared)
            if verify and fp32:  # onnxruntime's CPU kernels cannot check half/bfloat16 graphs
                _verify(prepared, tmp)

        try:
            return atomic_write(path, write)
        except Exception as exc:  # try the next exporter; report all failures if none works
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    raise RuntimeError(f"ONNX export of {config.architecture!r} failed: " + " | ".join(errors))


def export_onnx(model: nn.Module, config: ModelConfig, path: PathLike, opset: int = DEFAULT_OPSET, *,
                dtype: torch.dtype = torch.float32, exporter: str = "auto", verify: bool = True,
                guided: bool = False) -> Path:
    """Export ``model`` to ``path`` (atomically: temp file, then ``os.replace``); returns the path.

    ``dtype`` float16/bfloat16 computes in that precision inside the graph (for strongly typed
    TensorRT builds) while ``L`` and ``ab`` stay float32. ``verify`` checks the result at a second
    shape with onnxruntime when it is installed. ``guided``: add the guidance inputs ``hint_ab``, ``mask``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _export_prepared(prepare_for_export(model, dtype, guided=guided), config, path, opset, exporter, verify)


def ensure_onnx(model: nn.Module, config: ModelConfig, *, opset: int = DEFAULT_OPSET, dtype: torch.dtype = torch.float32,
                cache_dir: PathLike | None = None, exporter: str = "auto", guided: bool = False) -> Path:
    """The cached ONNX file of ``model``, exported first if missing (one process at a time exports it).

    ``guided``: the graph with guidance inputs (``L``, ``hint_ab``, ``mask``), a file of its own."""
    if guided and not accepts_guidance(model):
        raise ValueError("this model has no guidance inputs (built without guidance=True)")
    path = onnx_cache_path(model, config, opset=opset, dtype=dtype, cache_dir=cache_dir, guided=guided)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(path.name + ".lock"), timeout=1800):
        if not path.exists():  # another process may have exported it while we waited
            net = prepare_for_export(model, dtype, guided=guided)
            _export_prepared(net, config, path, opset, exporter, verify=True)
    return path


# ----------------------------------------------------------------------------------------------------------------
# Parity


def parity(model: nn.Module, onnx_path: PathLike, shapes: Iterable[Sequence[int]], *, seed: int = 0,
           threads: int | None = None, prepared: bool = False) -> float:
    """Max abs a,b difference between PyTorch (float32, CPU) and the ONNX file under onnxruntime (CPU).

    ``shapes``: ``(N, H, W)`` or ``(N, 1, H, W)`` per check; L is uniform random in 0..100.
    ``prepared``: ``model`` is already an export-ready copy (skip the copy and spectral-norm baking).
    Otherwise the reference is the model as PyTorch runs it (before the export rewrites), so the
    check covers those rewrites too.
    """
    import onnxruntime as ort

    net = model if prepared else baked_copy(model).cpu().float()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    names = [i.name for i in session.get_inputs()]
    if len(names) > 1 and not getattr(net, "guided", False):
        net = _Guided(net).eval()  # a guided graph: compare with the model fed the same guidance
    for i, shape in enumerate(shapes):
        n, h, w = (shape[0], shape[-2], shape[-1])
        inputs = _example_inputs(net, n, h, w, seed=seed + i)
        with torch.inference_mode():
            ref = net(*inputs).float()
        out = session.run([ONNX_OUTPUT], {name: x.numpy() for name, x in zip(names, inputs)})[0]
        if out.shape != tuple(ref.shape):
            raise ValueError(f"onnx output shape {out.shape} != torch {tuple(ref.shape)} for input {tuple(inputs[0].shape)}")
        worst = max(worst, float(np.abs(out - ref.numpy()).max()))
    return worst
