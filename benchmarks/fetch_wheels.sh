#!/usr/bin/env bash
# Download, for Python 3.12 on x86-64 Linux, the wheels of every dependency of repro that a
# bare GPU image may lack (pydantic and what it needs), into DIR (default .whl). Run it on a
# machine with access to a package index; benchmarks/gpu_box.sh installs them offline.
set -euo pipefail
dir="${1:-.whl}"
mkdir -p "$dir"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
# With --only-binary and a target platform pip resolves the dependencies for that target.
python3 -m pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$dir" "pydantic>=2.6"
ls -1 "$dir"
