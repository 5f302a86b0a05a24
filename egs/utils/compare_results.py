#!/usr/bin/env python3
"""Compare the key figures of a run's RESULTS.md with the committed copy.

    python utils/compare_results.py exp/RESULTS.md RESULTS.md

Both files are what utils/summarize_results.py writes. The figures compared are the
ABX table (every system and condition), the training table (dev loss, codes used,
code perplexity) and the unit metrics (PNMI, phone purity, boundary F1); cells are
matched by section, row and column, so a table with other rows or columns compares
what the two share. Prints one line per row, `this run / committed` per column,
then how many figures agree. The exit status is 0 whatever the figures are (a
rerun on another machine differs a little); 1 only when RUN cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# section title -> the columns worth comparing (None: every column)
KEY_FIGURES: dict[str, list[str] | None] = {
    "ABX": None,
    "Training": ["dev loss", "codes used", "code perplexity"],
    "Unit metrics": ["phone purity", "PNMI", "boundary F1"],
}
SKIP_ROWS = {"(triplets scored)"}


def read_tables(path: Path) -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """Section title (the `## ` heading above it) -> (header, {row label: cells}) of its first table."""
    tables: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
    section, table = "", None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            section, table = line[3:].strip(), None
        elif not line.startswith("|"):
            table = None  # a table ends at the first line that is not a row
        else:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if table is None:
                table = (cells, {})
                tables.setdefault(section, table)
            elif not all(set(c) <= set("-:") for c in cells):  # not the alignment row
                table[1][cells[0]] = cells[1:]
    return tables


def as_number(cell: str) -> float | None:
    """The number a cell starts with ("2.026 (1000)" -> 2.026, "64/64" -> 64), or None."""
    head = cell.split()[0].split("/")[0] if cell.split() else ""
    try:
        return float(head)
    except ValueError:
        return None


def compare(run: Path, committed: Path) -> tuple[list[str], int, int]:
    """Lines to print, and (figures equal, figures compared)."""
    mine, theirs = read_tables(run), read_tables(committed)
    lines: list[str] = []
    equal = total = 0
    for section, wanted in KEY_FIGURES.items():
        if section not in mine or section not in theirs:
            continue
        header, rows = mine[section]
        other_header, other_rows = theirs[section]
        columns = [c for c in header[1:] if c in other_header[1:] and (wanted is None or c in wanted)]
        if not columns:
            continue
        lines.append(f"{section} (this run / committed): " + "; ".join(columns))
        for label, cells in rows.items():
            if label in SKIP_ROWS or label not in other_rows:
                continue
            pairs = []
            for col in columns:
                a = cells[header.index(col) - 1]
                b = other_rows[label][other_header.index(col) - 1]
                pairs.append(f"{a} / {b}")
                total += 1
                equal += as_number(a) is not None and as_number(a) == as_number(b)
            lines.append(f"  {label:<16} " + "   ".join(pairs))
    return lines, equal, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="this run's RESULTS.md")
    p.add_argument("committed", type=Path, help="the committed RESULTS.md")
    args = p.parse_args(argv)
    if not args.run.is_file():
        print(f"compare_results: no such file: {args.run}", file=sys.stderr)
        return 1
    if not args.committed.is_file():
        print(f"no committed {args.committed} to compare {args.run} with")
        return 0
    lines, equal, total = compare(args.run, args.committed)
    print(f"Key figures of {args.run} vs the committed {args.committed}:")
    print("\n".join(lines) if lines else "  (no figures in common)")
    if total:
        print(f"{equal} of {total} figures equal the committed ones"
              + ("" if equal == total else " (small differences between machines are expected)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
