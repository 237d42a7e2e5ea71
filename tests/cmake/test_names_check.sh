#!/bin/sh
# Fails, naming them, when test case names of $1 (a Catch2 binary) contain ';':
# catch_discover_tests cuts such a name into two ctest entries that match nothing.
set -u
bad=$("$1" --list-test-names-only | grep -F ';')
if [ -n "$bad" ]; then
    printf 'test names with a semicolon (rename them):\n%s\n' "$bad" >&2
    exit 1
fi
"$1" --list-test-names-only | grep -q . || { echo "no test names listed" >&2; exit 1; }
