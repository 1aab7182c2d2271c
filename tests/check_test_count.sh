#!/bin/sh
# Fails when a GoogleTest binary discovers zero tests (docs/conventions.md: a test
# binary that finds nothing is a broken build, not a pass).
set -eu
binary="$1"
count=$("$binary" --gtest_list_tests | grep -c '^  ' || true)
echo "$binary: $count tests"
[ "$count" -gt 0 ]
