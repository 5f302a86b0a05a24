# Puts the speechunits CLI on PATH: the repository's .venv (made by tools/setup.sh),
# unless one is already active.
__su_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$__su_root/.venv/bin/speechunits" ]; then
  export PATH="$__su_root/.venv/bin:$PATH"
fi
export PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
unset __su_root
