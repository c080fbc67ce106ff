#!/usr/bin/env python3
"""Violation ids from their definition (rules.h, vem_rules_id), independently of vemd.

    python3 tests/data/rules/rule_id.py RULE VEHICLE_KEY ANCHOR

The id is two FNV-1a 64-bit hashes of the bytes RULE, NUL, VEHICLE_KEY, NUL, ANCHOR (UTF-8):
one from the FNV-64 offset basis, one from the high 64 bits of the FNV-128 offset basis (rules.h says
"low"; the ids vemd has always made, and check_rules.c's mil_on, use the high half), both
with the FNV-64 prime, printed as 32 hex digits (first hash first)."""
import sys

PRIME = 0x100000001B3
BASIS_64 = 0xCBF29CE484222325
BASIS_128_HIGH = 0x6C62272E07BB0142  # 0x6c62272e07bb014262b821756295c58d, high 64 bits


def fnv1a(data, h):
    for b in data:
        h ^= b
        h = (h * PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def rule_id(rule, key, anchor):
    data = rule.encode() + b"\0" + key.encode() + b"\0" + anchor.encode()
    return "%016x%016x" % (fnv1a(data, BASIS_64), fnv1a(data, BASIS_128_HIGH))


if __name__ == "__main__":
    print(rule_id(*sys.argv[1:4]))
