"""Write tests/fuzz/generated.txt: valid calls of every public op, each with one argument mutated.

    python tests/fuzz/generate.py        # regenerate (seeded: the same file every time)

Each target is a valid call over the harness's fixtures; each argument has a kind, and each kind a
list of mutations, tagged `raises` (malformed: only a clean error is right) or `either` (a clean
error or the right result: the oracle decides). A seeded sample of MUTATIONS_PER_ARG mutations per
argument keeps the corpus at a few hundred cases.
"""
from __future__ import annotations

import random
from pathlib import Path

SEED = 8
MUTATIONS_PER_ARG = 3
OUT = Path(__file__).resolve().parent / "generated.txt"

R, E = "raises", "either"
VECTOR_FIXTURES = {"B", "DB", "CB", "T"}
INTEGER_FIXTURES = {"PI", "CPI", "PIC", "CPIC", "T"}


def array_mutations(e: str, inplace: bool = False, optional: bool = False):
    """(tag, expression, expectation) for an array argument whose valid value is e."""
    out = [
        ("none", "None", E if optional else R), ("complex", f"{e}.astype(np.complex64)", R),
        ("object", f"{e}.astype(object)", R), ("str", f"{e}.astype(str)", R),
        ("int32", f"{e}.astype(np.int32)", E), ("bool", f"{e}.astype(bool)", E),
        ("float16", f"{e}.astype(np.float16)", E), ("float64", f"{e}.astype(np.float64)", E),
        ("list", f"{e}.tolist()", E), ("noncontig", f"noncontig({e})", E),
        ("scalar", "np.float32(3)", E), ("lessdim", f"{e}[0]", E), ("moredim", f"{e}[None]", E),
        ("flat", f"{e}.reshape(-1)", E), ("empty0", f"{e}[:0]", E),
    ]
    if e not in INTEGER_FIXTURES:
        out += [("nan", f"np.full_like({e}, nan)", E), ("inf", f"np.full_like({e}, -inf)", E),
                ("huge", f"np.full_like({e}, 3e38)", E)]
    if e not in VECTOR_FIXTURES:  # also empty on the other axes
        out += [("empty1", f"{e}[:, :0]", E), ("emptylast", f"{e}[..., :0]", E)]
    if inplace:
        out += [("readonly", f"readonly({e})", R), ("fortran", f"np.asfortranarray({e})", E)]
    else:
        out += [("readonly", f"readonly({e})", E)]
    return out


def size_mutations(positive: bool = True) -> list[tuple[str, str, str]]:
    out = [
        ("neg1", "-1", R), ("neg2e31", "-2**31", R), ("float", "1.5", R), ("float2", "2.0", R),
        ("str", "'2'", R), ("none", "None", R), ("bool", "True", R), ("triple", "(1, 1, 1)", R),
        ("single", "(1,)", R), ("pairneg", "(1, -1)", R), ("pairnone", "(1, None)", R),
        ("nan", "nan", R), ("2e63", "2**63", R), ("2e64", "2**64", R),
        ("pair2e64", "(2**64, 1)", R), ("neg2e63m1", "-2**63 - 1", R),
        ("2e31", "2**31", E), ("2e31m1", "2**31 - 1", E), ("2e32", "2**32", E),
        ("2e62", "2**62", E), ("2e63m1", "2**63 - 1", E), ("npint", "np.int64(2)", E),
        ("pair", "(1, 2)", E), ("list", "[2, 1]", E), ("nparray", "np.array([2, 2])", E),
    ]
    out.append(("zero", "0", R if positive else E))
    return out


def flag_mutations():
    return [("strno", "'no'", R), ("none", "None", R), ("two", "2", R), ("strtrue", "'True'", R),
            ("list", "[]", R), ("npbool", "np.True_", E), ("one", "1", E), ("zero", "0", E)]


def ratio_mutations():
    return [("nan", "nan", R), ("inf", "inf", R), ("neg", "-0.1", R), ("one", "1.0", R),
            ("big", "1.5", R), ("str", "'0.5'", R), ("none", "None", R), ("2e64", "2**64", R),
            ("zero", "0.0", E), ("almost1", "0.999", E), ("npf32", "np.float32(0.25)", E),
            ("tiny", "1e-300", E)]


