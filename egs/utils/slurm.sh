#!/usr/bin/env bash
# Run a command as a Slurm job array, with the interface of utils/run_local.sh:
#
#   utils/slurm.sh [--sbatch-opts "--partition=cpu --mem=4G"] JOB=1:4 exp/log/x.JOB.log CMD ARGS...
#
# Submits one array (sbatch --array=first-last --wait); each task runs
# utils/run_local.sh for its own index, so logs look the same as local runs.
# Blocks until all tasks end; exits 0 only if every task succeeded.
# Extra sbatch options also come from $SPEECHUNITS_SBATCH_OPTS.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
opts=${SPEECHUNITS_SBATCH_OPTS:-}
if [ "${1:-}" = "--sbatch-opts" ]; then opts="$opts $2"; shift 2; fi
if [ $# -lt 2 ]; then
  echo "usage: $0 [--sbatch-opts OPTS] [JOB=1:N] LOG CMD [ARGS...]" >&2; exit 1
fi
var=JOB; first=1; last=1; range=""
if [[ "$1" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}; range=$1; shift
elif [[ "$1" =~ ^([A-Za-z_]+)=([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=$first; range=$1; shift
fi
logpat=$1; shift
logdir=$(dirname "${logpat//$var/1}")
mkdir -p "$logdir/q"
script=$logdir/q/$(basename "${logpat//$var/array}" .log).sh
{
  echo "#!/usr/bin/env bash"
  printf 'cd %q\n' "$PWD"
  printf 'exec %q %s=${SLURM_ARRAY_TASK_ID} %q' "$here/run_local.sh" "$var" "$logpat"
  printf ' %q' "$@"; echo
} > "$script"
chmod +x "$script"
# shellcheck disable=SC2086
sbatch --parsable --wait --array="$first-$last" --output="$logdir/q/slurm-%A_%a.out" $opts "$script" >/dev/null
rc=$?
failed=0
for ((j = first; j <= last; j++)); do
  log=${logpat//$var/$j}
  if ! grep -q '^# Ended (code 0)' "$log" 2>/dev/null; then
    echo "$0: job $j failed; see $log" >&2; failed=$((failed + 1))
  fi
done
if [ $failed -gt 0 ] || [ $rc -ne 0 ]; then
  echo "$0: $failed of $((last - first + 1)) jobs failed (sbatch exit $rc)" >&2; exit 1
fi
exit 0
