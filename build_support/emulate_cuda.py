"""Rewrite a CUDA source for the CPU emulator (csrc/cuda_emu): `k<<<cfg>>>(args)` becomes
`::fc_emu::Launch(cfg).args(args).run([](auto&... fc_a) { k(fc_a...); })`, the one piece of CUDA
syntax a C++ compiler cannot read; everything else is left to csrc/cuda_emu/include.

Usage: python emulate_cuda.py SOURCE.cu OUTPUT.cpp
"""
from __future__ import annotations

import re
import sys

# The kernel before `<<<`: a name, maybe qualified, maybe with template arguments.
_KERNEL = re.compile(r"([A-Za-z_][\w:]*(?:\s*<[^<>;(){}]*>)?)\s*$")


def _matching_paren(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced parentheses after a kernel launch")


def rewrite(text: str, name: str = "<source>") -> str:
    out = []
    pos = 0
    while True:
        start = text.find("<<<", pos)
        if start < 0:
            out.append(text[pos:])
            return "".join(out)
        kernel = _KERNEL.search(text, pos, start)
        end_cfg = text.find(">>>", start)
        paren = end_cfg + 3
        while paren < len(text) and text[paren] in " \t\\\n":
            paren += 1
        if kernel is None or end_cfg < 0 or paren >= len(text) or text[paren] != "(":
            line = text.count("\n", 0, start) + 1
            raise ValueError(f"{name}:{line}: a kernel launch the emulator cannot read")
        close = _matching_paren(text, paren)
        launch = (f"::fc_emu::Launch({text[start + 3:end_cfg]})"
                  f".args({text[paren + 1:close]})"
                  f".run([](auto&... fc_a) {{ {kernel.group(1)}(fc_a...); }})")
        out.append(text[pos:kernel.start()])
        out.append(launch)
        pos = close + 1


def main(argv: list[str]) -> int:
    source, target = argv[1], argv[2]
    with open(source, encoding="utf-8") as f:
        text = f.read()
    body = f'#line 1 "{source}"\n' + rewrite(text, source)
    with open(target, "w", encoding="utf-8") as f:
        f.write(body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
