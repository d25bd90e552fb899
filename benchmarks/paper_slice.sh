#!/usr/bin/env bash
# One time slice of the paper-scale report on a GPU lent for minutes per call (issue 16):
#
#   bash benchmarks/paper_slice.sh OUT [SECONDS]
#
# Resumes `python -m explodegrad reproduce --scale paper` from the finished parts committed in
# benchmarks/results/paper-parts/ (earlier slices, and parts computed on a CPU), runs it for at
# most SECONDS (default 480; SIGTERM keeps every finished part, SIGKILL 30 s later), then writes
# into OUT:
#   parts/               every finished part (commit them to benchmarks/results/paper-parts/)
#   parts-status.txt     `reproduce --list-parts`: what is stored, where, and what is left
#   reproduce.log        the run's progress lines (per-part seconds, for paper_time.py)
#   report/              the report, its JSON and figures, once every part is there
#   slice.tgz            all of the above in one file (a lent machine returns few files)
# The run itself works in WORK (default OUT/run, removed at the end), so a slice killed from
# outside still leaves its finished parts in WORK/parts/.
# Settings (environment): PYTHON (default python3), DEVICE (cuda), SCALE (paper), STEPS (the
# scale's), JOBS (auto), DATA_ROOT (default .shared-data when it exists, else none: the report
# then says the digits stood in), PARTS_FROM (benchmarks/results/paper-parts), PARTS (only these
# parts, comma-separated: `reproduce --parts`, e.g. those that fit in the slice). A CPU dry run:
#   DEVICE=cpu SCALE=tiny JOBS=1 bash benchmarks/paper_slice.sh /tmp/slice 120
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash benchmarks/paper_slice.sh OUT [SECONDS]}
seconds=${2:-480}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SCALE=${SCALE:-paper}
JOBS=${JOBS:-auto}
PARTS_FROM=${PARTS_FROM:-benchmarks/results/paper-parts}
if [ -z "${DATA_ROOT+set}" ] && [ -d .shared-data ]; then DATA_ROOT=.shared-data; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # a GPU machine's python has no install

work=${WORK:-$out/run}
mkdir -p "$out" "$work/parts/$SCALE"
if [ -d "$PARTS_FROM" ]; then  # a part already in WORK (an earlier slice here) is kept
  find "$PARTS_FROM" -maxdepth 1 \( -name '*.json' -o -name '*.pkl' \) -exec cp -n {} "$work/parts/$SCALE/" \;
fi
options=(--scale "$SCALE" --device "$DEVICE" --out "$work" --jobs "$JOBS")
[ -n "${DATA_ROOT:-}" ] && options+=(--data-root "$DATA_ROOT")
[ -n "${STEPS:-}" ] && options+=(--steps "$STEPS")
chosen=()
[ -n "${PARTS:-}" ] && chosen=(--parts "$PARTS")

echo "== $(date -u +%FT%TZ) reproduce ${options[*]} (at most $seconds s)" | tee "$out/reproduce.log"
timeout -s TERM -k 30 "$seconds" "$PYTHON" -u -m explodegrad reproduce "${options[@]}" "${chosen[@]}" 2>&1 | tee -a "$out/reproduce.log"
status=${PIPESTATUS[0]}
echo "== $(date -u +%FT%TZ) exit status $status (124: the slice ended; run it again to go on)" | tee -a "$out/reproduce.log"

"$PYTHON" -m explodegrad reproduce --list-parts "${options[@]}" > "$out/parts-status.txt" 2>&1
mkdir -p "$out/parts"
find "$work/parts/$SCALE" -maxdepth 1 \( -name '*.json' -o -name '*.pkl' \) -exec cp {} "$out/parts/" \;
if [ -f "$work/report-$SCALE-scale.md" ]; then
  mkdir -p "$out/report"
  cp -r "$work/report-$SCALE-scale.md" "$work/results-$SCALE-scale.json" "$work/figures-$SCALE" "$out/report/"
fi
tar -czf "$out/slice.tgz" -C "$out" parts parts-status.txt reproduce.log $([ -d "$out/report" ] && echo report)
cat "$out/parts-status.txt"
rm -rf "$work"
exit "$status"
