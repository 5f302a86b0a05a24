#!/usr/bin/env bash
# shellcheck disable=SC2154  # variables of the recipe that sources this file
# The stages shared by the recipes that train models named in a models file (speechocean762,
# librispeech, zerospeech2017): each run.sh keeps its options, its data preparation and
# features, and calls these (source it after utils/recipe_lib.sh):
#
#   start_model_recipe             start_recipe, then check the settings: --train-opts (default
#                                  by --device: ../conf/train_cpu.conf or ../conf/train_gpu.conf)
#                                  and every name in --models, before any stage runs
#   stage_train N                  train each of --models on $train_set into $exp/<model>/; models
#                                  with the cluster decoder first get their k-means targets
#   stage_units N                  units of each eval set by each model: $exp/<model>/units/<set>/
#                                  {dense,codes} (and the k-means-on-MFCC baseline, with --unit-k)
#   stage_abx N ITEM SUITE         ABX on each eval set whose data dir has the item file ITEM:
#                                  SUITE (abx_suite, or the recipe's own of the same arguments)
#                                  on MFCC and on each model's dense and codes; $exp/abx.summary
#   stage_probes N SET             probes and unit metrics on eval set SET (needs its alignments)
#   stage_reports N TITLE [SET]    each model's report (with SET's fbank and alignments) and the
#                                  summary $exp/RESULTS.md titled TITLE
#   stage_lm N MODEL SET           the prior over MODEL's units: a transformer unit LM and
#                                  Kneser-Ney n-grams trained on its training-set units, their
#                                  perplexity on SET's units, samples, unit snippets ($exp/MODEL/lm/)
#
# N is the stage's number in the recipe (for the log lines). Besides the options these recipes
# share (models, train_config, train_opts, train_overrides, train_nj, device, tap, input_type,
# probe_opts, nj, feats, exp), the stages read what the recipe sets after parsing its options:
#
#   models_conf   the models file (default ../conf/models.txt, shared; set before start_model_recipe)
#   sets_dir      the folder of the data dirs $sets_dir/<set>; features are in $feats/<set>/<type>
#   train_set     the set the models train on (features: the --input-type, fbank, and the
#                 MFCC mfcc_dd for k-means targets and the baseline)
#   eval_sets     the sets extracted and scored (features: mfcc_dd, and fbank and the
#                 --input-type for probes and reports)
#   target_k, unit_k, seed
#                 recipes with --target-k and --unit-k only: the k-means targets of
#                 masked-prediction models; k-means units of models without codes and the
#                 k-means-on-MFCC baseline (without --unit-k: no baseline, and a continuous
#                 model has dense features only)
#   extra_baselines
#                 optional: more feature baselines beside MFCC, "NAME:TYPE ..." (features
#                 $feats/<set>/TYPE, made by the recipe's feature stage): each scored by ABX as
#                 the system NAME's dense features and, with --unit-k, clustered like MFCC
#                 (k-means on the training set's) into the units system kmeans-NAME
#   readout       recipes with --unit-k and --readout only: true reads a model without codes
#                 through a centroid regression (model_unit_opts)
#   unit_context, unit_context_frames
#                 optional (default 0): k-means units of a model without codes from each frame
#                 stacked with unit_context frames on either side (kmeans fit --context, fitted
#                 on a sample of unit_context_frames frames), in kmeans[-readout]-cC.pt
#   dense_deltas  optional (default 0): the eval sets' dense features of every model carry
#                 each frame's deltas, scaled per utterance to this share of the frames' RMS
#                 (extract --deltas; the units do not change)
#
# A line of the models file: `NAME [@config=PIPELINE] [@tap=TAP] [@targets=FIRST] key=value...`
# (# comments): the base pipeline (default --train-config), the tap extracted as dense
# features (default --tap), and for a second masked-prediction iteration the model whose
# tap's k-means labels it predicts instead of MFCC's (FIRST must come before it in --models).
#
# Like the helpers of recipe_lib.sh, each stage skips what is complete and redoes what is not.

