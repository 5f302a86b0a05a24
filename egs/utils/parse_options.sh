#!/usr/bin/env bash
# Kaldi-style option parsing for recipe scripts. Source it after setting defaults:
#
#   stage=0          # first stage to run
#   stop_stage=100   # last stage to run
#   nj=2             # number of parallel jobs
#   . utils/parse_options.sh
#
# `--foo-bar VALUE` or `--foo-bar=VALUE` sets the variable foo_bar, which must already
# exist (an unknown option is an error). Parsing stops at the first non-option
# argument; the rest stay in "$@". `--help` prints the option lines of the calling
# script (`name=default  # comment`, written before this file is sourced), with the
# values in force, and `$help_message` if the script sets one.

__su_print_help() {
  [ -n "${help_message:-}" ] && printf '%s\n\n' "$help_message"
  echo "Options (default in the script, value in force after the command line):"
  local line name comment
  while IFS= read -r line; do
    case "$line" in *parse_options.sh*) break ;; esac
    if [[ "$line" =~ ^([a-z_][a-z0-9_]*)=[^#]*#[[:space:]]*(.*)$ ]]; then
      name=${BASH_REMATCH[1]}
      comment=${BASH_REMATCH[2]}
      printf '  --%-22s %-28s %s\n' "${name//_/-}" "$(printf '%q' "${!name}")" "$comment"
    fi
  done < "$__su_script"
}

# the calling script, also after it has changed directory into its own folder
__su_script=$0
[ -r "$__su_script" ] || __su_script=${0##*/}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) __su_print_help; exit 0 ;;
    --*=*) __su_name=${1%%=*}; __su_value=${1#*=}; shift ;;
    --*)
      __su_name=$1
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      __su_value=$2; shift 2 ;;
    *) break ;;
  esac
  __su_var=${__su_name#--}
  __su_var=${__su_var//-/_}
  if [[ ! "$__su_var" =~ ^[a-z_][a-z0-9_]*$ ]] || ! declare -p "$__su_var" >/dev/null 2>&1; then
    echo "$0: unknown option $__su_name (see --help)" >&2
    exit 1
  fi
  printf -v "$__su_var" '%s' "$__su_value"
done
unset __su_name __su_value __su_var
true
