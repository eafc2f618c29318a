"""Write tests/fuzz/generated.txt: valid calls of every public op, each with one argument mutated.

    python tests/fuzz/generate.py        # regenerate (seeded: the same file every time)

Each target is a valid call over the harness's fixtures; each argument has a kind, and each kind a
list of mutations, tagged `raises` (malformed: only a clean error is right) or `either` (a clean
error or the right result: the oracle decides). A seeded sample of MUTATIONS_PER_ARG mutations per
argument keeps the corpus at a few hundred cases.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

if not __package__:  # run as a script (python tests/fuzz/generate.py): make `fuzz` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz.mutations import (  # noqa: E402
    E, R, accuracy_label_mutations, array_mutations, count_mutations, decays_mutations,
    dloss_mutations, dtype_mutations, flag_mutations, hyper_mutations, index_mutations,
    label_mutations, list_mutations, momentum_mutations, ratio_mutations, seed_mutations,
    shape_mutations, size_mutations, step_mutations, steps_mutations, threads_mutations,
    value_mutations)

SEED = 8
MUTATIONS_PER_ARG = 3
OUT = Path(__file__).resolve().parent / "generated.txt"


def arr(e, inplace=False, optional=False):
    return lambda: array_mutations(e, inplace, optional)


# target name -> (callee expression, [(argument, valid expression, mutations, keyword?)],
#                 suffix applied to the call, e.g. "(X)" for a layer's first call)
def targets():
    size, size0, flag = size_mutations, (lambda: size_mutations(False)), flag_mutations
    conv_geom = [("stride", "1", size, True), ("padding", "0", size0, True),
                 ("dilation", "1", size, True)]
    pool_geom = [("filter", "2", size, True), ("stride", "2", size, True),
                 ("padding", "0", size0, True), ("ceil_mode", "False", flag, True)]
    avg_geom = [("filter", "3", size, True), ("stride", "1", size, True),
                ("padding", "0", size0, True), ("ceil_mode", "False", flag, True),
                ("count_include_pad", "True", flag, True)]
    sgd = [("lr", "0.1", hyper_mutations, True), ("momentum", "0.9", momentum_mutations, True),
           ("nesterov", "False", flag, True), ("weight_decay", "0.0", hyper_mutations, True)]
    adam = [("lr", "0.001", hyper_mutations, True),
            ("beta1", "0.9", lambda: hyper_mutations(True), True),
            ("beta2", "0.999", lambda: hyper_mutations(True), True),
            ("eps", "1e-8", hyper_mutations, True), ("weight_decay", "0.0", hyper_mutations, True)]
    return {
        "conv2d_forward": ("ops.conv2d_forward", [("x", "X", arr("X"), False),
                           ("w", "W", arr("W"), False), ("b", "B", arr("B", optional=True), False), *conv_geom,
                           ("relu", "False", flag, True)], ""),
        "conv2d_backward": ("ops.conv2d_backward", [("x", "X", arr("X"), False),
                            ("w", "W", arr("W"), False), ("dy", "DY", arr("DY"), False),
                            *conv_geom, ("need_dx", "True", flag, True),
                            ("need_db", "True", flag, True),
                            ("relu_y", "None", arr("DY", optional=True), True)], ""),
        "conv2d_scratch_bytes": ("ops.conv2d_scratch_bytes", [("x", "X", arr("X"), False),
                                 ("w", "W", arr("W"), False), *conv_geom], ""),
        "max_pool2d_forward": ("ops.max_pool2d_forward", [("x", "X", arr("X"), False),
                               *pool_geom], ""),
        "max_pool2d_backward": ("ops.max_pool2d_backward", [("x", "X", arr("X"), False),
                                ("dy", "DYP", arr("DYP"), False),
                                ("indices", "PI", arr("PI"), False), *pool_geom], ""),
        "average_pool2d_forward": ("ops.average_pool2d_forward",
                                   [("x", "X", arr("X"), False), *avg_geom], ""),
        "average_pool2d_backward": ("ops.average_pool2d_backward",
                                    [("x", "X", arr("X"), False),
                                     ("dy", "DYA", arr("DYA"), False), *avg_geom], ""),
        "softmax_ce_forward": ("ops.softmax_cross_entropy_forward",
                               [("z", "Z", arr("Z"), False), ("t", "T", label_mutations,
                                                              False)], ""),
        "softmax_ce_backward": ("ops.softmax_cross_entropy_backward",
                                [("z", "Z", arr("Z"), False),
                                 ("t", "TO", label_mutations, False),
                                 ("dloss", "1.0", dloss_mutations, True)], ""),
        "dense_forward": ("ops.dense_forward", [("x", "A", arr("A"), False),
                          ("w", "D", arr("D"), False), ("b", "DB", arr("DB", optional=True), False)], ""),
        "dense_backward": ("ops.dense_backward", [("x", "A", arr("A"), False),
                           ("w", "D", arr("D"), False), ("dy", "DYD", arr("DYD"), False),
                           ("need_dx", "True", flag, True), ("need_db", "True", flag, True)], ""),
        "bias_add": ("ops.bias_add", [("x", "X", arr("X"), False),
                                      ("b", "CB", arr("CB"), False)], ""),
        "bias_grad": ("ops.bias_grad", [("dy", "DY", arr("DY"), False)], ""),
        "relu_forward": ("ops.relu_forward", [("x", "X", arr("X"), False)], ""),
        "relu_backward": ("ops.relu_backward", [("dy", "DY", arr("DY"), False),
                                                ("y", "DY", arr("DY"), False)], ""),
        "dropout_forward": ("ops.dropout_forward", [("x", "X", arr("X"), False),
                            ("ratio", "0.5", ratio_mutations, False),
                            ("seed", "7", seed_mutations, False)], ""),
        "dropout_backward": ("ops.dropout_backward", [("dy", "X", arr("X"), False),
                             ("ratio", "0.5", ratio_mutations, False),
                             ("seed", "7", seed_mutations, False)], ""),
        "dropout_mask": ("ops.dropout_mask", [("shape", "(2, 3)", shape_mutations, False),
                         ("ratio", "0.5", ratio_mutations, False),
                         ("seed", "7", seed_mutations, False),
                         ("dtype", "np.float32", dtype_mutations, True)], ""),
        "sgd_update": ("ops.sgd_update", [("param", "P", arr("P", True), False),
                       ("grad", "G", arr("G"), False),
                       ("velocity", "V", arr("V", True), False), *sgd], ""),
        "adam_update": ("ops.adam_update", [("param", "P", arr("P", True), False),
                        ("grad", "G", arr("G"), False), ("m", "M", arr("M", True), False),
                        ("v", "VV", arr("VV", True), False),
                        ("step", "1", step_mutations, False), *adam], ""),
        "fc.conv2d": ("fc.conv2d", [("x", "X", arr("X"), False), ("w", "W", arr("W"), False),
                      ("b", "B.reshape(1, 4, 1, 1)", arr("B", optional=True), False), *conv_geom,
                      ("relu", "False", flag, True)], ""),
        "fc.relu": ("fc.relu", [("x", "X", arr("X"), False)], ""),
        "fc.dense": ("fc.dense", [("x", "A", arr("A"), False), ("w", "D", arr("D"), False),
                     ("b", "DB.reshape(1, 3)", arr("DB", optional=True), False)], ""),
        "fc.max_pool2d": ("fc.max_pool2d", [("x", "X", arr("X"), False), *pool_geom], ""),
        "fc.average_pool2d": ("fc.average_pool2d", [("x", "X", arr("X"), False), *avg_geom],
                              ""),
        "fc.dropout": ("fc.dropout", [("x", "X", arr("X"), False),
                       ("dropout_ratio", "0.5", ratio_mutations, True),
                       ("seed", "7", lambda: seed_mutations(True), True)], ""),
        "fc.flatten": ("fc.flatten", [("x", "X", arr("X"), False)], ""),
        "fc.softmax_cross_entropy": ("fc.softmax_cross_entropy", [("z", "Z", arr("Z"), False),
                                     ("t", "T", label_mutations, False)], ""),
        "fc.Variable": ("fc.Variable", [("value", "X", value_mutations, False)], ""),
        "fc.set_num_threads": ("fc.set_num_threads", [("n", "2", threads_mutations, False)], ""),
        "Conv2d": ("fc.Conv2d", [("channel", "4", count_mutations, True),
                   ("filter", "3", size, True), ("padding", "0", size0, True),
                   ("stride", "1", size, True), ("dilation", "1", size, True)], "(X)"),
        "Dense": ("fc.Dense", [("output_size", "3", count_mutations, False),
                  ("input_size", "None", lambda: [
                      ("mismatch", "7", R), ("neg", "-1", R), ("zero", "0", R),
                      ("float", "2.5", R), ("str", "'5'", R), ("match", "5", E),
                      ("npint", "np.int64(5)", E)], True)], "(A)"),
        "MaxPool2d": ("fc.MaxPool2d", [("filter", "2", size, True),
                      ("padding", "0", size0, True), ("stride", "2", size, True),
                      ("ceil_mode", "False", flag, True)], "(X)"),
        "AveragePool2d": ("fc.AveragePool2d", [("filter", "3", size, True),
                          ("padding", "0", size0, True), ("stride", "1", size, True),
                          ("count_include_pad", "True", flag, True)], "(X)"),
        "Dropout": ("fc.Dropout", [("dropout_ratio", "0.5", ratio_mutations, False)], "(X)"),
        "Relu-call": ("fc.Relu()", [("x", "X", arr("X"), False)], ""),
        "Flatten-call": ("fc.Flatten()", [("x", "X", arr("X"), False)], ""),
        "Sgd": ("step", [("optimizer", "fc.Sgd(lr=0.1, momentum=0.9, nesterov=True)", lambda: [
            (f"{a}-{tag}", f"fc.Sgd({a}={v})", x) for a, muts in
            (("lr", hyper_mutations()), ("momentum", momentum_mutations()),
             ("nesterov", flag_mutations())) for tag, v, x in muts], False),
            ("param", "P", arr("P"), False), ("grad", "G", arr("G"), False)], ""),
        "Adam": ("step", [("optimizer", "fc.Adam()", lambda: [
            (f"{a}-{tag}", f"fc.Adam({a}={v})", x) for a, muts in
            (("lr", hyper_mutations()), ("g", hyper_mutations(True)),
             ("b", hyper_mutations(True)), ("epsilon", hyper_mutations())) for tag, v, x in muts],
            False), ("param", "P", arr("P"), False), ("grad", "G", arr("G"), False)], ""),
        "gather_batch": ("ops.gather_batch", [("data", "X", arr("X"), False),
                         ("indices", "np.array([1, 0])", index_mutations, False)], ""),
        "accuracy_count": ("ops.accuracy_count", [("z", "Z", arr("Z"), False),
                           ("t", "T", accuracy_label_mutations, False)], ""),
        # Last, so that adding them left every earlier target's sampled mutations as they were.
        "conv2d_relu_max_pool2d_forward": ("ops.conv2d_relu_max_pool2d_forward", [
            ("x", "X", arr("X"), False), ("w", "W", arr("W"), False),
            ("b", "B", arr("B", optional=True), False), *conv_geom], ""),
        "conv2d_relu_max_pool2d_backward": ("ops.conv2d_relu_max_pool2d_backward", [
            ("x", "X", arr("X"), False), ("w", "W", arr("W"), False),
            ("dy", "DYCP", arr("DYCP"), False), ("y", "CPY", arr("CPY"), False),
            ("indices", "CPI", arr("CPI"), False), *conv_geom,
            ("need_dx", "True", flag, True), ("need_db", "True", flag, True)], ""),
        "fc.conv2d_relu_max_pool2d": ("fc.conv2d_relu_max_pool2d", [
            ("x", "X", arr("X"), False), ("w", "W", arr("W"), False),
            ("b", "B.reshape(1, 4, 1, 1)", arr("B", optional=True), False), *conv_geom], ""),
        # The max pools with uint8 window codes (window_indices=True), after the rest likewise.
        "max_pool2d_forward-codes": ("ops.max_pool2d_forward", [
            ("x", "X", arr("X"), False), *pool_geom,
            ("window_indices", "True", flag, True)], ""),
        "max_pool2d_backward-codes": ("ops.max_pool2d_backward", [
            ("x", "X", arr("X"), False), ("dy", "DYP", arr("DYP"), False),
            ("indices", "PIC", arr("PIC"), False), *pool_geom,
            ("window_indices", "True", flag, True)], ""),
        "conv2d_relu_max_pool2d_forward-codes": ("ops.conv2d_relu_max_pool2d_forward", [
            ("x", "X", arr("X"), False), ("w", "W", arr("W"), False),
            ("b", "B", arr("B", optional=True), False), *conv_geom,
            ("window_indices", "True", flag, True)], ""),
        "conv2d_relu_max_pool2d_backward-codes": ("ops.conv2d_relu_max_pool2d_backward", [
            ("x", "X", arr("X"), False), ("w", "W", arr("W"), False),
            ("dy", "DYCP", arr("DYCP"), False), ("y", "CPY", arr("CPY"), False),
            ("indices", "CPIC", arr("CPIC"), False), *conv_geom,
            ("need_dx", "True", flag, True), ("need_db", "True", flag, True),
            ("window_indices", "True", flag, True)], ""),
        # Targets added later go last: the seeded sample of those above stays as it was.
        "softmax_ce_forward_backward": ("ops.softmax_cross_entropy_forward_backward",
                                        [("z", "Z", arr("Z"), False),
                                         ("t", "TO", label_mutations, False),
                                         ("dloss", "1.0", dloss_mutations, True)], ""),
        "sgd_update_multi": ("ops.sgd_update_multi", [
            ("params", "[P, P2]", lambda: list_mutations("P", "P2", True), False),
            ("grads", "[G, G2]", lambda: list_mutations("G", "G2", False), False),
            ("velocities", "[V, V2]", lambda: list_mutations("V", "V2", True), False),
            *sgd[:3], ("weight_decays", "[0.0, 0.01]", decays_mutations, True)], ""),
        "adam_update_multi": ("ops.adam_update_multi", [
            ("params", "[P, P2]", lambda: list_mutations("P", "P2", True), False),
            ("grads", "[G, G2]", lambda: list_mutations("G", "G2", False), False),
            ("ms", "[M, M2]", lambda: list_mutations("M", "M2", True), False),
            ("vs", "[VV, VV2]", lambda: list_mutations("VV", "VV2", True), False),
            ("steps", "[1, 3]", steps_mutations, False), *adam[:4],
            ("weight_decays", "[0.0, 0.01]", decays_mutations, True),
            ("corrections", "None", corrections_mutations, True)], ""),
        "adam_bias_corrections": ("ops.adam_bias_corrections", [
            ("steps", "[1, 3]", one_steps_mutations, False), *adam[1:3]], ""),
        # The dense layer's fused ReLU (added after the rest, likewise).
        "dense_forward-relu": ("ops.dense_forward", [("x", "A", arr("A"), False),
                               ("w", "D", arr("D"), False),
                               ("b", "DB", arr("DB", optional=True), False),
                               ("relu", "True", flag, True)], ""),
        "dense_backward-relu": ("ops.dense_backward", [("x", "A", arr("A"), False),
                                ("w", "D", arr("D"), False), ("dy", "DYD", arr("DYD"), False),
                                ("need_dx", "True", flag, True), ("need_db", "True", flag, True),
                                ("relu_y", "DYD", arr("DYD", optional=True), True)], ""),
        "fc.dense-relu": ("fc.dense", [("x", "A", arr("A"), False), ("w", "D", arr("D"), False),
                          ("b", "DB.reshape(1, 3)", arr("DB", optional=True), False),
                          ("relu", "True", flag, True)], ""),
    }


def corrections_mutations():
    """A CPU call takes corrections=None only (device-memory corrections are for the GPU)."""
    return [("array", "np.ones((2, 2), np.float32)", R), ("str", "'a'", R),
            ("list", "[[0.1, 0.1], [0.1, 0.1]]", R)]


def one_steps_mutations():
    """steps_mutations for a call whose steps set the count ("[1]" is then valid)."""
    return [(t, e, E if t == "short" else x) for t, e, x in steps_mutations()]


def call(callee, args, suffix, replace=None) -> str:
    parts = []
    for name, valid, _, keyword in args:
        value = replace[1] if replace and replace[0] == name else valid
        parts.append(f"{name}={value}" if keyword else value)
    return f"{callee}({', '.join(parts)}){suffix}"


def generate(rng: random.Random) -> list[str]:
    lines = []
    for target, (callee, args, suffix) in targets().items():
        lines.append(f"g-{target}-valid | either | {call(callee, args, suffix)}")
        for name, _, mutations, _ in args:
            muts = mutations()
            for tag, expr, expect in rng.sample(muts, min(MUTATIONS_PER_ARG, len(muts))):
                lines.append(f"g-{target}-{name}-{tag} | {expect} | "
                             f"{call(callee, args, suffix, (name, expr))}")
    return lines


def main() -> None:
    lines = generate(random.Random(SEED))
    header = ["# Generated by tests/fuzz/generate.py (seed %d): do not edit; regenerate." % SEED,
              "# id | expectation | code  (see tests/fuzz/harness.py)"]
    OUT.write_text("\n".join(header + lines) + "\n")
    print(f"{OUT}: {len(lines)} cases")


if __name__ == "__main__":
    main()
