# The shell tests' own pool record writer (bats files, tests/shell/*.sh, benches): printf
# and /dev/zero, independent of the engine. Its twins: tests/common/pool_codec.hpp (C++)
# and tests/common/kvp_pool.py (Python).

KVP_KEY_FIELD=512
KVP_VALUE_FIELD=2048
KVP_RECORD=$((KVP_KEY_FIELD + KVP_VALUE_FIELD))

# kvp_record KEY VALUE: one 2560-byte record on stdout: KEY, NUL-padded to 512 bytes, VALUE,
# NUL-padded to 2048 bytes (printf's %s stops at nothing: keys and values here hold no NUL).
# A string that fills its field is left unterminated; a longer one is refused. LC_ALL=C:
# ${#x} counts bytes, also for UTF-8 keys.
kvp_record() {
    local LC_ALL=C key=$1 value=$2
    if ((${#key} > KVP_KEY_FIELD || ${#value} > KVP_VALUE_FIELD)); then
        echo "kvp_record: a key over $KVP_KEY_FIELD or a value over $KVP_VALUE_FIELD bytes" >&2
        return 1
    fi
    printf '%s' "$key"
    head -c $((KVP_KEY_FIELD - ${#key})) /dev/zero
    printf '%s' "$value"
    head -c $((KVP_VALUE_FIELD - ${#value})) /dev/zero
}
