"""The Python tests' own pool codec (host tests, benches, inline scripts of the shell tests),
independent of the engine. Its twins: tests/common/pool_codec.hpp (C++) and
tests/common/pool_record.bash (shell).

A pool file is an array of RECORD-byte records: a KEY_FIELD-byte key field and a
VALUE_FIELD-byte value field, each holding a string up to its first NUL (or the whole field).
"""

KEY_FIELD, VALUE_FIELD = 512, 2048
RECORD = KEY_FIELD + VALUE_FIELD


def field(raw):
    """The string in a field: up to its first NUL, or the whole field."""
    end = raw.find(b"\0")
    return raw if end < 0 else raw[:end]


def encode_field(text, size):
    """A zero-filled field of `size` bytes; `text` must leave room for its NUL."""
    if len(text) >= size:
        raise ValueError("a string too long for its field in the tests' pool codec")
    return text.ljust(size, b"\0")


def record(key, value):
    """One zero-filled record (bytes in, bytes out)."""
    return encode_field(key, KEY_FIELD) + encode_field(value, VALUE_FIELD)


def decode(data):
    """Every whole record of `data` as (key, value), in file order (a partial tail is ignored)."""
    return [(field(data[off:off + KEY_FIELD]), field(data[off + KEY_FIELD:off + RECORD]))
            for off in range(0, len(data) - len(data) % RECORD, RECORD)]
