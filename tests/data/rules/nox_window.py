#!/usr/bin/env python3
"""Expected figures of check_rules' NOx-window test, computed independently of the C code.

    python3 tests/data/rules/nox_window.py           # print the expected figures
    python3 tests/data/rules/nox_window.py --write   # also (re)write nox_window.csv

The series is deterministic (a 64-bit LCG): two trips of a truck with engine figures
T_ref 1000 N.m, P_rated 200 kW, W_ref 5 kWh. Trip 1 is two runs of 1200 s separated by a gap
of exactly 600 s (still one trip: only gaps longer than 10 minutes end one); trip 2 starts
661 s after trip 1's last sample. The second run of trip 1 starts with 600 s of idling and
trip 2 ends with 560 s of it, so windows go invalid for low power and some are let go before
they end (see `windows` below). About 2 % of the samples carry a marker or an out-of-range
value in one of the fields the window needs.

nox_window.csv holds the raw wire values (hj1239.md scales) of every sample: t (seconds after
2024-03-05T08:00:00+08:00), torque, friction, rpm, fuel, nox_up, nox_down, intake. The C test
feeds them as HJ 1239 frames and compares what obd.nox_window reports with the figures printed
here. Everything below follows /work/shared/protocol/rules.md with plain loops:

  valid sample: torque, friction, rpm, fuel flow, intake air and downstream NOx all within
                their valid ranges (hj1239.md); other samples are left out of the series
  P   = (torque% - friction%) / 100 * T_ref * rpm * 2 pi / 60 / 1000 kW, negative taken as 0
  w   = P / 3600 kWh per 1 Hz sample
  m   = 0.001586 * max(c_NOx, 0) * (intake + fuel * 0.835) / 3600 g per sample
  window i: samples i..j, j the first with w_i + .. + w_j >= W_ref; D = j - i + 1
  valid:    (W * 3600 / D) >= 0.20 * P_rated
  NOx:      1000 * sum(m) / W mg/kWh
  percentile: nearest rank, rank = ceil(90 * N / 100) of the valid windows sorted ascending
  fails:    percentile > 690 mg/kWh
  windows:  complete windows, plus those that have not ended but span at least
            D_lim - 1 samples by the trip's end (n - i + 1 >= D_lim), where
            D_lim = (W_ref * 3600 + P_max) / (0.2 * P_rated), P_max = 250 % * T_ref *
            8031.875 rpm: no window that long can be valid, and vemd counts them as invalid
            windows when it lets them go (rules_window.c).
"""
import csv
import math
import os
import sys

T_REF, P_RATED, W_REF = 1000.0, 200.0, 5.0
U, DENSITY, MIN_FRAC, LIMIT, PCT = 0.001586, 0.835, 0.20, 690.0, 90
HERE = os.path.dirname(os.path.abspath(__file__))
CSV = os.path.join(HERE, "nox_window.csv")

# hj1239.md: physical = raw * scale + offset, valid for raw <= max_raw
FIELDS = {
    "torque": (1.0, -125.0, 250),
    "friction": (1.0, -125.0, 250),
    "rpm": (0.125, 0.0, 64255),
    "fuel": (0.05, 0.0, 64255),
    "nox_up": (0.05, -200.0, 64255),
    "nox_down": (0.05, -200.0, 64255),
    "intake": (0.05, 0.0, 64255),
}
COLUMNS = ["t", "torque", "friction", "rpm", "fuel", "nox_up", "nox_down", "intake"]


class Lcg:
    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) % 2**64
        return self.s >> 33

    def uniform(self, lo, hi):
        return lo + (hi - lo) * (self.next() / 2**31)


def raw(field, value):
    scale, offset, _ = FIELDS[field]
    return int(round((value - offset) / scale))


