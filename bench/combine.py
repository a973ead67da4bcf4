"""Combines the rows of several runs of scripts/bench (each a TSV file of measure, ours,
baseline, ratio, target, written by `scripts/bench --rows FILE`) into BENCHMARKS.md's table:
per row, the median of each figure over the runs, and the spread (lowest to highest) of the
ratio, or of our figure where the row has no ratio. Rows are matched by their place (every run
writes the same rows in the same order); a measure's name is the first run's.

Usage: python3 combine.py RUN1.tsv RUN2.tsv ...   (prints the table's rows in Markdown)
"""
import re
import statistics
import sys

NUMBER = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?)(.*)$")


def parse(text):
    """(value, the text's decimals, what follows the number) or None for a text without one."""
    match = NUMBER.match(text.strip())
    if not match:
        return None
    number = match.group(1)
    decimals = len(number.split(".")[1]) if "." in number else 0
    return float(number), decimals, match.group(2)


def median_of(texts):
    parsed = [parse(text) for text in texts]
    if not texts[0].strip() or any(value is None for value in parsed):
        return texts[0], None
    values = [value for value, _, _ in parsed]
    _, decimals, unit = parsed[0]
    return f"{statistics.median(values):.{decimals}f}{unit}", (min(values), max(values), decimals, unit)


def main(paths):
    runs = [[line.rstrip("\n").split("\t") for line in open(path) if line.strip()] for path in paths]
    count = len(runs[0])
    for number, run in enumerate(runs, 1):
        if len(run) != count:
            sys.exit(f"combine.py: run {number} has {len(run)} rows, the first {count}")
    for index in range(count):
        rows = [run[index] for run in runs]
        measure, target = rows[0][0], rows[0][4]
        ours, ours_range = median_of([row[1] for row in rows])
        baseline, _ = median_of([row[2] for row in rows])
        ratio, ratio_range = median_of([row[3] for row in rows])
        spread = ""
        if ratio_range:
            low, high, decimals, _ = ratio_range
            spread = f"{low:.{decimals}f} to {high:.{decimals}f}"
        elif ours_range:
            low, high, decimals, unit = ours_range
            spread = f"{low:.{decimals}f} to {high:.{decimals}f}{unit}"
        print(f"| {measure} | {ours} | {baseline} | {ratio} | {spread} | {target} |")


if __name__ == "__main__":
    main(sys.argv[1:])
