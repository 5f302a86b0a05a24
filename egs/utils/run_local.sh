#!/usr/bin/env bash
# Run a command as an array of jobs on this machine, in the manner of Kaldi's run.pl.
#
#   utils/run_local.sh [--max-jobs-run N] JOB=1:4 exp/log/feats.JOB.log CMD ARGS...
#   utils/run_local.sh exp/log/train.log CMD ARGS...            # a single job
#
# Every "JOB" in the log path and in the arguments is replaced by the job index.
# Each log starts with the command line and ends with its exit code and run time.
# Exits 0 only if every job succeeded; otherwise names the failed jobs' logs.
set -u
max_jobs=${SPEECHUNITS_MAX_JOBS:-0}   # 0: all at once
if [ "${1:-}" = "--max-jobs-run" ]; then max_jobs=$2; shift 2; fi
if [ $# -lt 2 ]; then
  echo "usage: $0 [--max-jobs-run N] [JOB=1:N] LOG CMD [ARGS...]" >&2; exit 1
fi
var=""; first=1; last=1
if [[ "$1" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}; shift
elif [[ "$1" =~ ^([A-Za-z_]+)=([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=$first; shift
fi
logpat=$1; shift

run_one() {
  local j=$1; shift
  local log=$logpat; local args=()
  if [ -n "$var" ]; then
    log=${log//$var/$j}
    for a in "$@"; do args+=("${a//$var/$j}"); done
  else
    args=("$@")
  fi
  mkdir -p "$(dirname "$log")"
  local start; start=$(date +%s)
  {
    printf '#'; printf ' %q' "${args[@]}"; echo
    echo "# Started at $(date)"
  } > "$log"
  ( "${args[@]}" ) >> "$log" 2>&1
  local rc=$?
  { echo "# Accounting: time=$(( $(date +%s) - start )) threads=${OMP_NUM_THREADS:-$(nproc)}"
    echo "# Ended (code $rc) at $(date)"; } >> "$log"
  return $rc
}

# Jobs running side by side share the cores: unless the caller chose, each gets its share of
# threads (torch, OpenMP and MKL read these at start-up), so N jobs do not start N x cores threads.
running=$(( last - first + 1 ))
if [ "$max_jobs" -gt 0 ] && [ "$max_jobs" -lt "$running" ]; then running=$max_jobs; fi
if [ "$running" -gt 1 ] && [ -z "${OMP_NUM_THREADS:-}" ]; then
  share=$(( $(nproc) / running )); [ "$share" -ge 1 ] || share=1
  export OMP_NUM_THREADS=$share MKL_NUM_THREADS=$share
fi

pids=(); jobs_of=(); failed=()
for ((j = first; j <= last; j++)); do
  if [ "$max_jobs" -gt 0 ]; then
    while [ "$(jobs -rp | wc -l)" -ge "$max_jobs" ]; do sleep 0.2; done
  fi
  run_one "$j" "$@" &
  pids+=($!); jobs_of+=("$j")
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${jobs_of[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
  for j in "${failed[@]}"; do
    log=$logpat; [ -n "$var" ] && log=${log//$var/$j}
    echo "$0: job $j failed; see $log" >&2
  done
  echo "$0: ${#failed[@]} of $((last - first + 1)) jobs failed" >&2
  exit 1
fi
exit 0
