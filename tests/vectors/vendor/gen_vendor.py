#!/usr/bin/env python3
"""Vendor items around standard blocks: real-time frames built from protocol/hj1239.md's
layouts, independently of parsers/hj1239.c (no shared code, no use of the encoder).

Writes vectors.jsonl next to this script (one frame per line: hex, and what a decoder must
find: layout, frame seq, blocks with their raw field values in wire order and, in HJ 1239
frames, their collection times; the vendor items skipped, as data-unit offset, length and the
number of standard blocks before each) and, with --corpus DIR, one DIR/vtext_NAME.bin per
frame for the decode fuzzer's seed corpus.

A vendor text item is what field terminals send: 0x20, 32 characters, 0x00 (34 bytes).
Decoys put bytes that look like a block type (0x01, 0x02, 0x80, followed by a possible block
time in HJ 1239 frames) inside the vendor text. The mixed frames add a vendor block (0x81 and
bytes whose length a decoder cannot know, a stream type inside) next to text items. Run: python3 gen_vendor.py [--corpus DIR]
"""
import datetime
import json
import os
import struct
import sys

VIN = b"LVEMVENDOR0000001"
BEIJING = datetime.timezone(datetime.timedelta(hours=8))

# Field widths in wire order (hj1239.md tables).
STREAM_W = [2, 1, 1, 1, 2, 2, 2, 2, 1, 2, 2, 2, 2, 1, 1, 1, 4, 4, 4]  # 0x02, 37 bytes
SUPP_W = [1, 1, 4, 1, 4, 4, 2]  # 0x80, 17 bytes
STREAM_A = [0x3E80, 0xC9, 0xAD, 0x83, 0x2D50, 0x0273, 0x3F77, 0x12A0, 0xB5, 0x41D4,
            0x4930, 0x4768, 0x0022, 0x7E, 0x8A, 0x00, 118689985, 32450000, 1234567]
STREAM_B = [0x1900, 0xC8, 0x90, 0x80, 0x1F40, 0x0100, 0x1000, 0x0FA0, 0x64, 0x2000,
            0x2220, 0x2220, 0x0010, 0x50, 0x60, 0x06, 1000000, 2000000, 42]
SUPP_A = [9, 100, 123456, 0x41, 777, 888888, 0x2220]


def fields(widths, raw):
    out = b""
    for w, v in zip(widths, raw):
        out += v.to_bytes(w, "big")
    return out


def wire_time(dt):
    return bytes([dt.year - 2000, dt.month, dt.day, dt.hour, dt.minute, dt.second])


def obd_body(dtcs):
    # protocol 2 (J1939), MIL on, support 0x0C01, readiness 0x0801, VIN, SCIN, CVN, IUPR, DTCs
    b = bytes([2, 1]) + struct.pack(">HH", 0x0C01, 0x0801) + VIN
    b += b"CAL-VEM-0001".ljust(18, b"\0") + b"CVN12345".ljust(18, b"\0") + bytes(range(36))
    b += bytes([len(dtcs)]) + b"".join(struct.pack(">I", d) for d in dtcs)
    return b, [2, 1, 0x0C01, 0x0801, len(dtcs)]


def text_item(text):
    assert len(text) == 32 and b"\0" not in text
    return b"\x20" + text + b"\x00"


ITEM1 = text_item(b"VENDOR-A:ENGINE=WP10H;ECU=EDC17C")
ITEM2 = text_item(b"VENDOR-B:GPS=UM220;SIG=-71dBm;OK")
# decoys: a standard type byte inside the text with room for a whole block after it
DECOY_GB = text_item(b"\x02" + b"x" * 31)
DECOY_HJ = text_item(b"ID\x02\x1a\x0b\x1e\x08\x01\x05" + b"y" * 23)
DECOY_MIX = text_item(b"\x01\x80\x02\x05\x03\x04" + b"z" * 26)
# a vendor block (type 0x81, length unknown to a decoder) with a stream type and 40 bytes inside
VENDOR_BLOCK = bytes([0x81, 0x10, 0x02]) + bytes(range(0x40, 0x68))


