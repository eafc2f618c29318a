"""The .pyi stubs of the compiled modules list what the modules export, with the same parameters.

The stubs are read from beside the imported package, so where fastconv was installed from a wheel
this also checks that they shipped. After changing a binding: build_support/write_stubs.py.
"""
import ast
import re
from pathlib import Path

import pytest

import fastconv
from fastconv import _native

# A parameter's name in pybind11's signature line: after "(" or a top-level ", ", before ": ".
PARAM = re.compile(r"(?:^|, )\*{0,2}(\w+)(?=: |, |$)")


def stub_tree(name):
    path = Path(fastconv.__file__).with_name(f"{name}.pyi")
    assert path.is_file(), f"{path} is missing (not shipped, or not written)"
    return ast.parse(path.read_text(), filename=str(path))


def stub_names(body):
    names = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign):
            names[node.target.id] = node
    return names


def stub_params(func):
    a = func.args
    params = [p.arg for p in a.posonlyargs + a.args + ([a.vararg] if a.vararg else []) + a.kwonlyargs]
    return [p for p in params if p != "self"]


def compiled_params(obj):
    """Parameter names from the first line of pybind11's docstring, `name(a: T, b: U = d) -> R`."""
    first = (obj.__doc__ or "").splitlines()[0]
    inner = first[first.index("(") + 1:first.rindex(") -> ")]
    return [p for p in PARAM.findall(inner) if p != "self"]


def compiled_modules():
    yield "_C", _native.C
    if _native.CUDA is not None:
        yield "_cuda", _native.CUDA
    else:
        try:  # built but unusable here (no driver or device): it still imports
            import fastconv._cuda as cuda
        except ImportError:
            return
        yield "_cuda", cuda


@pytest.mark.parametrize("name,module", list(compiled_modules()))
def test_stub_lists_every_export_and_nothing_else(name, module):
    public = {n for n in dir(module) if not n.startswith("_")}
    stubbed = set(stub_names(stub_tree(name).body))
    assert sorted(public - stubbed) == [], "exported but not in the stub"
    assert sorted(stubbed - public) == [], "in the stub but not exported"


@pytest.mark.parametrize("name,module", list(compiled_modules()))
def test_stub_parameters_match_the_compiled_signatures(name, module):
    checked = 0
    for fname, node in stub_names(stub_tree(name).body).items():
        obj = getattr(module, fname)
        if isinstance(node, ast.FunctionDef):
            assert stub_params(node) == compiled_params(obj), fname
            checked += 1
        elif isinstance(node, ast.ClassDef) and not issubclass(obj, Exception):
            for member, sub in stub_names(node.body).items():
                if isinstance(sub, ast.FunctionDef) and not sub.decorator_list:
                    assert stub_params(sub) == compiled_params(getattr(obj, member)), member
                    checked += 1
    assert checked >= 20


def test_parameter_parser_reads_pybind11_signatures():
    doc = ('f(x: object, filter: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | '
           'typing.SupportsIndex], "FixedSize(2)"], b: object = None, *, copy: object = None) -> '
           'tuple[int, int]')

    class F:
        __doc__ = doc

    assert compiled_params(F) == ["x", "filter", "b", "copy"]
