#!/usr/bin/env python3
"""Prints the results table of a results.json as lm-evaluation-harness's command line does.

    python3 lm_eval_table.py RESULTS_JSON

Follows the harness's own code path, written from reading it (lm_eval/__main__.py
cli_evaluate and lm_eval/utils.py make_table, 0.4.x): print(make_table(results)), then
print(make_table(results, "groups")) when the file has a "groups" section. make_table reads
results[column], versions (a missing "versions" raises KeyError, as in the harness),
n-shot and higher_is_better, drops "alias" (the row's name) and "_stderr" keys, formats
floats with "%.4f" and pairs each metric with its "<metric>_stderr,<filter>" value.

The harness hands the rows to pytablewriter's MarkdownTableWriter; MarkdownTable below does
what that writer does with such rows (read from pytablewriter, DataProperty and typepy), so
that the printed text is the same: each cell is typed (an integral float or int or a numeric
string without a fraction is an integer, other numeric strings and floats real numbers, a
blank string a null string, anything else a string); a column is real when it mixes integers and reals,
else of its type; integer and real columns are right-aligned and reals printed with the most
decimal places any of the column's values has (as str(float) shows it), strings
left-aligned; headers centred; every column at least 3 wide; "|" in a cell escaped.

Only the standard library: no harness, pytablewriter or numpy needed. Exit status 0, or the
traceback of the harness's own failure (e.g. KeyError: 'versions')."""

import json
import sys
import unicodedata
from decimal import Decimal, InvalidOperation

HIGHER_IS_BETTER_SYMBOLS = {True: "\u2191", False: "\u2193"}


def make_table(result_dict, column="results", sort_results=False):
    """The harness's make_table (0.4.x): one row per metric of every task or group."""
    column_name = "Groups" if column == "groups" else "Tasks"
    headers = [column_name, "Version", "Filter", "n-shot", "Metric", "", "Value", "", "Stderr"]
    values = []
    keys = result_dict[column].keys()
    if sort_results:
        keys = sorted(keys)
    for k in keys:
        dic = dict(result_dict[column][k])
        version = result_dict["versions"].get(k, "    N/A")
        n = str(result_dict.get("n-shot", " ").get(k, " "))
        higher_is_better = result_dict.get("higher_is_better", {}).get(k, {})
        if "alias" in dic:
            k = dic.pop("alias")
        # newer harnesses drop these bookkeeping keys too
        for extra in ("name", "sample_len", "sample_count"):
            dic.pop(extra, None)
        for mf, v in sorted(dic.items()):
            m, _, f = mf.partition(",")
            if m.endswith("_stderr"):
                continue
            hib = HIGHER_IS_BETTER_SYMBOLS.get(higher_is_better.get(m), "")
            v = "%.4f" % v if isinstance(v, float) else v
            if m + "_stderr" + "," + f in dic:
                se = dic[m + "_stderr" + "," + f]
                se = "   N/A" if se == "N/A" else "%.4f" % se
                values.append([k, version, f, n, m, hib, v, "\u00b1", se])
            else:
                values.append([k, version, f, n, m, hib, v, "", ""])
            k = ""
            version = ""
    return MarkdownTable(headers, values).dumps()


# cell types, as typepy's Typecode
NULL_STRING, INTEGER, REAL, STRING = "null", "int", "real", "str"


def _decimal(text):
    try:
        d = Decimal(text)
    except (InvalidOperation, ValueError, TypeError):
        return None
    return d if d.is_finite() else None


def cell_type(value):
    """(type, data) of one cell as DataProperty types it at pytablewriter's strict levels."""
    if isinstance(value, bool):
        return STRING, str(value)
    if isinstance(value, int):
        return INTEGER, value
    if isinstance(value, float):
        return (INTEGER, int(value)) if value.is_integer() else (REAL, Decimal(str(value)))
    if value is None:
        return NULL_STRING, ""
    text = str(value)
    if text.strip() == "":
        return NULL_STRING, text
    d = _decimal(text.replace(",", "")) if "e" not in text.lower() else None
    if d is not None:
        return (INTEGER, int(d)) if d == d.to_integral_value() else (REAL, d)
    return STRING, text


def decimal_places(kind, data):
    """DataProperty's decimal places: 0 for integers, else the digits after the point of
    str(abs(float(value)))."""
    if kind == INTEGER:
        return 0
    text = str(abs(float(data)))
    return len(text.split(".")[1]) if "." in text else 0


def text_width(text):
    """Display width: east-asian wide and full-width characters count 2, the rest 1."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


class MarkdownTable:
    MIN_WIDTH = 3

    def __init__(self, headers, rows):
        self.headers = headers
        self.rows = rows

    def _column_type(self, kinds):
        numbers = kinds & {INTEGER, REAL}
        if not kinds - {INTEGER, REAL, NULL_STRING} and (
            REAL in kinds and NULL_STRING in kinds or len(numbers) == 2
        ):
            return REAL
        for kind in (STRING, REAL, INTEGER, NULL_STRING):
            if kind in kinds:
                return kind
        return STRING

    def _format(self, col_kind, places, kind, data):
        if kind == STRING or kind == NULL_STRING:
            return str(data)
        if col_kind == REAL:
            return ("{:.%df}" % places).format(Decimal(data))
        if col_kind == INTEGER:
            return "{:d}".format(int(data))
        # a number in a string column: its own type's format, the column's decimal places
        return ("{:.%df}" % places).format(Decimal(data)) if kind == REAL else "{:d}".format(data)

    def dumps(self):
        if not self.rows:  # pytablewriter writes nothing for a table without rows
            return ""
        n_cols = len(self.headers)
        typed = [[cell_type(v) for v in row] for row in self.rows]
        texts = [[""] * n_cols for _ in self.rows]
        aligns, widths = [], []
        for c in range(n_cols):
            cells = [row[c] for row in typed]
            col_kind = self._column_type({k for k, _ in cells})
            places = max([decimal_places(k, d) for k, d in cells if k in (INTEGER, REAL)] or [0])
            for r, (k, d) in enumerate(cells):
                texts[r][c] = self._format(col_kind, places, k, d).replace("|", "\\|")
            right = col_kind in (INTEGER, REAL)
            aligns.append([right or (col_kind == STRING and k in (INTEGER, REAL)) for k, _ in cells])
            width = max([self.MIN_WIDTH, text_width(self.headers[c])] + [text_width(t) for t in [row[c] for row in texts]])
            widths.append((width, right))
        lines = []

        def pad(text, width, how):
            fill = width - text_width(text)
            if how == "^":
                return " " * (fill // 2) + text + " " * (fill - fill // 2)
            return " " * fill + text if how == ">" else text + " " * fill

        lines.append("|" + "|".join(pad(h.replace("|", "\\|"), w, "^") for h, (w, _) in zip(self.headers, widths)) + "|")
        lines.append("|" + "|".join("-" * (w - 1) + ":" if right else "-" * w for w, right in widths) + "|")
        for r, row in enumerate(texts):
            lines.append("|" + "|".join(pad(t, widths[c][0], ">" if aligns[c][r] else "<") for c, t in enumerate(row)) + "|")
        return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        results = json.load(f)
    print(make_table(results))
    if "groups" in results:
        print(make_table(results, "groups"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