class Frame:
    def __init__(self, name, hj, note, seq=7):
        self.name, self.hj, self.note, self.seq = name, hj, note, seq
        self.t0 = datetime.datetime(2026, 11, 30, 8, 0, 5, tzinfo=BEIJING)
        self.data = wire_time(self.t0) + struct.pack(">H", seq)
        self.blocks, self.vendor = [], []

    def block(self, kind, k=0):
        t = self.t0 + datetime.timedelta(seconds=k)
        if kind == "stream":
            raw = STREAM_A if k % 2 == 0 else STREAM_B
            code, body = 0x02, fields(STREAM_W, raw)
        elif kind == "supp":
            raw, code, body = SUPP_A, 0x80, fields(SUPP_W, SUPP_A)
        else:
            dtcs = [0x00123401, 0x00567802] if k else []
            body, raw = obd_body(dtcs)
            code = 0x01
        self.data += bytes([code]) + (wire_time(t) if self.hj else b"") + body
        e = {"type": code, "raw": list(raw)}
        if code == 0x01:
            e["dtcs"] = dtcs
        if self.hj:
            e["time"] = int(t.timestamp())
        self.blocks.append(e)
        return self

    def item(self, item):
        self.vendor.append({"offset": len(self.data), "len": len(item),
                            "after": len(self.blocks)})
        self.data += item
        return self

    def frame(self):
        d = self.data
        if self.hj:
            d += bytes([32]) + bytes(range(1, 33)) + bytes([32]) + bytes(range(101, 133))
        body = bytes([0x02]) + VIN + bytes([1, 1]) + struct.pack(">H", len(d)) + d
        bcc = 0
        for x in body:
            bcc ^= x
        return b"##" + body + bytes([bcc])

    def line(self):
        return {"name": self.name, "note": self.note, "hex": self.frame().hex().upper(),
                "expect": {"layout": "hj1239" if self.hj else "gb17691", "seq": self.seq,
                           "blocks": self.blocks, "vendor": self.vendor}}


def frames():
    out = []
    for hj in (False, True):
        tag = "hj" if hj else "gb"
        decoy = DECOY_HJ if hj else DECOY_GB
        out.append(Frame("field_" + tag, hj, "OBD, two text items, stream, the same two again")
                   .block("obd").item(ITEM1).item(ITEM2).block("stream").item(ITEM1).item(ITEM2))
        out.append(Frame("before_" + tag, hj, "text items before the first block")
                   .item(ITEM1).item(ITEM2).block("stream").block("stream", 1))
        out.append(Frame("between_" + tag, hj, "a text item between two samples")
                   .block("stream").item(ITEM2).block("stream", 1).block("supp", 1))
        out.append(Frame("after_" + tag, hj, "text items after the last block")
                   .block("stream").block("supp").item(ITEM1).item(ITEM2))
        out.append(Frame("everywhere_" + tag, hj, "before, between and after, OBD with DTCs")
                   .item(ITEM2).block("obd", 1).item(ITEM1).block("stream").block("stream", 1)
                   .item(ITEM2).block("supp", 1).item(ITEM1))
        out.append(Frame("decoy_" + tag, hj, "a block type and a possible time inside the text")
                   .block("obd").item(decoy).item(ITEM2).block("stream").item(decoy))
        out.append(Frame("decoy_mix_" + tag, hj, "several block types inside the text")
                   .item(DECOY_MIX).block("stream").item(DECOY_MIX).item(decoy))
        out.append(Frame("only_items_" + tag, hj, "no standard block: nothing invented")
                   .item(decoy).item(DECOY_MIX))
        out.append(Frame("mixed_" + tag, hj, "the field frame, then a vendor block at the end")
                   .block("obd").item(ITEM1).item(ITEM2).block("stream").item(ITEM1).item(ITEM2)
                   .item(VENDOR_BLOCK))
        out.append(Frame("mixed_first_" + tag, hj, "a vendor block first, text items around")
                   .item(VENDOR_BLOCK).item(ITEM1).block("stream").item(ITEM2).block("stream", 1))
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = sys.argv[2] if len(sys.argv) == 3 and sys.argv[1] == "--corpus" else None
    with open(os.path.join(here, "vectors.jsonl"), "w") as out:
        for f in frames():
            out.write(json.dumps(f.line()) + "\n")
            if corpus:
                with open(os.path.join(corpus, "vtext_%s.bin" % f.name), "wb") as b:
                    b.write(f.frame())


if __name__ == "__main__":
    main()
