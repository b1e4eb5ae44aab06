#!/usr/bin/env python3
"""Single-thread throughput of Python `phonenumbers` (parse + is_valid_number + format E164)
over the inputs of tests/data/phone_cases.tsv; the reference figure in BENCHMARKS.md."""
import os
import time

import phonenumbers

PATH = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "phone_cases.tsv")


def load():
    rows, started = [], False
    with open(PATH, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not started:
                started = line.startswith("# input\t")
                continue
            fields = line.split("\t")
            rows.append((fields[0], fields[1] or None))
    return rows


def one_pass(rows):
    for raw, hint in rows:
        try:
            num = phonenumbers.parse(raw, hint)
            phonenumbers.is_valid_number(num)
            phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            pass


def main():
    rows = load()
    one_pass(rows)  # warm-up
    start = time.perf_counter()
    one_pass(rows)
    one_pass(rows)
    per_pass = (time.perf_counter() - start) / 2
    print("phonenumbers %s: %d inputs, %.0f numbers/s (warm, one thread)"
          % (phonenumbers.__version__, len(rows), len(rows) / per_pass))


if __name__ == "__main__":
    main()
