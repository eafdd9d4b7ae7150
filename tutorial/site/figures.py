"""Figures from `make bench`, named in the docs' prose and written in while the site builds.

A page never types a measured figure: the next run would make the prose contradict its own
table. It names the figure in docs/assets/bench/results.json instead, between double braces:

    {{ bench 05@100.p99_ms }}                                      65 ms
    {{ bench 05@100.deliveries_per_s / 04@100.deliveries_per_s }}  1.7×
    {{ bench 06x2@500.deliveries_per_s / 06x1@500.deliveries_per_s | times }}   2.4 times
    {{ bench 06x1@100.deliveries_per_s / 05@100.deliveries_per_s | about }}     about
    {{ bench 07@10.cpu_us_per_message - 05@10.cpu_us_per_message }}              210 µs
    {{ bench (07@10.cpu_us_per_message - 05@10.cpu_us_per_message) / 05@100.cpu_us_per_message | percent }}  5.2%
    {{ bench sum(*@*.expected) }}                                  580,000
    {{ bench 05@*.deliveries_per_s > 04@*.deliveries_per_s }}      (nothing: a claim the build checks)

A path starts with rows of results.json, VARIANT@N: a variant's key ("04", "05", "06x1",
"06x2", "07", "bare") and the number of clients in the room. Either may be a comma-separated list,
or * for all of them; such a path names several values, one per row. A path may instead start
with a top-level key ("plan.steady_rate", "machine.versions.channels"). Dots then go down into
the row; a value that is a dict with a "median" counts as its median. A name (a version) is
shown as it is.

- A figure is a path, `A / B`, `A - B`, or sum(), min() or max() of a path that names several
  values. Its unit comes from the last key's name: _ms, _us (µs), _per_s and _rate (/s), _s;
  two values with the same unit divide into a ratio (×), and subtract only when they have the
  same unit. A difference divided is written in parentheses, `(A - B) / C`, so that nobody
  has to remember which goes first. After a `|`, another form: `bare` (the number alone),
  `times` ("2.4 times"), `percent` (a ratio, or a fraction such as busy_burst, as "5.2%"), `about` (words for a comparison:
  "about", "about twice", "about half", or "1.7 times", to be followed by "as many as" or
  "as fast as"), `range` (a measurement with the range of its repeats: "2.1× (1.9–2.3×)").
- A measurement in results.json is {median, min, max, values}: the median of its repeats, and
  each repeat's value in repeat order. A figure is its median; but A / B or A - B of two
  measurements is taken within each repeat first, then its median (and range) over the repeats,
  so that two variants are compared with each other as measured minutes apart, not across
  repeats the machine may have spent differently.
- A claim is `A < B` (or >, <=, >=, ==), where B may also be a plain number. It is written as
  nothing; when it is false, the build fails. Sides that each name several values are paired
  row by row. Put a claim beside the words it stands for ("faster", "under", "none").

Measured values are shown to two significant figures: the median of a few repeats on a shared
machine is not more precise than that. Counts (integers) are shown whole. A path that names nothing, or a
false claim, stops the build with the page and the expression.
"""

import json
import logging
import math
import operator
import re
import statistics

from mkdocs.exceptions import PluginError

from tutorial.core.steps import ROOT

RESULTS = ROOT / "docs" / "assets" / "bench" / "results.json"
MARKER = re.compile(r"\{\{\s*bench\s+(.*?)\s*\}\}")
RELATION = re.compile(r"\s(<=|>=|==|<|>)\s")
COMPARE = {"<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
           ">=": lambda a, b: a >= b, "==": lambda a, b: a == b}
# Keys that pick a statistic of a measurement rather than name one: the unit is the measurement's.
STATISTICS = {"median", "min", "max", "mean", "values"}
CLAIM = "\0"  # what a claim leaves behind, until its line is cleaned up


LOG = logging.getLogger("mkdocs.hooks.figures")


