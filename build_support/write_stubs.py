"""Write python/fastconv/_C.pyi and _cuda.pyi from the compiled modules' own signatures.

pybind11 puts each function's signature in the first line of its __doc__; this turns those into
stubs with plain types, so that editors show the parameters. Run it after adding or changing a
binding, with the modules built in place (tests/test_stubs.py says when the stubs are out of date):

    PYTHONPATH=python python build_support/write_stubs.py
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "fastconv"

# Parameters pybind11 types as `object` (the bindings check them themselves): their plain types.
FLOATS = {"ratio", "lr", "momentum", "beta1", "beta2", "eps", "weight_decay", "dloss", "value"}
INTS = {"seed", "step", "i", "tap", "stride", "padding", "dilation", "out", "size", "kernel", "o",
        "index"}
BOOLS = {"ceil_mode", "count_include_pad", "need_dx", "need_db", "relu", "nesterov", "on",
         "window_indices"}
OTHER = {"shape": "tuple[int, ...]", "dtype": "Any", "obj": "Any", "array": "numpy.ndarray",
         "src": "DeviceArray | numpy.ndarray",
         "stream": "Any", "max_version": "Any", "dl_device": "Any", "copy": "Any"}
# The multi-tensor updates' lists: of the module's arrays, or of scalars.
ARRAY_LISTS = {"params", "grads", "velocities", "ms", "vs"}
SCALAR_LISTS = {"steps": "list[int]", "weight_decays": "list[float]"}
# Arrays that may be None where the binding has no default (conv without bias or fused relu).
MAYBE_NONE = {("conv2d_forward", "b"), ("conv2d_backward", "relu_y"),
              ("conv2d_relu_max_pool2d_forward", "b"), ("sgd_update_multi", "velocities"),
              ("sgd_update_multi", "weight_decays"), ("adam_update_multi", "weight_decays")}
# Per-step scalars the GPU also takes in device memory (read when the kernel runs, so that CUDA
# graph replays follow them): a DeviceArray there too. Arguments only the GPU takes: None on the
# CPU.
DEVICE_SCALARS = {("dropout_forward", "seed"), ("dropout_backward", "seed")}
GPU_ONLY = {("adam_update_multi", "corrections")}
PAIR = re.compile(r'typing\.Annotated\[collections\.abc\.Sequence\[[^\]]*\], "FixedSize\(2\)"\]')
SIGNATURE = re.compile(r"^(\w+)\((.*)\) -> (.+)$")


def split_params(text: str) -> list[str]:
    """Top-level commas only: annotations nest brackets."""
    params, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "[(" and 1 or ch in "])" and -1 or 0
        if ch == "," and depth == 0:
            params.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        params.append(text[start:].strip())
    return params


def parse_signature(doc: str | None) -> tuple[str, list[tuple[str, str, str | None]], str]:
    """name, [(parameter, annotation, default)], return annotation of pybind11's first doc line."""
    match = SIGNATURE.match((doc or "").splitlines()[0] if doc else "")
    if not match:
        raise ValueError(f"no pybind11 signature in {doc!r}")
    params = []
    for param in split_params(match[2]):
        if param in ("*", "*args", "**kwargs"):
            params.append((param, "", None))
            continue
        name, rest = param.split(":", 1)
        annotation, _, default = rest.partition(" = ")
        params.append((name.strip(), annotation.strip(), default.strip() or None))
    return match[1], params, match[3].strip()


def plain_type(name: str, annotation: str, array: str) -> str:
    annotation = PAIR.sub("tuple[int, int]", annotation)
    annotation = annotation.replace("typing.SupportsInt | typing.SupportsIndex", "int")
    annotation = annotation.replace("fastconv._cuda.", "")
    if annotation != "object":
        return annotation
    if name in FLOATS:
        return "float"
    if name in INTS:
        return "int"
    if name in BOOLS:
        return "bool"
    if name in ARRAY_LISTS:
        return f"list[{array}]"
    return SCALAR_LISTS.get(name) or OTHER.get(name, array)


def function_stub(doc: str, array: str, indent: str = "", method: bool = False) -> str:
    name, params, returns = parse_signature(doc)
    parts = []
    for pname, annotation, default in params:
        if pname == "self" and method:
            parts.append("self")
        elif pname.startswith("*"):
            parts.append(pname if pname != "*args" else "*args: int")
        else:
            kind = plain_type(pname, annotation, array)
            if (name, pname) in MAYBE_NONE:
                kind = f"{kind} | None"
            if (name, pname) in DEVICE_SCALARS and array == "DeviceArray":
                kind = f"{kind} | DeviceArray"
            if (name, pname) in GPU_ONLY and array != "DeviceArray":
                kind = "None"
            if default == "None" and kind not in ("Any", "None"):
                kind = f"{kind} | None"
            parts.append(f"{pname}: {kind}" + (f" = {default}" if default else ""))
    returns = {"object": "Any"}.get(returns, plain_type("", returns, array))
    return f"{indent}def {name}({', '.join(parts)}) -> {returns}: ..."


def module_stub(module, array: str) -> str:
    lines = [f'"""Signatures of {module.__name__} (written by build_support/write_stubs.py)."""',
             "from typing import Any", "", "import numpy", ""]
    for name in sorted(n for n in dir(module) if not n.startswith("_")):
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            base = obj.__mro__[1].__name__
            lines.append(f"class {name}({base}): ...")
        elif isinstance(obj, type):
            lines += class_stub(obj, array)
        elif callable(obj):
            lines.append(function_stub(obj.__doc__, array))
        else:
            lines.append(f"{name}: {type(obj).__name__}")
    return "\n".join(lines) + "\n"


def class_stub(cls: type, array: str) -> list[str]:
    lines = [f"class {cls.__name__}:"]
    for name in sorted(vars(cls)):
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
            continue
        member = vars(cls)[name]
        if isinstance(member, property):
            _, _, returns = parse_signature(member.fget.__doc__.replace("(arg0:", f"{name}(arg0:"))
            lines += ["    @property", f"    def {name}(self) -> {plain_type('', returns, array)}: ..."]
        elif callable(member) and SIGNATURE.match((member.__doc__ or "").split("\n")[0]):
            lines.append(function_stub(member.__doc__, array, "    ", method=True))
    return lines


def main() -> None:
    importlib.import_module("fastconv._native")  # loads the modules' shared libraries first
    for name, array in (("_C", "numpy.ndarray"), ("_cuda", "DeviceArray")):
        module = importlib.import_module(f"fastconv.{name}")
        (PACKAGE / f"{name}.pyi").write_text(module_stub(module, array))
        print("wrote", PACKAGE / f"{name}.pyi")


if __name__ == "__main__":
    main()
