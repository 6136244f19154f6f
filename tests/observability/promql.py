"""A small PromQL reader: which metric names, functions, label matchers and Grafana variables a query uses.

It is no parser (promtool is, when installed; see test_promtool.py): it tokenizes a query and classifies each
identifier by its context. An identifier is a metric name unless it is

* a function or aggregation (followed by ``(``, or an aggregation followed by ``by``/``without``),
* a keyword (``by``, ``without``, ``on``, ``ignoring``, ``group_left``, ``group_right``, ``bool``, ``and``,
  ``or``, ``unless``, ``offset``, ``atan2``) or a number literal (``Inf``, ``NaN``),
* a label name: inside ``{...}`` matchers, or in the list after ``by``/``without``/``on``/``ignoring``/
  ``group_left``/``group_right``,
* part of a duration (``5m``, ``1h30m``, in ``[...]`` or after ``offset``), a string, or a Grafana variable.

A ``{__name__="x"}`` matcher names metric ``x``. Anything the reader does not understand raises
:class:`PromQLError` rather than being skipped, so a query cannot hide a name from the checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FUNCTIONS", "Matcher", "PromQLError", "Query", "read_query"]


class PromQLError(ValueError):
    """A query the reader cannot tokenize."""


#: PromQL's functions (Prometheus 2.x and 3.x), plus ``start``/``end`` of the ``@`` modifier.
FUNCTIONS = frozenset(
    {
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
        "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
        "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg", "delta",
        "deriv", "double_exponential_smoothing", "end", "exp", "floor", "histogram_avg", "histogram_count",
        "histogram_fraction", "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
        "holt_winters", "hour", "idelta", "increase", "info", "irate", "label_join", "label_replace",
        "last_over_time", "ln", "log10", "log2", "mad_over_time", "max_over_time", "min_over_time", "minute",
        "month", "pi", "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
        "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc",
        "sqrt", "start", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time",
        "timestamp", "vector", "year",
    }
)  # fmt: skip
AGGREGATIONS = frozenset(
    {
        "avg", "bottomk", "count", "count_values", "group", "limit_ratio", "limitk", "max", "min",
        "quantile", "stddev", "stdvar", "sum", "topk",
    }
)  # fmt: skip
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = _GROUPING | {"bool", "and", "or", "unless", "offset", "atan2"}
_LITERALS = frozenset({"inf", "nan"})

_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+(?![A-Za-z0-9_])")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Grafana's variable syntaxes: $name, ${name}, ${name:format}, [[name]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', re.DOTALL)
_MATCHER = re.compile(
    r"\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(?:,|$)",
    re.DOTALL,
)
_RANGE_PART = r"\s*(?:(?:[0-9]+(?:ms|[smhdwy]))+|\$\{?\w+\}?)\s*"
_RANGE = re.compile(rf"{_RANGE_PART}(?::(?:{_RANGE_PART})?)?")
_OPERATORS = ("==", "!=", ">=", "<=", "=~", "!~", "+", "-", "*", "/", "%", "^", ">", "<", ",", "(", ")", "@")


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector, its value unquoted: ``job=~"a|b"`` is ``("job", "=~", "a|b")``."""

    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Query:
    metric_names: frozenset[str]
    functions: frozenset[str]
    matchers: tuple[Matcher, ...]
    variables: frozenset[str]


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    if literal[0] == "`":
        return body
    return re.sub(r"\\(.)", r"\1", body)


def _variables(text: str) -> set[str]:
    return {next(group for group in match.groups() if group) for match in _VARIABLE.finditer(text)}


def _closing(expr: str, start: int, opening: str, closing: str) -> int:
    """Index of the bracket closing the one at ``start``, skipping strings."""
    position = start + 1
    while position < len(expr):
        char = expr[position]
        if char in "\"'`":
            string = _STRING.match(expr, position)
            if string is None:
                raise PromQLError(f"unterminated string at {position} in {expr!r}")
            position = string.end()
            continue
        if char == closing:
            return position
        if char == opening:
            raise PromQLError(f"nested {opening!r} at {position} in {expr!r}")
        position += 1
    raise PromQLError(f"unclosed {opening!r} at {start} in {expr!r}")


