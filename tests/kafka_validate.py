#!/usr/bin/env python3
"""kafka_validate — checks Kafka events against their JSON Schemas, independently of vemd.

    tests/kafka_validate.py SCHEMA_DIR EVENTS_FILE

EVENTS_FILE holds one event (JSON) per line, as a consumer printed them. Each is validated
with python3-jsonschema (Draft 2020-12) against SCHEMA_DIR/<event_type>.json. Prints
`valid=N invalid=M` and, on stderr, the first few errors; exits 0 only when every event is
valid and there is at least one."""
import json
import sys

import jsonschema


def main():
    schema_dir, events = sys.argv[1], sys.argv[2]
    validators = {}
    valid = invalid = 0
    with open(events, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
                kind = event["event_type"]
                if kind not in validators:
                    with open(f"{schema_dir}/{kind}.json", encoding="utf-8") as s:
                        schema = json.load(s)
                    jsonschema.Draft202012Validator.check_schema(schema)
                    validators[kind] = jsonschema.Draft202012Validator(schema)
                errors = list(validators[kind].iter_errors(event))
            except (ValueError, KeyError, OSError) as e:
                errors = [e]
            if errors:
                invalid += 1
                if invalid <= 5:
                    print(f"line {n}: {errors[0]}", file=sys.stderr)
            else:
                valid += 1
    print(f"valid={valid} invalid={invalid}")
    return 0 if valid > 0 and invalid == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
