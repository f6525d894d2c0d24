#!/usr/bin/env bash
# The runbook of one GPU slot on a bare, offline machine (see README, "Short GPU slots").
# Copy the repository there with, beside it in ignored folders:
#   .whl/   wheels of what the image may lack (benchmarks/fetch_wheels.sh makes them)
#   .data/  cifar10-jpeg-q75.tar.xz and make_cifar10_batches.py (from ../shared/data/), or a
#           cifar-10-batches-py/
# and, when earlier slots left some, their archives in results/slots/ (imported first).
#
#   benchmarks/gpu_box.sh OUT_DIR [gpu_box.py options, e.g. --budget 540]
#
# This part only prepares Python and the data; the stages (check, bench, training, export)
# and their timeouts are in benchmarks/gpu_box.py, which writes its archives to OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: benchmarks/gpu_box.sh OUT_DIR [gpu_box.py options]}"
shift
mkdir -p "$out"
start=$(date +%s)
python=${PYTHON:-python3}
# box.log is what comes back of the console: this part's lines and its commands' output go
# there too (gpu_box.py appends its own), and so does whatever gpu_box.py writes to stderr.
log="$out/box.log"
say() { echo "gpu_box: $*" | tee -a "$log"; }
fail() { echo "gpu_box: $2" | tee -a "$log" >&2; exit "$1"; }

# Dependencies: install carried wheels only for what the image lacks, outside the image.
site=/tmp/repro-site
if ! "$python" -c "import pydantic, yaml, click, jinja2, pandas, matplotlib, tqdm" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$site" .whl/*.whl 2>&1 | tee -a "$log" || fail 3 "installing .whl/ failed"
  else
    fail 3 "a dependency is missing and there is no .whl/ (benchmarks/fetch_wheels.sh)"
  fi
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# Data: a copy in the official layout, else the offline JPEG copy converted once.
data="${REPRO_DATA_DIR:-}"
if [ -z "$data" ]; then
  if [ -d .data/cifar-10-batches-py ]; then
    data=.data
  elif [ -f .data/cifar10-jpeg-q75.tar.xz ]; then
    data=/tmp/repro-cifar
    [ -f $data/cifar-10-batches-py/batches.meta ] || "$python" .data/make_cifar10_batches.py $data \
      --archive .data/cifar10-jpeg-q75.tar.xz 2>&1 | tee -a "$log" || fail 4 "data conversion failed"
  else
    fail 4 "no CIFAR-10 in .data/ and REPRO_DATA_DIR unset"
  fi
fi
say "set-up took $(( $(date +%s) - start )) s; data in $data"

# Archives of earlier slots (committed), and the compile cache's parts where a session
# carries them between its calls in an ignored folder (they are too large to commit).
imports=()
for a in results/slots/*.tar.gz .compile-carry/compile-cache.tar.gz.part-*; do
  [ -f "$a" ] && imports+=("$a")
done
exec "$python" benchmarks/gpu_box.py --out "$out" --data-dir "$data" --started "$start" \
  ${imports[@]+--import "${imports[@]}"} "$@" 2> >(tee -a "$log" >&2)
