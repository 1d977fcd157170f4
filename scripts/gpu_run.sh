#!/usr/bin/env bash
# The one prepared GPU run: the paper's central claim on real Human3.6M, on a GPU.
#
#   scripts/gpu_run.sh DATA OUT [PROFILE] [BUDGET_S] [COMMIT]
#
# DATA     a Human3.6M copy (on the GPU machine: carried beside the tree), or a file made by
#          `scripts/device_data.py stage|pack` (*.xz: the pack in its smallest lossless form,
#          with committed weights to continue from); it is unpacked into $WORK/carried, its
#          weights/ join the checkout's weights/ (missing files only), DATA becomes its h36m/
# OUT      where the bundle goes (on the GPU machine: $OUT, which comes back)
# PROFILE  full (default, a GPU) or tiny (the CPU rehearsal that tests/test_gpu_run.py runs)
# BUDGET_S wall-clock budget of the whole run in seconds (default 540: one device command
#          runs at most 600 s); training is sized from the measured throughput to fit it
# COMMIT   the git commit of the code (the device copy has no .git)
# env      GEO_STAGES (default: all, in order), GEO_NO_WEIGHTS=1, GEO_WORK, PYTHON,
#          GEO_3DHP (an MPI-INF-3DHP test set on the machine, for Table 2),
#          GEO_WEIGHTS (the weights folder geo reads; default the checkout's weights/)
#
# It runs `python -m geo full-gpu` (stages: bench, generators, fig5, fig6, regressors, tables; each
# writes its JSON as soon as it is done, and a finished stage is skipped when the script
# is run again on the same machine), then bundles what comes back within the device
# tool's limits (8 files of <= 16 MiB, 64 MiB together): one file per weight file, one
# tar of every JSON result, and the log. No papermill on the device: the notebooks draw
# these results on CPU afterwards (`python -m geo reproduce --precomputed ...`).
set -uo pipefail
DATA=${1:?usage: scripts/gpu_run.sh DATA OUT [PROFILE] [BUDGET_S] [COMMIT]}
OUT=${2:?usage: scripts/gpu_run.sh DATA OUT [PROFILE] [BUDGET_S] [COMMIT]}
PROFILE=${3:-full}
BUDGET=${4:-540}
COMMIT=${5:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${GEO_WORK:-$HERE/runs/gpu_run-$PROFILE}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" GEO_COMMIT="$COMMIT"
export GEO_RUNS="$WORK/runs"
if [ -f "$DATA" ] && [ "${DATA%.xz}" != "$DATA" ]; then
  # carried/ is reused only for the very file it was unpacked from (its sha256 beside it)
  SUM=$(sha256sum "$DATA" | cut -d' ' -f1)
  if [ -d "$WORK/carried" ] && [ "$(cat "$WORK/carried.sha256" 2>/dev/null)" != "$SUM" ]; then
    echo "$WORK/carried was unpacked from another file; unpacking $DATA again" | tee -a "$WORK/log.txt"
    rm -rf "$WORK/carried" "$WORK/carried.sha256"
  fi
  [ -d "$WORK/carried" ] || { "$PY" "$HERE/scripts/device_data.py" unpack "$DATA" "$WORK/carried" 2>&1 | tee -a "$WORK/log.txt"
                              [ -d "$WORK/carried" ] && echo "$SUM" > "$WORK/carried.sha256"; }
  [ -d "$WORK/carried" ] || { echo "could not unpack $DATA" | tee -a "$WORK/log.txt"; exit 2; }
  if [ -d "$WORK/carried/weights" ]; then
    WDIR=${GEO_WEIGHTS:-$HERE/weights}
    mkdir -p "$WDIR"
    cp -n "$WORK/carried/weights/"* "$WDIR/" 2>/dev/null
    echo "weights carried: $(ls "$WORK/carried/weights" | tr '\n' ' ')" | tee -a "$WORK/log.txt"
  fi
  if [ -d "$WORK/carried/h36m" ]; then DATA="$WORK/carried/h36m"; else DATA="$WORK/carried"; fi
fi
( command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" ) 2>&1 | tee -a "$WORK/log.txt"
# The budget is enforced here too (timeout), so that the bundle below is always made: a
# stage cut off is simply missing, and running the script again on the same machine
# continues from the finished stages.
timeout --kill-after=5 "$BUDGET" "$PY" -m geo full-gpu --data "$DATA" --out "$WORK" --profile "$PROFILE" \
  --budget-s "$BUDGET" --commit "$COMMIT" ${GEO_STAGES:+--stages "$GEO_STAGES"} 2>&1 | tee -a "$WORK/log.txt"
rc=${PIPESTATUS[0]}
# Bundle: weights one file each (each <= 16 MiB by construction; GEO_NO_WEIGHTS=1 leaves
# them out, e.g. on a second command whose first already brought them back), results in
# one tar.
[ "${GEO_NO_WEIGHTS:-0}" = 1 ] || cp "$WORK"/weights/*.pt "$OUT"/ 2>/dev/null
# never the carried data (licensed) nor half-made folders and temp files
(cd "$WORK" && tar -cf "$OUT/results.tar" --exclude=runs --exclude='*.pt' --exclude=log.txt --exclude=./carried \
   --exclude=carried.sha256 --exclude='*.partial-*' --exclude='.*.tmp' .)
cp "$WORK/log.txt" "$OUT/log.txt"
ls -la "$OUT"
exit "$rc"
