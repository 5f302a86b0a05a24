#!/usr/bin/env bash
# Stage helpers shared by the recipes (source it after cmd.sh and utils/log.sh):
#
#   conf_args FILE                 the key=value lines of a settings file (comments dropped)
#   train_finished EXP             true when EXP's training ran to its end
#   features_complete DATA FEATS   true when FEATS holds an array for every utterance of DATA
#   compute_features DATA FEATS TYPE CMVN NJ LOGNAME [key=value...]
#                                  `speechunits features` as NJ jobs of whole speakers, via $cmd
#   abx_suite NAME ITEM_DIR FEATS OUT_DIR [abx options...]
#                                  the four ABX conditions (triphone items within context,
#                                  phone items any context; within and across speakers)
#
# Each helper checks the mark of finished work that the command itself leaves, so a
# rerun skips what is done and redoes what is not (partial outputs never look done).

# conf_args FILE: print FILE's overrides, one per line, without comments and blanks.
conf_args() {
  [ -n "${1:-}" ] || return 0
  if [ ! -f "$1" ]; then echo "conf_args: no such settings file: $1" >&2; return 1; fi
  sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$1" | grep -v '^$' || true
}

# train_finished EXP: `speechunits train` appends a "final" record to metrics.jsonl when
# it reaches train.max_steps; an interrupted run (last.pt without it) resumes instead.
train_finished() {
  [ -f "$1/metrics.jsonl" ] && tail -n 1 "$1/metrics.jsonl" | grep -q '"split": "final"'
}

# features_complete DATA FEATS: every utterance of DATA/wav.scp (or segments) has FEATS/<utt>.npy.
features_complete() {
  local data=$1 feats=$2 list=$1/wav.scp utt
  [ -f "$data/segments" ] && list=$data/segments
  [ -f "$feats/meta.json" ] || return 1
  while read -r utt _; do
    [ -f "$feats/$utt.npy" ] || return 1
  done < "$list"
}

# compute_features DATA FEATS TYPE CMVN NJ LOGNAME [key=value...]: jobs hold whole
# speakers, so per-speaker CMVN statistics stay within a job; logs $exp/log/LOGNAME.JOB.log.
compute_features() {
  local data=$1 feats=$2 type=$3 cmvn=$4 nj=$5 logname=$6
  shift 6
  if features_complete "$data" "$feats"; then
    log "$type features of $data are complete in $feats, skipping"
    return 0
  fi
  local nspk n
  nspk=$(wc -l < "$data/spk2utt")
  n=$(( nj < nspk ? nj : nspk ))
  log "$type features of $data -> $feats ($n jobs)"
  $cmd JOB=1:$n "$exp/log/$logname.JOB.log" \
    speechunits features "$data" "$feats" --type "$type" --cmvn "$cmvn" --job JOB/$n "$@"
}

# abx_suite NAME ITEM_DIR FEATS OUT_DIR [options]: OUT_DIR/NAME.{triphone,phone}.{within,across}.json
# (each skipped when it exists) and one summary line per condition on stdout.
abx_suite() {
  local name=$1 items=$2 feats=$3 out=$4 level context speaker json
  shift 4
  mkdir -p "$out"
  for level in triphone phone; do
    [ $level = triphone ] && context=within || context=any
    for speaker in within across; do
      json=$out/$name.$level.$speaker.json
      if [ -f "$json" ]; then
        log "ABX $name $level $speaker: $json exists, skipping"
      else
        speechunits abx "$items/$level.item" "$feats" --speaker $speaker --context $context \
          --output "$json" "$@" > "$out/$name.$level.$speaker.log" 2>&1 \
          || { log "ABX $name $level $speaker failed; see $out/$name.$level.$speaker.log"; return 1; }
      fi
      printf '%-22s %-9s %s\n' "$name" "$level" "$(tail -n 1 "$out/$name.$level.$speaker.log")"
    done
  done
}
