#!/usr/bin/env bash
# shellcheck disable=SC2154  # variables of the recipe that sources this file
# Stage helpers shared by the recipes (source it after cmd.sh and utils/log.sh):
#
#   conf_args FILE                 the key=value lines of a settings file (comments dropped)
#   train_finished EXP             true when EXP's training ran to its end
#   features_complete DATA FEATS   true when FEATS holds an array for every utterance of DATA
#   compute_features DATA FEATS TYPE CMVN NJ LOGNAME [key=value...]
#                                  `speechunits features` as NJ jobs of whole speakers, via $cmd
#   abx_one ITEM FEATS JSON [abx options...]
#                                  one `speechunits abx` via $cmd, unless JSON exists
#   abx_suite NAME ITEM_DIR FEATS OUT_DIR [abx options...]
#                                  the four ABX conditions (triphone items within context,
#                                  phone items any context; within and across speakers)
#   model_overrides FILE NAME      the overrides a models file (../conf/models.txt) gives NAME
#   model_setting FILE NAME KEY DEFAULT
#                                  NAME's recipe setting `@KEY=value` in that file (e.g. its pipeline)
#   train_model EXP LOG CONFIG [key=value...]
#                                  `speechunits train` via $train_cmd, unless EXP finished
#   run_limited N FUNC ARGS...     FUNC ARGS for each word of ARGS, N at a time (background)
#   codebook_size EXP              the codebook size of the model in EXP (0: no codebook)
#   write_results LAST [options]   $exp/RESULTS.md (utils/summarize_results.py: --systems, --title)
#
# Each helper checks the mark of finished work that the command itself leaves, so a
# rerun skips what is done and redoes what is not (partial outputs never look done).
# The stages of the recipes that train models from a models file are in model_stages.sh.

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

# speaker_jobs DATA NJ: how many jobs holding whole speakers DATA can fill (at most NJ).
speaker_jobs() {
  local nspk
  nspk=$(wc -l < "$1/spk2utt")
  echo $(( $2 < nspk ? $2 : nspk ))
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
  local n
  n=$(speaker_jobs "$data" "$nj")
  log "$type features of $data -> $feats ($n jobs)"
  $cmd JOB=1:$n "$exp/log/$logname.JOB.log" \
    speechunits features "$data" "$feats" "$@" --type "$type" --cmvn "$cmvn" --job JOB/$n
}

# extract_units MODEL DATA OUT NJ LOGNAME [options]: `speechunits extract` in NJ jobs through
# $cmd (part JOB of NJ each, whole speakers), then one run that assembles OUT's text files;
# logs $exp/log/LOGNAME.JOB.log and LOGNAME.log. Skipped when OUT is complete; resumes otherwise.
extract_units() {
  local model=$1 data=$2 out=$3 nj=$4 logname=$5
  shift 5
  if [ -f "$out/extract.json" ] && features_complete "$data" "$out/dense"; then
    log "units of $data by $model are complete in $out, skipping"
    return 0
  fi
  local n
  n=$(speaker_jobs "$data" "$nj")
  log "extracting $data with $model -> $out ($n jobs)"
  if [ "$n" -gt 1 ]; then
    $cmd JOB=1:$n "$exp/log/$logname.JOB.log" speechunits extract "$model" "$data" "$out" --job JOB/$n "$@" \
      || return 1
  fi
  $cmd "$exp/log/$logname.log" speechunits extract "$model" "$data" "$out" "$@"
}

# abx_one ITEM FEATS JSON [options]: one ABX condition via $cmd (log: JSON with .log), skipped
# when JSON exists; prints the score line.
abx_one() {
  local item=$1 feats=$2 json=$3
  shift 3
  local logfile=${json%.json}.log
  if [ -f "$json" ]; then
    log "ABX $json exists, skipping"
  else
    $cmd "$logfile" speechunits abx "$item" "$feats" --output "$json" "$@" \
      || { log "ABX failed; see $logfile"; return 1; }
  fi
  grep -h 'ABX error' "$logfile" | tail -n 1
}