def _next_significant(expr: str, position: int) -> int:
    while position < len(expr) and expr[position].isspace():
        position += 1
    return position


def _read_matchers(body: str, expr: str) -> list[Matcher]:
    matchers = []
    position = 0
    while body[position:].strip():
        match = _MATCHER.match(body, position)
        if match is None:
            raise PromQLError(f"cannot read label matchers {body!r} in {expr!r}")
        matchers.append(Matcher(match["label"], match["op"], _unquote(match["value"])))
        position = match.end()
    return matchers


def read_query(expr: str) -> Query:
    """The metric names, functions, label matchers and Grafana variables of one PromQL query."""
    names: set[str] = set()
    functions: set[str] = set()
    matchers: list[Matcher] = []
    variables: set[str] = set()
    position = 0
    while position < len(expr):
        char = expr[position]
        if char.isspace():
            position += 1
        elif char == "#":
            newline = expr.find("\n", position)
            position = len(expr) if newline < 0 else newline
        elif char in "\"'`":
            string = _STRING.match(expr, position)
            if string is None:
                raise PromQLError(f"unterminated string at {position} in {expr!r}")
            variables |= _variables(string.group())
            position = string.end()
        elif char == "{":
            end = _closing(expr, position, "{", "}")
            body = expr[position + 1 : end]
            for matcher in _read_matchers(body, expr):
                matchers.append(matcher)
                variables |= _variables(matcher.value)
                if matcher.label == "__name__" and matcher.op == "=":
                    names.add(matcher.value)
            position = end + 1
        elif char == "[" and not expr.startswith("[[", position):
            end = _closing(expr, position, "[", "]")
            body = expr[position + 1 : end]
            if not _RANGE.fullmatch(body):
                raise PromQLError(f"cannot read range {body!r} in {expr!r}")
            variables |= _variables(body)
            position = end + 1
        elif char == "$" or expr.startswith("[[", position):
            variable = _VARIABLE.match(expr, position)
            if variable is None:
                raise PromQLError(f"cannot read variable at {position} in {expr!r}")
            variables |= _variables(variable.group())
            position = variable.end()
        elif char.isdigit() or (char == "." and expr[position + 1 : position + 2].isdigit()):
            literal = _DURATION.match(expr, position) or _NUMBER.match(expr, position)
            assert literal is not None
            position = literal.end()
        elif identifier := _IDENTIFIER.match(expr, position):
            word = identifier.group()
            lower = word.lower()
            after = _next_significant(expr, identifier.end())
            following = expr[after : after + 1]
            next_word = _IDENTIFIER.match(expr, after)
            position = identifier.end()
            if lower in _GROUPING:
                if following == "(":
                    end = _closing(expr, after, "(", ")")
                    labels = [label.strip() for label in expr[after + 1 : end].split(",") if label.strip()]
                    if not all(_LABEL.fullmatch(label) for label in labels):
                        raise PromQLError(f"cannot read label list after {word!r} in {expr!r}")
                    position = end + 1
            elif lower in _KEYWORDS or lower in _LITERALS:
                pass
            elif following == "(":
                if word not in FUNCTIONS and lower not in AGGREGATIONS:
                    raise PromQLError(f"unknown function {word!r} in {expr!r}")
                functions.add(lower if lower in AGGREGATIONS else word)
            elif lower in AGGREGATIONS and next_word and next_word.group().lower() in {"by", "without"}:
                functions.add(lower)
            else:
                names.add(word)
        elif expr.startswith(_OPERATORS, position):
            operator = next(op for op in _OPERATORS if expr.startswith(op, position))
            position += len(operator)
        else:
            raise PromQLError(f"unexpected {char!r} at {position} in {expr!r}")
    return Query(frozenset(names), frozenset(functions), tuple(matchers), frozenset(variables))
