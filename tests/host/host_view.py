#!/usr/bin/env python3
"""What the Hyper-V host should see, computed from the guest's side, for the host tests.

  host_view.py pool POOL_FILE HOST_JSON [EXPECTED_JSON]
      The host's enumeration (kvp-host --json list) must equal the pool file's records as
      the KVP driver delivers them (UTF-8 to UTF-16, cut at 254/1022 units), in file order.
      With EXPECTED_JSON ({key: value}) the file must also hold exactly those items, and
      nothing of them may have been cut on the way to the host.
  host_view.py auto MOUNT HOST_JSON
      auto/ through the mount must list the same names as the host's enumeration of
      pool 2, each file holding the host's value (and the text-mode newline).
"""
import json
import os
import sys

# The tests' own pool codec (tests/common/kvp_pool.py), not the engine's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import kvp_pool  # noqa: E402


def driver_units(data, max_units):
    """The driver's utf8s_to_utf16s: None for invalid UTF-8 before the cut."""
    units = []
    text = data.decode("utf-8", errors="strict")
    for ch in text:
        cp = ord(ch)
        need = 2 if cp >= 0x10000 else 1
        if len(units) + need > max_units:
            break
        units.append(ch)
    return "".join(units)


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    return kvp_pool.decode(data)


def units(text):
    return len(text.encode("utf-16-le")) // 2


def fail(message):
    print("host_view: " + message, file=sys.stderr)
    sys.exit(1)


def check_pool(pool_file, host_json, expected_json=None):
    host = json.load(open(host_json))
    if not host["complete"]:
        fail("the host's enumeration did not complete: %s %s" % (host["end"], host["note"]))
    want = []
    for key, value in records(pool_file):
        try:
            want.append((driver_units(key, 254), driver_units(value, 1022)))
        except UnicodeDecodeError:
            want.append(None)  # the driver answers HV_E_FAIL: the host's walk stops here
            break
    got = [(i["key"], i["value"]) for i in host["items"]]
    if want != got:
        fail("host enumeration differs from the pool file:\n  file: %r\n  host: %r" % (want, got))
    for i in host["items"]:
        if i["key_units"] != units(i["key"]) or i["value_units"] != units(i["value"]):
            fail("unit counts do not match the strings: %r" % i)
    if expected_json is not None:
        expected = json.load(open(expected_json))
        got_map = dict(got)
        if len(got_map) != len(got):
            fail("duplicate keys in the host's view: %r" % got)
        if got_map != expected:
            missing = sorted(set(expected) - set(got_map))
            extra = sorted(set(got_map) - set(expected))
            wrong = sorted(k for k in expected if k in got_map and got_map[k] != expected[k])
            fail("host view != what the guest wrote: missing %r, extra %r, different %r" %
                 (missing, extra, [(k, expected[k][:40], got_map[k][:40]) for k in wrong]))


def check_auto(mount, host_json):
    host = json.load(open(host_json))
    if not host["complete"]:
        fail("the host's enumeration of auto did not complete: %s" % host["note"])
    names = sorted(os.listdir(os.path.join(mount, "auto")))
    host_names = sorted(i["key"] for i in host["items"])
    if names != host_names:
        fail("auto/ lists %r, the host enumerates %r" % (names, host_names))
    for item in host["items"]:
        with open(os.path.join(mount, "auto", item["key"]), "rb") as f:
            shown = f.read()
        if shown != item["value"].encode() + b"\n":
            fail("auto/%s holds %r, the host received %r" % (item["key"], shown, item["value"]))


if __name__ == "__main__":
    if sys.argv[1] == "pool":
        check_pool(*sys.argv[2:])
    elif sys.argv[1] == "auto":
        check_auto(*sys.argv[2:])
    else:
        fail("unknown check " + sys.argv[1])