def generate():
    rng = Lcg(0x1769120180690)
    rows = []
    # first t, samples, NOx level (ppm) low and high, seconds of idling at the start and end
    runs = [(0, 1200, 30, 80, 0, 0), (1799, 1200, 30, 80, 600, 0), (3659, 1200, 10, 40, 0, 560)]
    for first, n, nox_lo, nox_hi, idle_head, idle_tail in runs:
        phase = 0
        for k in range(n):
            if k % 60 == 0:
                x = rng.uniform(0, 1)
                phase = 0 if x < 0.2 else 1 if x < 0.7 else 2 if x < 0.9 else 3
            if k < idle_head or k >= n - idle_tail:
                phase = 0
            if phase == 0:  # idle
                rpm, tq, fr = rng.uniform(600, 700), rng.uniform(6, 10), 6
                intake, fuel = rng.uniform(150, 250), rng.uniform(2, 4)
            elif phase == 1:  # cruise
                rpm, tq, fr = rng.uniform(1300, 1500), rng.uniform(40, 70), 8
                intake, fuel = rng.uniform(500, 700), rng.uniform(25, 35)
            elif phase == 2:  # hard
                rpm, tq, fr = rng.uniform(1700, 1900), rng.uniform(75, 95), 9
                intake, fuel = rng.uniform(850, 1000), rng.uniform(50, 65)
            else:  # motoring downhill: friction above torque
                rpm, tq, fr = rng.uniform(1100, 1300), 0, 10
                intake, fuel = rng.uniform(300, 400), 0
            row = {
                "t": first + k,
                "torque": raw("torque", round(tq)),
                "friction": raw("friction", fr),
                "rpm": raw("rpm", rpm),
                "fuel": raw("fuel", fuel),
                "nox_up": raw("nox_up", rng.uniform(600, 900)),
                "nox_down": raw("nox_down", rng.uniform(nox_lo, nox_hi)),
                "intake": raw("intake", intake),
            }
            if rng.next() % 50 == 0:  # a marker or an out-of-range value
                field, value = [
                    ("nox_down", 0xFFFF),
                    ("torque", 0xFF),
                    ("intake", 0xFEFF),
                    ("fuel", 0xFE00),
                    ("rpm", 0xFFFF),
                    ("nox_down", 64300),
                ][rng.next() % 6]
                row[field] = value
            rows.append(row)
    return rows


def value(row, field):
    scale, offset, max_raw = FIELDS[field]
    r = row[field]
    return None if r > max_raw else r * scale + offset


def trips(rows):
    out, cur, last = [], [], None
    for row in rows:
        if last is not None and row["t"] - last > 600:
            out.append(cur)
            cur = []
        cur.append(row)
        last = row["t"]
    out.append(cur)
    return out


def judge(trip):
    series = []  # (t, w kWh, m g)
    for row in trip:
        v = {f: value(row, f) for f in ["torque", "friction", "rpm", "fuel", "intake", "nox_down"]}
        if any(x is None for x in v.values()):
            continue
        p = (v["torque"] - v["friction"]) / 100 * T_REF * v["rpm"] * 2 * math.pi / 60 / 1000
        p = max(p, 0.0)
        q = v["intake"] + v["fuel"] * DENSITY
        m = U * max(v["nox_down"], 0.0) * q / 3600
        series.append((row["t"], p / 3600, m))
    n = len(series)
    p_max = 2.5 * T_REF * 8031.875 * 2 * math.pi / 60 / 1000
    d_lim = (W_REF * 3600 + p_max) / (MIN_FRAC * P_RATED)
    windows, valid, margin_end, margin_valid = 0, [], math.inf, math.inf
    for i in range(n):
        work = mass = 0.0
        end = None
        for j in range(i, n):
            before = work
            work += series[j][1]
            mass += series[j][2]
            if work >= W_REF:
                end = j
                margin_end = min(margin_end, abs(work - W_REF), abs(W_REF - before))
                break
        if end is None:
            if n - i + 1 >= d_lim:
                windows += 1
            continue
        windows += 1
        d = end - i + 1
        avg = work * 3600 / d
        margin_valid = min(margin_valid, abs(avg - MIN_FRAC * P_RATED))
        if avg >= MIN_FRAC * P_RATED:
            valid.append((1000 * mass / work, series[i][0], series[end][0]))
    ranked = sorted(valid)
    nv = len(ranked)
    rank = -(-PCT * nv // 100)
    pct = ranked[rank - 1] if nv else None
    return {
        "samples": len(trip),
        "valid_samples": n,
        "first_t": trip[0]["t"],
        "last_t": trip[-1]["t"],
        "windows": windows,
        "valid_windows": nv,
        "over": sum(1 for x in ranked if x[0] > LIMIT),
        "rank": rank,
        "p": pct,
        "fails": pct is not None and pct[0] > LIMIT,
        "margin_end": margin_end,
        "margin_valid": margin_valid,
    }


def main():
    rows = generate()
    if "--write" in sys.argv:
        with open(CSV, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    with open(CSV, newline="") as f:
        stored = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(f)]
    if stored != rows:
        sys.exit("nox_window.csv differs from the generator: run with --write")
    for k, trip in enumerate(trips(stored), 1):
        r = judge(trip)
        pct, start, end = r["p"]
        print(f"trip {k}: samples {r['samples']} (t {r['first_t']}..{r['last_t']}), "
              f"valid samples {r['valid_samples']}")
        print(f"  windows {r['windows']}, valid {r['valid_windows']}, over 690: {r['over']}, "
              f"rank {r['rank']}")
        print(f"  p{PCT} = {pct:.4f} mg/kWh (window t {start}..{end}), fails {r['fails']}")
        print(f"  margins: window ends {r['margin_end']:.3g} kWh, "
              f"validity {r['margin_valid']:.3g} kW (rounding cannot flip them)")
        assert r["margin_end"] > 1e-9 and r["margin_valid"] > 1e-6


if __name__ == "__main__":
    main()