# start_model_recipe: start_recipe, then the settings of recipes that train models from
# $models_conf: train_opts defaults to ../conf/train_{cpu,gpu}.conf by $device, and bad
# settings files or model names fail before any stage runs. (model.input_dim is not
# passed: training takes it from the input features' meta.json.)
start_model_recipe() {
  start_recipe
  models_conf=${models_conf:-../conf/models.txt}
  [ -n "$train_opts" ] || train_opts=$(default_train_opts "$device")
  conf_args "$train_opts" > /dev/null
  local m spec
  for m in $models; do model_overrides "$models_conf" "$m" > /dev/null; done
  for spec in ${extra_baselines:-}; do
    case $spec in
      [!:]*:[!:]*) ;;
      *) log "extra_baselines: '$spec' is not NAME:TYPE (a system name and a feature folder name)"; exit 1 ;;
    esac
  done
  for m in $models; do
    if is_baseline "$m"; then log "--models: $m is the name of a baseline system; rename the model"; exit 1; fi
  done
  local value
  for value in "${unit_context-0}" "${unit_context_frames-1}"; do
    case $value in
      '' | *[!0-9]*) log "--unit-context and --unit-context-frames take whole numbers, got" \
        "'${unit_context-}' and '${unit_context_frames-}'"; exit 1 ;;
    esac
  done
  if ! python -c 'import sys; from speechunits.frontends.deltas import check_balance; check_balance(sys.argv[1])' \
      "${dense_deltas-0}" 2> /dev/null; then
    log "--dense-deltas takes a number >= 0, got '${dense_deltas-}'"; exit 1
  fi
}

# default_train_opts DEVICE: the shared training settings file for DEVICE (GPU or CPU budget).
default_train_opts() {
  case $1 in cuda*) echo ../conf/train_gpu.conf ;; *) echo ../conf/train_cpu.conf ;; esac
}

# uses_targets MODEL: true when MODEL's pipeline predicts k-means labels (the cluster decoder)
uses_targets() {
  if model_overrides "$models_conf" "$1" | tr ' ' '\n' | grep -q '^model\.decoder='; then
    model_overrides "$models_conf" "$1" | tr ' ' '\n' | grep -qx 'model\.decoder=cluster'
  else
    grep -q '^ *decoder: *cluster' "$(model_setting "$models_conf" "$1" config "$train_config")"
  fi
}

# has_codes EXP: true when the trained model in EXP has a discrete bottleneck (codes of its own)
has_codes() {
  python -c "import sys, yaml; sys.exit(yaml.safe_load(open('$1/config.yaml'))['model']['bottleneck'] not in ('vq', 'pcvq'))"
}

# mfcc_targets: the labels of a first masked-prediction iteration: k-means (--target-k) on
# the training set's MFCCs, applied to them ($exp/targets/).
mfcc_targets() {
  local mfcc=$feats/$train_set/mfcc_dd
  if [ -f "$exp/targets/$train_set/units.jsonl" ]; then
    log "stage $stage_n: k-means targets in $exp/targets, skipping"
    return 0
  fi
  if [ -z "${target_k:-}" ]; then
    log "stage $stage_n: masked-prediction models need a recipe with --target-k (and MFCC features $mfcc)"
    return 1
  fi
  log "stage $stage_n: masked-prediction targets: k-means (K=$target_k) on $mfcc -> $exp/targets"
  $cmd "$exp/log/targets.fit.log" speechunits kmeans fit "$mfcc" "$exp/targets/kmeans.pt" \
    --k "$target_k" --seed "$seed" --device "$device"
  $cmd "$exp/log/targets.apply.log" speechunits kmeans apply "$exp/targets/kmeans.pt" "$mfcc" \
    "$exp/targets/$train_set" --device "$device"
}

# model_targets MODEL: the labels a second masked-prediction iteration predicts: k-means
# (--target-k) on MODEL's tap over the training data, in $exp/MODEL/targets/ (MODEL must
# have finished training: list it before the models that name it in @targets=).
model_targets() {
  local first=$1 mtap
  mtap=$(model_setting "$models_conf" "$first" tap "$tap")
  [ -f "$exp/$first/targets/$train_set/units.jsonl" ] && return 0
  if ! train_finished "$exp/$first"; then
    log "stage $stage_n: $first must be trained before the models that predict its k-means labels (@targets=$first)"
    return 1
  fi
  log "stage $stage_n: targets from $first: k-means (K=$target_k) on its $mtap tap -> $exp/$first/targets"
  extract_units "$exp/$first" "$sets_dir/$train_set" "$exp/$first/units/$train_set" "$nj" \
    "extract.$first.$train_set" --tap "$mtap" --device "$device" || return 1
  $cmd "$exp/log/targets.$first.fit.log" speechunits kmeans fit "$exp/$first/units/$train_set/dense" \
    "$exp/$first/targets/kmeans.pt" --k "$target_k" --seed "$seed" --device "$device" || return 1
  $cmd "$exp/log/targets.$first.apply.log" speechunits kmeans apply "$exp/$first/targets/kmeans.pt" \
    "$exp/$first/units/$train_set/dense" "$exp/$first/targets/$train_set" --device "$device"
}