def seed_mutations(none_ok: bool = False):
    return [("neg", "-1", R), ("2e64", "2**64", R), ("float", "1.5", R), ("str", "'a'", R),
            ("neg2e63", "-2**63", R), ("none", "None", E if none_ok else R),
            ("zero", "0", E), ("max", "2**64 - 1", E), ("2e63", "2**63", E),
            ("npuint", "np.uint64(2**63 + 5)", E), ("npint", "np.int64(7)", E)]


def momentum_mutations():
    return [("nan", "nan", R), ("str", "'a'", R), ("none", "None", R), ("neg", "-0.1", R),
            ("inf", "inf", R), ("zero", "0.0", E), ("one", "1.0", E), ("big", "1.5", E),
            ("npf32", "np.float32(0.5)", E)]


def hyper_mutations(unit: bool = False):
    """lr-like scalars (unit: Adam's betas, which must stay below 1)."""
    out = [("nan", "nan", R), ("str", "'a'", R), ("none", "None", R), ("list", "[0.1]", R),
           ("zero", "0.0", E), ("npf32", "np.float32(0.5)", E), ("tiny", "1e-30", E)]
    out += [("one", "1.0", R), ("neg", "-0.1", R), ("big", "1.5", R)] if unit else \
           [("inf", "inf", R), ("neg", "-1.0", R), ("huge", "1e30", E)]
    return out


def count_mutations():
    """Positive int arguments of layers (channel, output_size)."""
    return [("float", "2.7", R), ("zero", "0", R), ("neg", "-5", R), ("str", "'4'", R),
            ("none", "None", R), ("bool", "True", R), ("2e63", "2**63", R),
            ("npint", "np.int64(4)", E), ("floatint", "4.0", E)]


def label_mutations():
    return [("outofrange", "np.array([0, 5, 1, 2])", R), ("neg", "np.array([0, -1, 1, 2])", R),
            ("float", "T.astype(np.float64)", R), ("uint64big",
            "np.array([0, 1, 2, 2**63 + 1], np.uint64)", R), ("object", "T.astype(object)", R),
            ("none", "None", R), ("short", "T[:3]", E), ("uint8", "T.astype(np.uint8)", E),
            ("int32", "T.astype(np.int32)", E), ("as2d", "T.reshape(2, 2)", E),
            ("list", "T.tolist()", E), ("noncontig", "noncontig(T)", E),
            ("negonehot", "-TO", R), ("nanonehot", "TO * nan", R), ("doubled", "TO * 2", E),
            ("narrow", "TO[:, :3]", E), ("intonehot", "TO.astype(np.int64)", E),
            ("onehot64", "TO.astype(np.float64)", E)]


def index_mutations():
    return [("neg", "np.array([0, -1])", R), ("big", "np.array([0, 2])", R),
            ("float", "np.array([0.0, 1.0])", R), ("as2d", "np.zeros((1, 2), np.int64)", R),
            ("none", "None", R), ("list", "[1, 0]", R), ("uint8", "np.array([1, 0], np.uint8)", E),
            ("strided", "np.arange(4)[::2]", E), ("empty", "np.zeros(0, np.int64)", E)]


def accuracy_label_mutations():
    # A label outside [0, C) or a negative weight is no error here: that row just misses.
    return [("outofrange", "np.array([0, 5, 1, 2])", E), ("float", "T.astype(np.float64)", R),
            ("object", "T.astype(object)", R), ("none", "None", R), ("short", "T[:3]", R),
            ("uint8", "T.astype(np.uint8)", E), ("as2d", "T.reshape(2, 2)", R),
            ("list", "T.tolist()", R), ("noncontig", "noncontig(T)", E),
            ("negonehot", "-TO", E), ("narrow", "TO[:, :3]", R),
            ("onehot64", "TO.astype(np.float64)", R)]


