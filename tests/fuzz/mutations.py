"""The mutations of tests/fuzz/generate.py: for each kind of argument, tagged `raises`
(malformed: only a clean error is right) or `either` (a clean error or the right result: the
oracle decides). Each is (tag, expression over the harness's fixtures, expectation)."""
from __future__ import annotations

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
