#!/usr/bin/env python3
"""How long the host's view and the guest's take to meet, through the real hv_kvp_daemon.

  tests/bench/host_bench.py [--count N] [--modes default,cache,cache=all]

For each mount mode it runs itself inside `scripts/kvp-sandbox --host` and measures, N
times each (printed, never asserted):
  host add -> external/   from the host's add request returning to the mount showing the
                          new value (the add's own round trip is printed too);
  guest write -> host     from write() through guest/ returning to the host's enumeration
                          of pool 1 holding the value (the enumeration's time included).
It speaks the control socket's protocol itself (no process per request), so the numbers
are the simulator's, the daemon's and kvpfs's, not fork+exec's. Needs root and
hv_kvp_daemon; builds nothing (uses build/ like kvp-sandbox).
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

MSG = 7432  # checked against the server's message_size below
OP_SET, OP_ENUMERATE = 1, 3


class Host:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")

    def call(self, request):
        self.file.write(json.dumps(request).encode() + b"\n")
        self.file.flush()
        return json.loads(self.file.readline())

    def transact(self, message):
        answer = self.call({"verb": "transact", "message": message.hex()})
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["status"], bytes.fromhex(answer["message"])

    def add(self, pool, key, value):
        m = bytearray(MSG)
        m[0], m[1] = OP_SET, pool
        k, v = key.encode("utf-16-le"), value.encode("utf-16-le")
        m[4:8] = (1).to_bytes(4, "little")  # REG_SZ
        m[8:12] = (len(k) + 2).to_bytes(4, "little")
        m[12:16] = (len(v) + 2).to_bytes(4, "little")
        m[16:16 + len(k)] = k
        m[528:528 + len(v)] = v
        status, _ = self.transact(bytes(m))
        assert status == 0, hex(status)

    def enumerate(self, pool):
        items, index = {}, 0
        while True:
            m = bytearray(MSG)
            m[0], m[1] = OP_ENUMERATE, pool
            m[4:8] = index.to_bytes(4, "little")
            status, reply = self.transact(bytes(m))
            if status != 0:
                return items
            key = reply[20:532].decode("utf-16-le").split("\0")[0]
            items[key] = reply[532:2580].decode("utf-16-le").split("\0")[0]
            index += 1


def percentiles(samples_ns):
    ms = sorted(s / 1e6 for s in samples_ns)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return "p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms" % (statistics.median(ms), p99, ms[-1])


def inside(count):
    host = Host(os.environ["KVP_HOST_SOCKET"])
    status = host.call({"verb": "status"})
    assert status["message_size"] == MSG, status
    mount = os.environ["KVP_MOUNT"]
    add_rtt, add_visible, guest_visible, enum_rtt = [], [], [], []
    reads, enumerations = [], []
    for i in range(count):
        value = "value %d" % i
        t0 = time.perf_counter_ns()
        host.add(0, "Bench", value)
        t1 = time.perf_counter_ns()
        reads.append(0)
        while True:
            reads[-1] += 1
            try:
                with open(os.path.join(mount, "external", "Bench"), "rb") as f:
                    if f.read() == value.encode() + b"\n":
                        break
            except FileNotFoundError:
                pass
        t2 = time.perf_counter_ns()
        add_rtt.append(t1 - t0)
        add_visible.append(t2 - t1)

        fd = os.open(os.path.join(mount, "guest", "Bench"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, value.encode())
        t4 = time.perf_counter_ns()
        os.close(fd)
        enumerations.append(0)
        while True:
            enumerations[-1] += 1
            t5 = time.perf_counter_ns()
            seen = host.enumerate(1).get("Bench")
            t6 = time.perf_counter_ns()
            if seen == value:
                break
        guest_visible.append(t6 - t4)
        enum_rtt.append(t6 - t5)
    mode = os.environ.get("KVPFS_TEST_MOUNT_OPTIONS") or "default"
    print("mode %-9s host add round trip           %s" % (mode, percentiles(add_rtt)))
    print("mode %-9s host add -> shown in external/ %s  (reads: max %d)" %
          (mode, percentiles(add_visible), max(reads)))
    print("mode %-9s guest write -> host enumerates %s  (enumerations: max %d)" %
          (mode, percentiles(guest_visible), max(enumerations)))
    print("mode %-9s (one enumeration of pool 1:    %s)" % (mode, percentiles(enum_rtt)))


def main():
    args = sys.argv[1:]
    count = 200
    modes = ["default", "cache", "cache=all"]
    if "--inside" in args:
        inside(int(os.environ.get("HOST_BENCH_COUNT", count)))
        return
    while args:
        if args[0] == "--count":
            count = int(args[1])
            args = args[2:]
        elif args[0] == "--modes":
            modes = args[1].split(",")
            args = args[2:]
        else:
            sys.exit("host_bench.py: unknown argument " + args[0])
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    print("host_bench: %d samples per mode; %s; load %s" %
          (count, os.uname().release, open("/proc/loadavg").read().split()[0]))
    for mode in modes:
        opts = [] if mode == "default" else ["-o", mode]
        env = dict(os.environ, HOST_BENCH_COUNT=str(count),
                   KVPFS_TEST_MOUNT_OPTIONS="" if mode == "default" else mode)
        subprocess.run([os.path.join(top, "scripts", "kvp-sandbox"), "--quiet", "--host"] + opts +
                       ["--", sys.executable, os.path.abspath(__file__), "--inside"],
                       env=env, check=True)


if __name__ == "__main__":
    main()
