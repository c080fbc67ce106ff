#!/usr/bin/env python3
"""abuse.py - sustained abuse of a running vemd, with its RSS and CPU sampled from /proc.

For the figures of issue #13 (README, Hostile input), next to a vem-sim fleet: see measure.sh.

  abuse.py --pid PID --port PORT --mode pattern|garbage|unread|connect [--seconds S]

  pattern  8 threads, each from an address of its own, connect and send `23 23 08 FD`
           repeated (64 KiB per connection) until vemd closes the connection, over and over
  garbage  8 threads: valid logins with 8 bytes of garbage after each, until closed, again
  unread   200 connections with 4 KiB receive buffers send logins and never read a reply
  connect  one address opens connections as fast as it can, closing each at once

Prints one line: the mode, what was sent, vemd's RSS before and at its peak (VmRSS) and its
CPU (utime + stime of /proc/PID/stat) over the run. Standard library only.
"""
import argparse
import os
import socket
import threading
import time

LOGIN_HEX = ("2323014C5A5A5445535456494E303030303030310101001C18030508090A0001"
             "38393836303030303030303030303030303030313D")  # vectors/hj1239 "login"


def login_now(vin=b"LHSTAB00000000001"):
    """The login vector with VIN vin and a time of now (Beijing), BCC recomputed."""
    f = bytearray(bytes.fromhex(LOGIN_HEX))
    f[3:20] = vin
    t = time.gmtime(time.time() + 8 * 3600)
    f[24:30] = bytes([t.tm_year - 2000, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec])
    bcc = 0
    for b in f[2:-1]:
        bcc ^= b
    f[-1] = bcc
    return bytes(f)


def usage(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as s:
        for line in s:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as s:
        fields = s.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def connect(src, port, rcvbuf=0):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def until_closed(s, data, deadline):
    """Sends data over and over (reading replies away) until vemd closes s; bytes sent."""
    sent = 0
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            sent += s.send(data)
            s.setblocking(False)
            try:
                if s.recv(65536) == b"":
                    break
            except BlockingIOError:
                pass
            s.settimeout(0.5)
        except (BrokenPipeError, ConnectionResetError):
            break
        except socket.timeout:
            pass
    s.close()
    return sent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", required=True, choices=["pattern", "garbage", "unread", "connect"])
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    stop = time.monotonic() + a.seconds
    counts = {"connections": 0, "bytes": 0, "refused": 0}
    lock = threading.Lock()

    def add(k, n):
        with lock:
            counts[k] += n

    def pattern(i):
        data = bytes([0x23, 0x23, 0x08, 0xFD]) * 16384
        while time.monotonic() < stop:
            try:
                s = connect(f"127.0.1.{i + 1}", a.port)
            except OSError:
                add("refused", 1)
                continue
            add("bytes", until_closed(s, data, stop))
            add("connections", 1)

    def garbage(i):
        data = (login_now() + bytes(range(1, 9))) * 64
        while time.monotonic() < stop:
            try:
                s = connect(f"127.0.2.{i + 1}", a.port)
            except OSError:
                add("refused", 1)
                continue
            add("bytes", until_closed(s, data, stop))
            add("connections", 1)

    def unread(i):
        socks = []
        for k in range(25):
            try:
                socks.append(connect(f"127.0.3.{i + 1}", a.port, rcvbuf=4096))
            except OSError:
                add("refused", 1)
        add("connections", len(socks))
        data = login_now() * 512
        for s in socks:
            s.setblocking(False)
        while time.monotonic() < stop and socks:
            for s in list(socks):
                try:
                    add("bytes", s.send(data))
                except BlockingIOError:
                    pass
                except OSError:
                    socks.remove(s)  # vemd (or its kernel) dropped it
                    s.close()
            time.sleep(0.01)
        for s in socks:
            s.close()

    def connect_flood(i):
        while time.monotonic() < stop:
            try:
                s = connect("127.0.4.1", a.port)
                s.close()
                add("connections", 1)
            except OSError:
                add("refused", 1)

    body = {"pattern": pattern, "garbage": garbage, "unread": unread,
            "connect": connect_flood}[a.mode]
    rss0, cpu0 = usage(a.pid)
    peak = rss0
    t0 = time.monotonic()
    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, usage(a.pid)[0])
        time.sleep(0.2)
    rss, cpu = usage(a.pid)
    peak = max(peak, rss)
    s = time.monotonic() - t0
    # bytes sent: into the kernel; what vemd read is its vem_bytes_received_total
    print(f"abuse {a.mode}: {counts['connections']} connections ({counts['connections'] / s:.0f}/s), "
          f"{counts['bytes']} bytes written to sockets, "
          f"{counts['refused']} connects failed, in {s:.1f} s; vemd RSS {rss0 / 1024:.1f} MiB "
          f"before, peak {peak / 1024:.1f} MiB; CPU {cpu - cpu0:.2f} s "
          f"({100 * (cpu - cpu0) / s:.0f} % of one core)")


if __name__ == "__main__":
    main()
