#!/usr/bin/env python3
"""Judges every case of cases.jsonl against schema/rsd_reading.schema.json with an independent
validator (python3-jsonschema), so tests/check_rsd.c can hold the parser and the schema to the
same verdicts. Prints one line per case: "<index> ok" or "<index> fail <key>" (the key of the
first error's path, or "" at the top), or "<index> skip" for cases the schema cannot judge
(raw text, calendar and receipt-relative time bounds)."""
import json
import sys

import jsonschema

schema_path, cases_path = sys.argv[1], sys.argv[2]
with open(schema_path, encoding="utf-8") as f:
    schema = json.load(f)
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
with open(cases_path, encoding="utf-8") as f:
    for i, line in enumerate(f):
        case = json.loads(line)
        if not case["schema"]:
            print(i, "skip")
            continue
        errors = list(validator.iter_errors(case["doc"]))
        if not errors:
            print(i, "ok")
        else:
            print(i, "fail", " ".join(sorted({str(e.path[0]) if e.path else "" for e in errors})))
