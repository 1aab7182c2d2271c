#!/bin/sh
# clang-tidy over the host C++ files a change touched (docs/conventions.md,
# "Tooling"). Usage: scripts/tidy.sh BUILD_DIR [BASE]; BASE defaults to the
# first parent of HEAD, so CI checks what the newest commit changed. Every
# warning of the checks in .clang-tidy is an error here.
#
# Debian 12's clang 14 cannot parse libstdc++ 12's <expected>, so this uses
# clang-tidy-16, with C++23 spelt the way clang 16 knows it (c++2b) and
# __cpp_concepts raised to the value libstdc++ checks for <expected>.
set -eu
build=${1:?usage: scripts/tidy.sh BUILD_DIR [BASE]}
base=${2:-HEAD~1}
tidy=${CLANG_TIDY:-clang-tidy-16}
cd "$(dirname "$0")/.."
if ! git rev-parse --verify -q "$base" >/dev/null; then
  echo "tidy: no commit $base to compare with; nothing to check"
  exit 0
fi
files=$(git diff --name-only --diff-filter=AM "$base" HEAD -- \
          'base/*.cc' 'vmm/*.cc' 'devices/*.cc' 'firmware/*.cc' 'tools/*.cc' | sort -u)
if [ -z "$files" ]; then
  echo "tidy: no host .cc file changed since $base"
  exit 0
fi
status=0
for f in $files; do
  [ -f "$f" ] || continue
  echo "tidy: $f"
  "$tidy" -p "$build" --quiet --warnings-as-errors='*' \
    --extra-arg=-std=c++2b --extra-arg=-U__cpp_concepts \
    --extra-arg=-D__cpp_concepts=202002L "$f" 2>/dev/null || status=1
done
exit $status