# train_one MODEL: train MODEL (its line of $models_conf over its base pipeline, then
# --train-opts and --train-overrides) into $exp/MODEL; stage_train runs it for each model.
train_one() {
  local config target=$feats/$train_set/fbank classes=() first
  config=$(model_setting "$models_conf" "$1" config "$train_config")
  if uses_targets "$1"; then
    target=$exp/targets/$train_set/codes; classes=("model.decoder_cfg.num_classes=$target_k")
    first=$(model_setting "$models_conf" "$1" targets "")
    if [ -n "$first" ]; then  # a second iteration: labels from k-means on the first model's tap
      model_targets "$first" || return 1
      target=$exp/$first/targets/$train_set/codes
    fi
  fi
  # shellcheck disable=SC2046,SC2086
  train_model $exp/$1 $exp/log/train.$1.log $config --device $device \
    data.train_dir=$sets_dir/$train_set data.input_feats=$feats/$train_set/$input_type \
    data.target_feats=$target "${classes[@]}" \
    $(conf_args $train_opts) $(model_overrides $models_conf $1) $train_overrides
}

# stage_train N: the MFCC targets when a model predicts k-means labels, then each of
# --models, --train-nj at a time.
stage_train() {
  local stage_n=$1 m
  for m in $models; do
    if uses_targets "$m"; then
      mfcc_targets
      break
    fi
  done
  log "stage $stage_n: training $models with $train_config, $models_conf, $train_opts${train_overrides:+ and $train_overrides}"
  # shellcheck disable=SC2086
  run_limited "$train_nj" train_one $models || { log "stage $stage_n: training failed; see $exp/log/train.*.log"; exit 1; }
}

