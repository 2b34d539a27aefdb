"""CQL2 text and JSON parsed into pygeofilter's AST.

pygeofilter 0.4 is the parser, with these corrections for the CQL2 standard (OGC 21-065):

- its text grammar only knows the temporal predicates in an infix form (``a T_AFTER b``); CQL2
  writes them as functions (``T_AFTER(a, b)``), so the grammar is loaded with that one rule
  replaced (and ``INTERVAL`` may have open ends, ``'..'``);
- CQL2-JSON ``{"bbox": [minx, miny, maxx, maxy]}`` becomes ``Envelope(x1, x2, y1, y2)`` with the
  numbers in the wrong places; we read it as a polygon;
- CQL2-JSON ``between`` has three arguments; pygeofilter reads the draft's ``[a, [lo, hi]]``;
- it maps ``T_INTERSECTS`` to ``TimeOverlaps`` and does not know ``T_DISJOINT``; we parse
  ``T_DISJOINT(a, b)`` as ``T_BEFORE(a, b) OR T_AFTER(a, b)`` and ``T_INTERSECTS`` as its negation,
  which is how CQL2 defines them (Allen's interval algebra).

pygeoapi 0.21 itself parses ``filter`` as ECQL and refuses ``filter-lang=cql2-text``: that is why
the OGC routes parse filters here and not through pygeoapi.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pygeofilter.parsers.cql2_text.parser as text_parser
from lark import Lark, v_args
from pygeofilter import ast, values
from pygeofilter.cql2 import TEMPORAL_PREDICATES_MAP
from pygeofilter.parsers.cql2_json import parse as parse_json_ast

MAX_FILTER_CHARS = 20_000

_INFIX_TEMPORAL = (
    "?temporal_predicate: expression _binary_temporal_predicate_func expression -> binary_temporal_predicate"
)
_CALL_TEMPORAL = (
    '?temporal_predicate: _binary_temporal_predicate_func "(" expression "," expression ")" -> temporal_call'
)
_OLD_TEMPORAL_NAMES = '| "T_INTERSECTS"i'
_NEW_TEMPORAL_NAMES = '| "T_INTERSECTS"i\n | "T_DISJOINT"i'
_OLD_INTERVAL = '?interval: "INTERVAL" "("  "\'" DATETIME "\'" "," "\'" DATETIME "\'" ")"'
_NEW_INTERVAL = (
    '?interval: "INTERVAL" "(" interval_bound "," interval_bound ")"\n'
    'interval_bound: "\'" DATETIME "\'" | OPEN_END\n'
    "OPEN_END: \"'..'\""
)


class FilterSyntaxError(ValueError):
    """The filter is not CQL2 that this server understands."""


@v_args(meta=False, inline=True)
class _Transformer(text_parser.CQLTransformer):
    def temporal_call(self, op: Any, lhs: Any, rhs: Any) -> ast.Node:
        return _temporal(str(op).lower(), lhs, rhs)

    def interval_bound(self, value: Any = None) -> Any:
        return value

    def OPEN_END(self, token: Any) -> None:  # noqa: N802 - Lark names terminal callbacks so
        return None


def _temporal(name: str, lhs: Any, rhs: Any) -> ast.Node:
    if name in ("t_disjoint", "t_intersects"):
        disjoint = ast.Or(ast.TimeBefore(lhs, rhs), ast.TimeAfter(lhs, rhs))
        return disjoint if name == "t_disjoint" else ast.Not(disjoint)
    return TEMPORAL_PREDICATES_MAP[name](lhs, rhs)


@functools.cache
def _text_parser() -> Lark:
    grammar_file = Path(text_parser.__file__).with_name("grammar.lark")
    grammar = grammar_file.read_text(encoding="utf-8")
    patches = (
        (_INFIX_TEMPORAL, _CALL_TEMPORAL),
        (_OLD_TEMPORAL_NAMES, _NEW_TEMPORAL_NAMES),
        (_OLD_INTERVAL, _NEW_INTERVAL),
    )
    for old, new in patches:
        if old not in grammar:  # a new pygeofilter: look again at what it parses now
            raise RuntimeError(f"pygeofilter's CQL2 grammar changed; cannot patch {old!r}")
        grammar = grammar.replace(old, new)
    return Lark(
        grammar,
        parser="lalr",
        maybe_placeholders=False,
        transformer=_Transformer(),
        import_paths=[str(grammar_file.parent.parent)],
        source_path=str(grammar_file),
    )


def _fix_json_temporal(node: Any) -> Any:
    if isinstance(node, dict):
        fixed = {k: _fix_json_temporal(v) for k, v in node.items()}
        op = str(fixed.get("op", "")).lower()
        args = fixed.get("args")
        if "bbox" in fixed and "op" not in fixed:
            return _bbox_polygon(fixed["bbox"])
        if op == "between" and isinstance(args, list) and len(args) == 3:
            # CQL2-JSON 1.0 writes between with three arguments; pygeofilter wants the draft's
            # [value, [low, high]]
            return {**fixed, "args": [args[0], [args[1], args[2]]]}
        if op in ("t_disjoint", "t_intersects"):
            disjoint = {
                "op": "or",
                "args": [{"op": "t_before", "args": args}, {"op": "t_after", "args": args}],
            }
            return disjoint if op == "t_disjoint" else {"op": "not", "args": [disjoint]}
        return fixed
    if isinstance(node, list):
        return [_fix_json_temporal(v) for v in node]
    return node


def _bbox_polygon(bbox: Any) -> Any:
    """A CQL2-JSON ``{"bbox": [...]}`` as a GeoJSON polygon: pygeofilter reads the four numbers
    into ``Envelope(x1, x2, y1, y2)``, i.e. in the wrong order."""
    if not isinstance(bbox, list) or len(bbox) not in (4, 6):
        raise FilterSyntaxError("a bbox literal has 4 or 6 numbers")
    x1, y1, x2, y2 = (
        (bbox[0], bbox[1], bbox[2], bbox[3]) if len(bbox) == 4 else (bbox[0], bbox[1], bbox[3], bbox[4])
    )
    ring = [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]
    return {"type": "Polygon", "coordinates": [ring]}


def parse_filter(text: str, lang: str) -> ast.Node:
    """Parse ``text`` as ``cql2-text`` or ``cql2-json``; raise FilterSyntaxError if it is not."""
    if len(text) > MAX_FILTER_CHARS:
        raise FilterSyntaxError(f"filter longer than {MAX_FILTER_CHARS} characters")
    try:
        if lang == "cql2-json":
            node = parse_json_ast(_fix_json_temporal(json.loads(text)))
        else:
            node = _text_parser().parse(text)
    except FilterSyntaxError:
        raise
    except (RecursionError, MemoryError) as err:
        raise FilterSyntaxError("filter nested too deeply") from err
    except Exception as err:  # noqa: BLE001 - lark and pygeofilter raise anything on bad input
        raise FilterSyntaxError(f"not valid {lang}: {_first_line(err)}") from err
    if not isinstance(node, ast.Node) or isinstance(node, ast.Expression):
        raise FilterSyntaxError("a filter must be a condition (a predicate), not a value")
    return node


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


__all__ = ["FilterSyntaxError", "MAX_FILTER_CHARS", "parse_filter", "values"]