class FigureError(PluginError):
    """A figure that results.json does not hold, or a claim it contradicts: the build stops."""


def unit_of(key):
    if key.endswith("_ms"):
        return "ms"
    if "_us" in key:
        return "µs"
    if key.endswith(("_per_s", "_rate")):
        return "/s"
    if key.endswith(("_s", "_seconds")):
        return "s"
    return None


def significant(value, digits=2):
    """6893 -> "6,900", 65.04 -> "65", 2.49 -> "2.5", 0.981 -> "0.98"."""
    if value == 0:
        return "0"
    places = digits - 1 - math.floor(math.log10(abs(value)))
    rounded = round(value, places)
    if rounded and math.floor(math.log10(abs(rounded))) > math.floor(math.log10(abs(value))):
        places -= 1  # 9.96 became 10: one digit moved in front of the point
    return f"{rounded:,.{max(0, places)}f}"


class Measured(float):
    """A measurement: its median, as a number, and the value of each repeat (None where a
    repeat had none), in repeat order, so that two measurements can be paired repeat by repeat."""

    def __new__(cls, median, values):
        measured = super().__new__(cls, median)
        measured.values = values
        return measured


def paired(x, y, operation):
    """x op y; for two measurements of the same repeats, the median of op within each repeat:
    05 and 04 measured minutes apart in one repeat are compared with each other, not with
    whatever the machine was doing during another repeat."""
    if isinstance(x, Measured) and isinstance(y, Measured) and len(x.values) == len(y.values):
        # A repeat that lacks either side stays a None in its place, so that a further
        # operation still pairs repeat with repeat: (A - B) / (C - D).
        each = [None if a is None or b is None or (b == 0 and operation is operator.truediv) else operation(a, b)
                for a, b in zip(x.values, y.values)]
        known = [value for value in each if value is not None]
        if known:
            return Measured(statistics.median(known), each)
    return operation(x, y)


class Values:
    """What an expression names: one value, or one per row ({key: value}), and their unit."""

    def __init__(self, values, unit, whole=False):
        self.values, self.unit, self.whole = values, unit, whole

    def numbers(self, text):
        if any(isinstance(value, str) for value in self.values.values()):
            raise FigureError(f"`{text}`: a name (a version, a label) can be shown, not compared or divided")
        return self

    def single(self, text):
        if list(self.values) != [()]:
            raise FigureError(f"`{text}` names {len(self.values)} values: pick one row, or use sum(), min() "
                              "or max()")
        return self.values[()]


def dig(value, keys, text):
    for key in keys:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            known = ", ".join(value) if isinstance(value, dict) else "no keys"
            raise FigureError(f"`{text}`: results.json has no {key!r} here (it has: {known})")
    if isinstance(value, dict) and "median" in value:
        value = Measured(value["median"], value.get("values", [value["median"]]))
    if not isinstance(value, (int, float, str)) or isinstance(value, bool):
        raise FigureError(f"`{text}` is {value!r}, not a number or a name")
    return value


def path(text, data):
    head, *keys = text.split(".")
    unit = next((unit_of(key) for key in reversed(keys or [head]) if key not in STATISTICS), None)
    if "@" not in head:
        value = dig(data, [head, *keys], text)
        # Outside the rows are settings (plan) and facts (machine): 4.0 s is "4 s", not a measurement.
        return Values({(): value}, unit, isinstance(value, int) or (isinstance(value, float) and value.is_integer()))
    variants, sizes = head.split("@", 1)
    rows = {(row["variant"], row["n"]): row for row in data["results"]}
    known_variants = list(dict.fromkeys(variant for variant, _ in rows))
    known_sizes = sorted({n for _, n in rows})
    chosen_variants = known_variants if variants == "*" else variants.split(",")
    try:
        chosen_sizes = known_sizes if sizes == "*" else [int(size) for size in sizes.split(",")]
    except ValueError:
        raise FigureError(f"`{text}`: after @ comes a number of clients ({known_sizes}), or *") from None
    values = {}
    for variant in chosen_variants:
        for n in chosen_sizes:
            if (variant, n) not in rows and "*" in (variants, sizes):
                continue  # * names the rows there are: a lever is measured at one N only
            if (variant, n) not in rows:
                raise FigureError(f"`{text}`: results.json has no row for variant {variant!r} at N = {n} "
                                  f"(variants: {', '.join(known_variants)}; N: {known_sizes})")
            # A row's key holds only what varies, so that 05@*.x and 04@*.x pair up by N.
            key = tuple(part for part, many in ((variant, len(chosen_variants) > 1),
                                                (n, len(chosen_sizes) > 1)) if many)
            values[key] = dig(rows[variant, n], keys, text)
    return Values(values, unit, all(isinstance(value, int) for value in values.values()))