# kmeans_baseline_units NAME TYPE: a units baseline: k-means (--unit-k) on the training set's
# features TYPE, applied to each eval set's ($exp/kmeans-NAME/units/<set>); refitted while a set
# lacks them. NAME mfcc, TYPE mfcc_dd: the k-means-on-MFCC baseline.
kmeans_baseline_units() {
  local name=$1 type=$2 km=$exp/kmeans-$1 set todo=()
  for set in $eval_sets; do
    [ -f "$km/units/$set/units.jsonl" ] || todo+=("$set")
  done
  if [ ${#todo[@]} = 0 ]; then
    log "stage $stage_n: k-means-on-$name units in $km, skipping"
    return 0
  fi
  for set in $train_set "${todo[@]}"; do
    if [ ! -f "$feats/$set/$type/meta.json" ]; then
      log "stage $stage_n: no $type features in $feats/$set for the $name baseline: run the recipe's feature" \
        "stage (stage 1) first, or leave the baseline out"
      return 1
    fi
  done
  log "stage $stage_n: k-means (K=$unit_k) on $type: a units baseline -> $km"
  $cmd "$exp/log/kmeans-$name.fit.log" speechunits kmeans fit "$feats/$train_set/$type" "$km/kmeans.pt" \
    --k "$unit_k" --seed "$seed" --device "$device" || return 1
  for set in "${todo[@]}"; do
    $cmd "$exp/log/kmeans-$name.apply.$set.log" speechunits kmeans apply "$km/kmeans.pt" "$feats/$set/$type" \
      "$km/units/$set" --device "$device" || return 1
  done
}

# baseline_systems: the baselines' system names in the order the summary lists them: mfcc
# and (with --unit-k) kmeans-mfcc, then each of extra_baselines (with --unit-k, and its
# kmeans-NAME).
baseline_systems() {
  local spec
  echo mfcc ${unit_k:+kmeans-mfcc}
  for spec in ${extra_baselines:-}; do
    echo "${spec%%:*}" ${unit_k:+"kmeans-${spec%%:*}"}
  done
}

# is_baseline NAME: true when NAME is one of baseline_systems.
is_baseline() {
  local b
  for b in $(baseline_systems); do
    [ "$b" = "$1" ] && return 0
  done
  return 1
}

# model_unit_opts MODEL: sets the array unit_opts to the extract options of MODEL's units and
# dense features: none for a model with codes (or without --unit-k); else --kmeans
# $exp/MODEL/kmeans.pt, or with --readout true the centroid regression of the tap onto those
# centroids (--readout $exp/MODEL/readout.pt: the dense features are the mapped tap) and
# k-means refitted on the mapped training frames (--kmeans $exp/MODEL/kmeans-readout.pt).
model_unit_opts() {
  unit_opts=()
  if [ -z "${unit_k:-}" ] || has_codes "$exp/$1"; then return 0; fi
  if [ "${readout:-false}" = true ]; then
    unit_opts=(--readout "$exp/$1/readout.pt" --kmeans "$exp/$1/kmeans-readout$(context_suffix).pt")
  else
    unit_opts=(--kmeans "$exp/$1/kmeans$(context_suffix).pt")
  fi
}

# context_suffix: "-cC" for units with C frames of context on either side (--unit-context C > 0;
# kmeans fit --context), else nothing: each setting has its own k-means file.
context_suffix() {
  if [ "${unit_context:-0}" -gt 0 ]; then echo "-c$unit_context"; fi
}

# readout_matches OUT [DELTAS]: fails, naming what to remove, when the extract folder OUT exists
# made with another read-out or k-means model than unit_opts gives (a read-out when it gives
# none, or older files), or with dense deltas other than DELTAS (default: --dense-deltas):
# extract_units would keep it as complete, and the figures computed from it would not be this
# setting's.
readout_matches() {
  local out=$1 deltas=${2:-${dense_deltas:-0}} readout_file="" kmeans_file="" i
  for ((i = 0; i < ${#unit_opts[@]}; i++)); do
    case ${unit_opts[i]} in
      --readout) readout_file=${unit_opts[i + 1]} ;;
      --kmeans) kmeans_file=${unit_opts[i + 1]} ;;
    esac
  done
  [ -f "$out/extract.json" ] || return 0
  if ! python "$(dirname "${BASH_SOURCE[0]}")/readout_matches.py" "$out/extract.json" "$readout_file" \
      "$kmeans_file" "$deltas"; then
    log "remove $out and what was computed from it (ABX, unit metrics, the LM), or run with the" \
      "--readout, --unit-context and --dense-deltas settings it was made with"
    return 1
  fi
}

# stage_units N: with --unit-k, the k-means-on-MFCC baseline and, for a model without codes
# of its own (a continuous bottleneck), k-means on its tap's training features
# ($exp/<model>/kmeans.pt) and, with --readout true, the read-out of model_unit_opts
# (kmeans regress, then kmeans fit --readout); then each eval set's units of each model.
stage_units() {
  local stage_n=$1 m set mtap dense mapped
  local spec
  if [ -n "${unit_k:-}" ]; then
    kmeans_baseline_units mfcc mfcc_dd || return 1
    for spec in ${extra_baselines:-}; do
      kmeans_baseline_units "${spec%%:*}" "${spec#*:}" || return 1
    done
  fi
  for m in $models; do
    mtap=$(model_setting "$models_conf" "$m" tap "$tap")
    model_unit_opts "$m"
    mapped=false
    if [ ${#unit_opts[@]} -gt 0 ] && [ "${readout:-false}" = true ]; then mapped=true; fi
    if [ ${#unit_opts[@]} -gt 0 ]; then
      dense=$exp/$m/units/$train_set/dense
      if [ ! -f "$exp/$m/kmeans.pt" ] || [ ! -f "${unit_opts[-1]}" ] \
        || { [ $mapped = true ] && [ ! -f "$exp/$m/kmeans-readout.pt" ]; }; then
        extract_units "$exp/$m" "$sets_dir/$train_set" "$exp/$m/units/$train_set" "$nj" "extract.$m.$train_set" \
          --tap "$mtap" --device "$device" || return 1
      fi
      if [ ! -f "$exp/$m/kmeans.pt" ]; then
        log "stage $stage_n: $m has no codes: k-means (K=$unit_k) on its $mtap tap over the training data"
        $cmd "$exp/log/kmeans.$m.log" speechunits kmeans fit "$dense" "$exp/$m/kmeans.pt" \
          --k "$unit_k" --seed "$seed" --device "$device" || return 1
      fi
      if [ $mapped = true ] && { [ ! -f "$exp/$m/readout.pt" ] || [ ! -f "$exp/$m/kmeans-readout.pt" ]; }; then
        log "stage $stage_n: $m: centroid regression of its $mtap tap onto its k-means centroids, then" \
          "k-means (K=$unit_k) on the mapped training frames"
        if [ ! -f "$exp/$m/readout.pt" ]; then  # a new read-out: the k-means of the old one goes too
          rm -f "$exp/$m"/kmeans-readout.pt "$exp/$m"/kmeans-readout-c*.pt
          $cmd "$exp/log/readout.$m.log" speechunits kmeans regress "$dense" "$exp/$m/kmeans.pt" \
            "$exp/$m/readout.pt" --seed "$seed" || return 1
        fi
        $cmd "$exp/log/kmeans-readout.$m.log" speechunits kmeans fit "$dense" "$exp/$m/kmeans-readout.pt" \
          --readout "$exp/$m/readout.pt" --k "$unit_k" --seed "$seed" --device "$device" || return 1
      fi
      if [ "${unit_context:-0}" -gt 0 ] && [ ! -f "${unit_opts[-1]}" ]; then
        log "stage $stage_n: $m: k-means (K=$unit_k) on its $([ $mapped = true ] && echo "mapped ")training" \
          "frames, each with $unit_context frames of context on either side -> ${unit_opts[-1]}"
        $cmd "$exp/log/kmeans-context.$m.log" speechunits kmeans fit "$dense" "${unit_opts[-1]}" \
          $([ $mapped = true ] && echo "--readout $exp/$m/readout.pt") --context "$unit_context" \
          --max-frames "${unit_context_frames:-300000}" --k "$unit_k" --seed "$seed" --device "$device" || return 1
      fi
    fi
    for set in $eval_sets; do
      log "stage $stage_n: $set units of $m ($mtap tap$([ $mapped = true ] && echo ", through its read-out"))"
      readout_matches "$exp/$m/units/$set" || return 1
      extract_units "$exp/$m" "$sets_dir/$set" "$exp/$m/units/$set" "$nj" "extract.$m.$set" --tap "$mtap" \
        --device "$device" "${unit_opts[@]}" --deltas "${dense_deltas:-0}" || return 1
    done
  done
}

# stage_abx N ITEM SUITE: on each eval set with the item file ITEM, `SUITE NAME DATA_DIR FEATS
# OUT_DIR --num-threads $nj` for MFCC ($exp/mfcc/abx), the k-means-on-MFCC codes and each
# model's dense and codes ($exp/<model>/abx); the score lines also in $exp/abx.summary. SUITE
# names its outputs (abx_suite's do not name the set: one eval set).
stage_abx() {
  local stage_n=$1 item=$2 suite=$3 set sets=()
  for set in $eval_sets; do
    if [ -f "$sets_dir/$set/$item" ]; then
      sets+=("$set")
    else
      log "stage $stage_n: no item file $sets_dir/$set/$item, skipping ABX on $set"
    fi
  done
  [ ${#sets[@]} -gt 0 ] || return 0
  for set in "${sets[@]}"; do
    abx_set "$set"
  done | tee "$exp/abx.summary"
}

# abx_set SET: stage_abx's systems on one eval set (with its stage_n, item and suite).
abx_set() {
  local set=$1 dir=$sets_dir/$1 m spec name
  log "stage $stage_n: ABX on $set"
  $suite mfcc "$dir" "$feats/$set/mfcc_dd" "$exp/mfcc/abx" --num-threads "$nj"
  if [ -n "${unit_k:-}" ]; then
    $suite codes "$dir" "$exp/kmeans-mfcc/units/$set/codes" "$exp/kmeans-mfcc/abx" --num-threads "$nj" \
      | sed "s/^/kmeans-mfcc /"
  fi
  for spec in ${extra_baselines:-}; do
    name=${spec%%:*}
    $suite dense "$dir" "$feats/$set/${spec#*:}" "$exp/$name/abx" --num-threads "$nj" | sed "s/^/$name /"
    if [ -n "${unit_k:-}" ]; then
      $suite codes "$dir" "$exp/kmeans-$name/units/$set/codes" "$exp/kmeans-$name/abx" --num-threads "$nj" \
        | sed "s/^/kmeans-$name /"
    fi
  done
  for m in $models; do
    $suite dense "$dir" "$exp/$m/units/$set/dense" "$exp/$m/abx" --num-threads "$nj" | sed "s/^/$m /"
    if [ -d "$exp/$m/units/$set/codes" ]; then
      $suite codes "$dir" "$exp/$m/units/$set/codes" "$exp/$m/abx" --num-threads "$nj" | sed "s/^/$m /"
    fi
  done
}

# stage_probes N SET: each model's probes (phone, speaker, gender, fbank from the frozen taps,
# on SET: $exp/<model>/probes/) and the unit metrics of each system with units of SET against
# its alignments ($exp/<system>/unit_metrics.json); skipped when SET has no alignments.
stage_probes() {
  local stage_n=$1 set=$2 dir=$sets_dir/$2 m seed_opts=()
  if [ ! -f "$dir/alignments.ctm" ]; then
    log "stage $stage_n: no phone alignments in $dir, skipping probes and unit metrics"
    return 0
  fi
  if [ -n "${seed:-}" ]; then seed_opts=(--seed "$seed"); fi
  local units_baselines=()
  for m in $(baseline_systems); do
    case $m in kmeans-*) units_baselines+=("$m") ;; esac
  done
  for m in "${units_baselines[@]}" $models; do
    if ! is_baseline "$m"; then
      if [ -f "$exp/$m/probes/probes.json" ]; then
        log "stage $stage_n: probes of $m done, skipping"
      else
        log "stage $stage_n: probing $m on $set (log: $exp/log/probe.$m.log)"
        # shellcheck disable=SC2086
        $cmd "$exp/log/probe.$m.log" speechunits probe "$exp/$m" "$dir" --features "$feats/$set/$input_type" \
          --fbank "$feats/$set/fbank" --out "$exp/$m/probes" --device "$device" "${seed_opts[@]}" $probe_opts
      fi
    fi
    if [ -f "$exp/$m/units/$set/units.jsonl" ]; then
      if [ -f "$exp/$m/unit_metrics.json" ]; then
        log "stage $stage_n: unit metrics of $m done, skipping"
      else
        log "stage $stage_n: unit metrics of $m"
        $cmd "$exp/log/unit_metrics.$m.log" speechunits unit-metrics "$exp/$m/units/$set" \
          --alignments "$dir/alignments.ctm" --output "$exp/$m/unit_metrics.json"
      fi
    fi
  done
}

# report_one MODEL [SET]: MODEL's report ($exp/MODEL/report/; with SET, its fbank features and,
# when it has them, its alignments).
report_one() {
  local m=$1 set=${2:-} opts=()
  if [ -n "$set" ]; then
    opts=(--fbank "$feats/$set/fbank")
    if [ -f "$sets_dir/$set/alignments.ctm" ]; then opts+=(--alignments "$sets_dir/$set/alignments.ctm"); fi
  fi
  $cmd "$exp/log/report.$m.log" speechunits report "$exp/$m" "${opts[@]}"
}

# stage_reports N TITLE [SET]: each model's report ($exp/<model>/report/; with SET, its fbank
# features and, when it has them, its alignments), then $exp/RESULTS.md (write_results; N is
# the recipe's last stage).
stage_reports() {
  local stage_n=$1 title=$2 set=${3:-} m
  for m in $models; do
    log "stage $stage_n: report of $m -> $exp/$m/report"
    report_one "$m" "$set"
  done
  log "stage $stage_n: summary -> $exp/RESULTS.md"
  # shellcheck disable=SC2086
  write_results "$stage_n" --systems $(baseline_systems) $models --title "$title"
}

# stage_lm N MODEL SET: the prior over MODEL's units (a unit language model). MODEL's units of
# the training set ($exp/MODEL/lm/units_train; k-means (and read-out) of model_unit_opts when
# MODEL has no codes of its own, as stage_units made them), a transformer trained on them (--lm-config,
# --lm-overrides: $exp/MODEL/lm/transformer) and Kneser-Ney n-grams of the orders --lm-orders
# ($exp/MODEL/lm/ngram<order>.json), each scored on SET's units ($exp/MODEL/lm/scores/, one
# perplexity line each in $exp/MODEL/lm/perplexity.txt); --lm-samples unit sequences sampled
# from scratch and as many SET utterances continued after their first second
# ($exp/MODEL/lm/{samples,continued}/, resynthesized when MODEL has a decoder of audio or
# spectra); audio snippets of SET's 20 most used units ($exp/MODEL/lm/snippets/); and MODEL's
# report again, now with the LM's curves, scores, samples and snippets.
stage_lm() {
  local stage_n=$1 m=$2 set=$3 lm=$exp/$2/lm mtap vocab order path name voice
  if [ ! -f "$exp/$m/units/$set/units.jsonl" ]; then
    log "stage $stage_n: no $set units of $m (run stage_units first); skipping the unit LM"
    return 1
  fi
  mtap=$(model_setting "$models_conf" "$m" tap "$tap")
  if has_codes "$exp/$m"; then
    vocab=$(codebook_size "$exp/$m")
    if [ "$vocab" = 0 ]; then
      log "stage $stage_n: $exp/$m/config.yaml names no model.bottleneck_cfg.codebook.size: the LM's vocabulary is unknown"
      return 1
    fi
  else
    vocab=$unit_k
  fi
  model_unit_opts "$m"  # the units of stage_units: the same k-means (and read-out)
  log "stage $stage_n: unit LM over $m's units ($vocab units) -> $lm"
  readout_matches "$exp/$m/units/$set" || return 1  # what the LM is scored on, and its training units
  readout_matches "$lm/units_train" 0 || return 1  # extracted without dense deltas
  extract_units "$exp/$m" "$sets_dir/$train_set" "$lm/units_train" "$nj" "extract.$m.lm_$train_set" --tap "$mtap" \
    --device "$device" "${unit_opts[@]}" || return 1
  if train_finished "$lm/transformer"; then
    log "stage $stage_n: $lm/transformer finished training, skipping"
  else
    # shellcheck disable=SC2086
    $cmd "$exp/log/lm_train.$m.log" speechunits lm train "$lm/units_train" "$lm/transformer" --config "$lm_config" \
      model.vocab_size="$vocab" --device "$device" $lm_overrides || return 1
  fi
  for order in $lm_orders; do
    [ -f "$lm/ngram$order.json" ] || $cmd "$exp/log/lm_ngram$order.$m.log" speechunits lm ngram "$lm/units_train" \
      "$lm/ngram$order.json" --order "$order" --vocab-size "$vocab" || return 1
  done
  : > "$lm/perplexity.txt.tmp"
  for name in transformer $(printf 'ngram%s ' $lm_orders); do
    path=$lm/$name; [ "$name" = transformer ] || path=$lm/$name.json
    $cmd "$exp/log/lm_score_$name.$m.log" speechunits lm score "$path" "$exp/$m/units/$set" \
      --output "$lm/scores/${name}_$set.json" || return 1
    grep -h perplexity "$exp/log/lm_score_$name.$m.log" | tail -n 1 | tee -a "$lm/perplexity.txt.tmp"
  done
  mv "$lm/perplexity.txt.tmp" "$lm/perplexity.txt"
  $cmd "$exp/log/lm_sample.$m.log" speechunits lm sample "$lm/transformer" "$lm/samples" --n "$lm_samples" \
    --temperature 0.8 --top-k 20 --device "$device" || return 1
  $cmd "$exp/log/lm_continue.$m.log" speechunits lm sample "$lm/transformer" "$lm/continued" \
    --prompt "$exp/$m/units/$set" --prompt-seconds 1.0 --max-utts "$lm_samples" --temperature 0.8 --top-k 20 \
    --device "$device" || return 1
  if uses_targets "$m"; then
    log "stage $stage_n: $m predicts k-means labels and has no audio decoder: its samples stay unit files"
  else
    voice=$(head -n 1 "$sets_dir/$train_set/spk2utt" | cut -d' ' -f1)
    for name in samples continued; do
      $cmd "$exp/log/lm_resynth_$name.$m.log" speechunits resynth "$exp/$m" "$lm/$name" "$lm/$name/wav" \
        --speaker "$voice" --device "$device" || return 1
    done
  fi
  $cmd "$exp/log/lm_snippets.$m.log" speechunits lm snippets "$exp/$m/units/$set" "$sets_dir/$set" "$lm/snippets" \
    || return 1
  report_one "$m" "$set"
  log "stage $stage_n: unit LM of $m: $lm (perplexities: $lm/perplexity.txt; report: $exp/$m/report/report.html)"
}