def shape_mutations():
    return [("neg", "(-1,)", R), ("negdim", "(2, -3)", R), ("str", "'ab'", R),
            ("float", "(2.5,)", R), ("none", "None", R), ("2e63", "(2**63,)", R),
            ("2e64", "(2**64,)", R), ("scalarfloat", "2.5", R), ("empty", "()", E),
            ("zero", "(0,)", E), ("int", "5", E), ("npint", "np.int64(3)", E),
            ("list", "[2, 3]", E), ("2e62", "(2**31, 2**31)", E), ("2e40", "(2**40,)", E)]


def dtype_mutations():
    return [("int32", "np.int32", R), ("float16", "'float16'", R), ("object", "object", R),
            ("none", "None", E), ("complex", "np.complex128", R), ("float64", "np.float64", E),
            ("str", "'float32'", E)]


def step_mutations():
    return [("zero", "0", R), ("neg", "-1", R), ("float", "1.5", R), ("2e63", "2**63", R),
            ("str", "'a'", R), ("none", "None", R), ("bool", "True", R), ("two", "2", E),
            ("2e31", "2**31", E), ("million", "10**6", E)]


def threads_mutations():
    return [("zero", "0", R), ("neg", "-1", R), ("float", "1.5", R), ("str", "'2'", R),
            ("none", "None", R), ("bool", "True", R), ("2e63", "2**63", R), ("2e64", "2**64", R),
            ("one", "1", E), ("two", "2", E), ("many", "64", E), ("100000", "100000", E),
            ("2e31", "2**31", E)]


def dloss_mutations():
    return [("str", "'a'", R), ("none", "None", R), ("pair", "(1.0, 2.0)", R),
            ("nan", "nan", E), ("zero", "0.0", E), ("neg", "-1.0", E), ("npf32",
            "np.float32(2)", E), ("int", "3", E)]


def value_mutations():
    return [("none", "None", R), ("str", "'abc'", R), ("object", "X.astype(object)", R),
            ("complex", "X.astype(np.complex64)", R), ("int", "X.astype(np.int32)", E),
            ("bool", "X.astype(bool)", E), ("np0d", "np.float64(2)", E), ("float", "3.5", E),
            ("list", "[1.0, 2.0]", E), ("empty", "np.zeros((0, 3))", E),
            ("noncontig", "noncontig(X)", E), ("f64", "X64", E)]


def list_mutations(a: str, b: str, written: bool):
    """A list argument of the multi-tensor updates, valid as [a, b] (one dtype, two shapes)."""
    return [
        ("none", "None", R), ("array", a, R), ("short", f"[{a}]", R), ("empty", "[]", R),
        ("long", f"[{a}, {b}, {b}]", R), ("tuple", f"({a}, {b})", E),
        ("int32", f"[{a}, {b}.astype(np.int32)]", R), ("float64", f"[{a}, {b}.astype('f8')]", R),
        ("list", f"[{a}.tolist(), {b}]", R), ("noncontig", f"[{a}, noncontig({b})]", E),
        ("swapped", f"[{b}, {a}]", R), ("nan", f"[np.full_like({a}, nan), {b}]", E),
        ("readonly", f"[{a}, readonly({b})]", R if written else E),
        ("twice", f"[{a}, {a}.reshape(-1)[:5]]", R if written else E),  # shares a's memory
    ]


def decays_mutations():
    bad = dict(scalar="0.1", short="[0.0]", neg="[0.0, -1.0]", nan="[nan, 0.0]", str="['a', 0.0]",
               bool="[True, 0.0]")
    ok = dict(none="None", tuple="(0.0, 0.5)", npf32="[np.float32(0.1), 0.0]", int="[1, 0]")
    return [(t, e, R) for t, e in bad.items()] + [(t, e, E) for t, e in ok.items()]


def steps_mutations():
    bad = dict(zero="[1, 0]", float="[1.5, 1]", scalar="1", short="[1]", big="[1, 2**63]",
               bool="[True, 1]", none="None")
    ok = dict(million="[10**6, 2]", tuple="(1, 2)", npint="[np.int64(3), 1]")
    return [(t, e, R) for t, e in bad.items()] + [(t, e, E) for t, e in ok.items()]


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
        # The multi-tensor updates, after the rest likewise.
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
            ("weight_decays", "[0.0, 0.01]", decays_mutations, True)], ""),
    }


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