def pair(a, b, text):
    """The values of two sides, row by row; one value goes with every row of the other side."""
    if list(a.values) == [()]:
        return [(key, a.values[()], value) for key, value in b.values.items()]
    if list(b.values) == [()]:
        return [(key, value, b.values[()]) for key, value in a.values.items()]
    if set(a.values) != set(b.values):
        raise FigureError(f"`{text}`: the two sides name different rows, so they cannot be paired")
    return [(key, value, b.values[key]) for key, value in a.values.items()]


def term(text, data):
    text = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return Values({(): float(text)}, None, "." not in text)
    function = re.fullmatch(r"(sum|min|max)\((.+)\)", text)
    if function:
        inner = path(function[2].strip(), data).numbers(text)
        total = {"sum": sum, "min": min, "max": max}[function[1]](inner.values.values())
        return Values({(): total}, inner.unit, inner.whole)
    return path(text, data)


def difference(text, data):
    """A term, or `A - B` of two in one unit: how much one variant costs more than another."""
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    parts = re.split(r"\s-\s", text)
    if len(parts) == 1:
        return term(text, data)
    if len(parts) > 2:
        raise FigureError(f"`{text}`: one subtraction at most")
    a, b = term(parts[0], data).numbers(text), term(parts[1], data).numbers(text)
    if a.unit != b.unit:
        raise FigureError(f"`{text}` subtracts {b.unit or 'a count'} from {a.unit or 'a count'}")
    return Values({key: paired(x, y, operator.sub) for key, x, y in pair(a, b, text)}, a.unit, a.whole and b.whole)


def expression(text, data):
    parts = re.split(r"\s/\s", text)
    if len(parts) == 1:
        return difference(text, data)
    if len(parts) > 2:
        raise FigureError(f"`{text}`: one division at most")
    for part in parts:
        part = part.strip()
        if re.search(r"\s-\s", part) and not (part.startswith("(") and part.endswith(")")):
            raise FigureError(f"`{text}`: put a difference that is divided in parentheses, (A - B) / C")
    a, b = difference(parts[0], data).numbers(text), difference(parts[1], data).numbers(text)
    if a.unit == b.unit:
        unit = "×"
    elif b.unit is None:
        unit = a.unit  # per client, per message: the numerator's unit
    else:
        raise FigureError(f"`{text}` divides {a.unit or 'a count'} by {b.unit}")
    return Values({key: paired(x, y, operator.truediv) for key, x, y in pair(a, b, text)}, unit)


def shown(value, unit, whole=False):
    number = f"{value:,.0f}" if whole else significant(value)
    return number + {None: "", "×": "×", "/s": "/s"}.get(unit, f" {unit}")


def about(ratio):
    """Words for a ratio, to be followed by "as many as": the nearest of a few plain answers."""
    for target, words in [(1, "about"), (2, "about twice"), (3, "about three times"), (0.5, "about half")]:
        if abs(ratio - target) <= 0.1 * target:
            return words
    return f"{significant(ratio)} times"


