#!/usr/bin/env bash
# log MESSAGE...: a timestamped line on stderr naming the script, as Kaldi recipes do.
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}
