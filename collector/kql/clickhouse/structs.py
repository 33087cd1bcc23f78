"""The translator's DuckDB struct values in two shapes the dashboard's pages query (Performance's
duration histogram, `bin(duration, w)`; Jobs' latest counters, `arg_max(timestamp, value, ...)`),
lowered to ClickHouse. Any other struct value still reaches ClickHouse as DuckDB wrote it and is
refused there (a 400), never answered differently.

- `numeric_bins`: `bin(x, w)` on numbers is `list_transform([struct_pack(v := x, r := w)],
  lambda _bin: CASE <integer> ... <NaN> ... <float> END)[1]`, a let-binding of x and w. The
  binding is inlined, the integer branch kept as the translator wrote it (the type folding picks it
  or the float one statically), and the float branch written as what it computes: DuckDB's `//` on
  doubles is a true division and `q - q % 1 - (q % 1 < 0)` is floor(q), so `floor(x / w) * w`, and
  NaN for a zero width (ClickHouse takes no 'NaN' text among numbers).
- `struct_fields`: `arg_max(x, by)` carries x in a one-field struct so that a NULL x is still an
  answer: `COALESCE(arg_max({'v': x}, by), any_value({'v': x}))['v']`. ClickHouse's `tuple(x)`
  keeps NULLs the same way, `argMax` skips NULL keys and answers NULL when every key is NULL (as
  DuckDB's does), and `tupleElement(t, 1)` reads the field back.
"""

from __future__ import annotations

from sqlglot import exp

_BIN_FIELDS = ("v", "r")
_CARRIERS = (exp.Coalesce, exp.ArgMax, exp.ArgMin, exp.AnyValue, exp.IgnoreNulls)


def numeric_bins(tree: exp.Expr) -> exp.Expr:
    """The translator's numeric `bin` (see the module doc) as ClickHouse computes it."""
    def swap(node: exp.Expr) -> exp.Expr:
        binding = _bin_binding(node)
        if binding is None:
            return node
        (value, width), body = binding
        integer = body.args["ifs"][0]
        inline = _inliner(value, width)
        zero_width = exp.and_(exp.EQ(this=width.copy(), expression=exp.Literal.number(0)),
                              exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())))
        floored = exp.Mul(this=exp.Floor(this=exp.Div(this=value.copy(), expression=exp.Nullif(
            this=width.copy(), expression=exp.Literal.number(0)))), expression=width.copy())
        lowered = exp.Case(ifs=[exp.If(this=integer.this.copy().transform(inline), true=integer.args["true"].copy().transform(inline)),
                                exp.If(this=zero_width, true=exp.cast(exp.Literal.string("nan"), exp.DType.DOUBLE))],
                           default=floored)
        return exp.Paren(this=lowered)
    return tree.transform(swap, copy=False)


def _bin_binding(node: exp.Expr) -> tuple[tuple[exp.Expr, exp.Expr], exp.Case] | None:
    """((x, w), the lambda's CASE) when *node* is the translator's numeric bin, else None."""
    if not (isinstance(node, exp.Bracket) and isinstance(node.this, exp.Transform)
            and node.expressions == [exp.Literal.number(0)]):
        return None
    array, function = node.this.this, node.this.expression
    if not (isinstance(array, exp.Array) and len(array.expressions) == 1 and isinstance(array.expressions[0], exp.Struct)
            and isinstance(function, exp.Lambda) and [p.name for p in function.expressions] == ["_bin"]
            and isinstance(function.this, exp.Case) and len(function.this.args.get("ifs") or []) == 3):
        return None
    fields = array.expressions[0].expressions
    if [f.this.name if isinstance(f, exp.PropertyEQ) else None for f in fields] != list(_BIN_FIELDS):
        return None
    return (fields[0].expression, fields[1].expression), function.this


def _inliner(value: exp.Expr, width: exp.Expr):
    """A transform putting x and w where the lambda reads `_bin.v` and `_bin.r`."""
    bound = dict(zip(_BIN_FIELDS, (value, width)))

    def inline(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Dot) and node.this.name == "_bin" and node.expression.name in bound:
            return exp.Paren(this=bound[node.expression.name].copy())
        return node
    return inline


def struct_fields(tree: exp.Expr) -> exp.Expr:
    """`arg_max`/`arg_min`'s carried value (see the module doc) as a ClickHouse tuple."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Bracket) and len(node.expressions) == 1
                and isinstance(node.expressions[0], exp.Literal) and node.expressions[0].is_string):
            return node
        key = node.expressions[0].this
        structs = list(node.this.find_all(exp.Struct))
        if not structs or not all(_carried(s, node, key) for s in structs):
            return node
        for struct in structs:
            struct.replace(exp.Anonymous(this="tuple", expressions=[struct.expressions[0].expression.copy()]))
        return exp.Anonymous(this="tupleElement", expressions=[node.this.copy(), exp.Literal.number(1)])
    return tree.transform(swap, copy=False)


def _carried(struct: exp.Struct, read: exp.Bracket, key: str) -> bool:
    """Whether *struct* is a one-field struct named *key* reaching *read* only through arg_max,
    arg_min, any_value and COALESCE (so its field is the value read, whatever row won)."""
    fields = struct.expressions
    if not (len(fields) == 1 and isinstance(fields[0], exp.PropertyEQ) and fields[0].this.name == key):
        return False
    parent = struct.parent
    while parent is not read:
        if not isinstance(parent, _CARRIERS):
            return False
        parent = parent.parent
    return True