def figure(text, data):
    text, _, form = text.partition(" | ")
    values = expression(text, data)
    value = values.single(text)
    if isinstance(value, str) and form == "":
        return value
    values.numbers(text)
    if form == "":
        return shown(value, values.unit, values.whole)
    if form == "bare":
        return shown(value, None, values.whole)
    if form == "range":
        if not isinstance(value, Measured):
            raise FigureError(f"`{text} | range`: only a measurement (or a ratio of two) has a range")
        known = [each for each in value.values if each is not None]
        low, high = min(known), max(known)
        return f"{shown(value, values.unit)} ({significant(low)}–{shown(high, values.unit)})"
    if form == "percent" and values.unit in (None, "×"):
        # A ratio, or a fraction (of the cores that were busy, say).
        return f"{significant(100 * value)}%"
    if values.unit != "×":
        raise FigureError(f"`{text} | {form}`: only a ratio (A / B of the same unit) can be said in words")
    if form == "times":
        return f"{significant(value)} times"
    if form == "about":
        return about(value)
    raise FigureError(f"`| {form}`: the forms are bare, range, times, percent and about")


def claim(text, data, relation):
    left, right = RELATION.split(text, maxsplit=1)[::2]
    a, b = expression(left, data).numbers(text), expression(right, data).numbers(text)
    false = [(key, x, y) for key, x, y in pair(a, b, text) if not COMPARE[relation](x, y)]
    if false:
        rows = "; ".join(
            (f"at {'/'.join(map(str, key))}: " if key else "") + f"{shown(x, a.unit)} {relation} {shown(y, b.unit)}"
            for key, x, y in false)
        raise FigureError(f"`{text}` is false in results.json ({rows}): the prose beside it no longer "
                          "says what the benchmark measured")
    return CLAIM


def render(markdown, where, data=None, strict=True):
    """The page with every {{ bench ... }} written in.

    strict (the build in `make test`, and `mkdocs build`): raise FigureError naming every figure
    that fails. Otherwise (`make docs`, which may serve a learner's own `make bench`): the page is
    still built, a figure results.json lacks shows as missing, a false claim is left out, and a
    warning at the top of the page names each sentence the run contradicts.
    """
    if not MARKER.search(markdown):
        return markdown
    data = data if data is not None else json.loads(RESULTS.read_text())
    errors = []

    def replace(match):
        text = match[1]
        relation = RELATION.search(text)
        try:
            return claim(text, data, relation[1]) if relation else figure(text, data)
        except FigureError as error:
            errors.append(f"line {markdown.count(chr(10), 0, match.start()) + 1}: {error}")
            return CLAIM if relation else "**(missing from results.json)**"

    written = MARKER.sub(replace, markdown)
    if errors:
        summary = f"{where}: {len(errors)} figure(s) do not match {RESULTS.relative_to(ROOT)}:\n  " + "\n  ".join(errors)
        if strict:
            raise FigureError(summary)
        LOG.info(summary)  # not a warning: the site's strict config would refuse to serve the page
        warning = (f'!!! warning "Your `make bench` run disagrees with {len(errors)} sentence(s) on this page"\n\n'
                   "    The prose was written from the run committed with the tutorial; the figures in it are yours, "
                   "but these claims beside them are false for your run, so read those sentences with care:\n\n"
                   + "".join(f"    - {error.split(': ', 1)[1]}\n" for error in errors) + "\n")
        heading = re.search(r"^# .*\n", written, flags=re.MULTILINE)
        at = heading.end() if heading else 0
        written = written[:at] + "\n" + warning + written[at:]
    # A line that held only claims goes away whole, so it does not split its paragraph.
    written = re.sub(rf"^[ \t]*{CLAIM}(?:[ \t]*{CLAIM})*[ \t]*\n", "", written, flags=re.MULTILINE)
    return re.sub(rf"[ \t]?{CLAIM}", "", written)