# abx_suite NAME ITEM_DIR FEATS OUT_DIR [options]: OUT_DIR/NAME.{triphone,phone}.{within,across}.json
# (each skipped when it exists) and one summary line per condition on stdout.
abx_suite() {
  local name=$1 items=$2 feats=$3 out=$4 level context speaker line
  shift 4
  mkdir -p "$out"
  for level in triphone phone; do
    [ $level = triphone ] && context=within || context=any
    for speaker in within across; do
      line=$(abx_one "$items/$level.item" "$feats" "$out/$name.$level.$speaker.json" \
        --speaker $speaker --context $context "$@") || return 1
      printf '%-22s %-9s %s\n' "$name" "$level" "$line"
    done
  done
}

# model_overrides FILE NAME: the rest of NAME's line in FILE (`name key=value ...`, # comments).
# A line may also hold recipe settings of the model, written `@key=value` (e.g.
# `@config=../../pipelines/masked.yaml`, `@tap=encoder`): model_setting reads them,
# model_overrides leaves them out.
model_overrides() {
  local line
  line=$(model_line "$1" "$2") || return 1
  echo $line | tr ' ' '\n' | { grep -v '^@' || true; } | tr '\n' ' '
  echo
}

# model_line FILE NAME: NAME's line in FILE without the name and comments (fails if absent).
model_line() {
  sed -e 's/#.*//' "$1" | awk -v n="$2" '$1 == n {found = 1; $1 = ""; print} END {exit !found}' \
    || { echo "model '$2' is not in $1" >&2; return 1; }
}

# model_setting FILE NAME KEY DEFAULT: the value of NAME's `@KEY=value` in FILE, else DEFAULT.
model_setting() {
  local line value
  line=$(model_line "$1" "$2") || return 1
  value=$(echo $line | tr ' ' '\n' | sed -n "s/^@$3=//p" | tail -n 1)
  echo "${value:-$4}"
}

# train_model EXP LOG CONFIG [key=value...]: train into EXP (an interrupted run resumes
# from EXP/last.pt; a finished one is skipped). Logs to LOG.
train_model() {
  local dir=$1 logfile=$2 config=$3
  shift 3
  if train_finished "$dir"; then
    log "$dir finished training, skipping"
    return 0
  fi
  if [ -f "$dir/last.pt" ]; then log "resuming $dir from its last.pt"; fi
  log "training $dir (log: $logfile)"
  $train_cmd "$logfile" speechunits train "$config" --exp-dir "$dir" --no-progress "$@"
  log "trained: $(grep -h "step .*wall" "$logfile" | tail -n 1)"
}

# run_limited N FUNC WORD...: `FUNC WORD` for every WORD, at most N at the same time;
# fails (after all have ended) if any failed.
run_limited() {
  local n=$1 func=$2 word pid failed=0
  shift 2
  local pids=()
  for word in "$@"; do
    "$func" "$word" &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$n" ]; do sleep 1; done
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  return $failed
}

# run_note LAST: how this run went so far, for RESULTS.md ("stages 0-8 of this run took 5.6 min
# on 2 cores"); LAST is the recipe's last stage.
run_note() {
  local last=$stop_stage
  [ "$last" -lt "$1" ] || last=$1
  awk -v s="$(( $(date +%s) - recipe_started ))" -v a="$stage" -v b="$last" -v c="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)" \
    'BEGIN { printf "stages %d-%d of this run took %.1f min on %d cores", a, b, s / 60, c }'
}

# start_recipe: log the command line (saved as $command_line before option parsing) and
# append it to $exp/command_lines.txt.
start_recipe() {
  recipe_started=$(date +%s)
  mkdir -p "$exp/log"
  log "$command_line"
  echo "$(date '+%F %T') $command_line" >> "$exp/command_lines.txt"
}

# codebook_size EXP: the size of the codebook of the model in EXP (its config.yaml), 0 if it has none.
codebook_size() {
  python -c "import sys, yaml; m = yaml.safe_load(open(sys.argv[1]))['model']
print(((m.get('bottleneck_cfg') or {}).get('codebook') or {}).get('size') or 0)" "$1/config.yaml"
}

# write_results LAST [options]: the summary $exp/RESULTS.md of what is under $exp
# (utils/summarize_results.py with these options, e.g. --systems, --title), with the command
# line and how this run went (run_note LAST).
write_results() {
  local last=$1
  shift
  python utils/summarize_results.py --command "$command_line" --note "$(run_note "$last")" "$exp" "$@" \
    --out "$exp/RESULTS.md"
}
