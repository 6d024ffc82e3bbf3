"""Testing a KVP script with pytest and kvp-sandbox (docs/kvpctl.md, "The sandbox").

Run it inside a sandbox, which mounts kvpfs over a throw-away tmpfs pool and puts kvpctl on
PATH:

    kvp-sandbox --sample -- python3 -m pytest -q docs/examples/test_kvp_pytest.py

The script under test here is a shell one-liner that a provisioning agent might run: it reads
the VM's name from parameter/ and publishes a status in guest/. The tests check what the host
would receive, in the pool file itself, with kvpctl.
"""

import os
import pathlib
import subprocess

import pytest

PROVISION = 'echo "Ready on $(cat "$KVP_MOUNT/parameter/VirtualMachineName")" > "$KVP_MOUNT/guest/Status"'


@pytest.fixture
def kvp():
    """The sandbox's mount; every test starts with an empty guest pool."""
    if "KVP_MOUNT" not in os.environ:
        pytest.skip("run me inside kvp-sandbox (see the module's docstring)")
    mount = pathlib.Path(os.environ["KVP_MOUNT"])
    for key in (mount / "guest").iterdir():
        key.unlink()
    return mount


def pool_value(pool, key):
    """The value the host receives: read from the pool file, not through the mount."""
    done = subprocess.run(["kvpctl", "--pool-dir", os.environ["KVP_POOL_DIR"], "get", pool, key],
                          capture_output=True, text=True, check=False)
    return done.stdout.rstrip("\n") if done.returncode == 0 else None


def test_provisioning_publishes_ready(kvp):
    subprocess.run(["sh", "-c", PROVISION], check=True)
    assert pool_value("guest", "Status") == "Ready on kvpfs-demo-vm"
    assert (kvp / "guest" / "Status").read_text() == "Ready on kvpfs-demo-vm\n"


def test_host_values_are_read_only(kvp):
    with pytest.raises(PermissionError):
        (kvp / "parameter" / "VirtualMachineName").write_text("other")
    assert pool_value("parameter", "VirtualMachineName") == "kvpfs-demo-vm"


def test_a_refused_value_leaves_the_pool_as_it_was(kvp):
    (kvp / "guest" / "Status").write_text("old\n")
    with pytest.raises(OSError):  # EFBIG: over the host's 1022 UTF-16 units
        (kvp / "guest" / "Status").write_text("x" * 3000)
    assert pool_value("guest", "Status") == "old"
