#!/usr/bin/env bash
# speechocean762: read English by Mandarin-L1 speakers (adults and children), with
# phone alignments from pocketsphinx forced alignment. Trains the masked-prediction
# models (pipelines/masked.yaml: a first iteration on MFCC k-means labels, a second on
# the first's) and small autoencoders, and compares their dense features and units with
# MFCC and with k-means on MFCC.
#
#   bash egs/speechocean762/run.sh                           # the shared train split, CPU settings
#   bash egs/speechocean762/run.sh --stage 4 --models "masked masked-it2 vq"
#   bash egs/speechocean762/run.sh --corpus ~/corpora/speechocean762 --device cuda
#   bash egs/speechocean762/run.sh --help                    # every option with its value
#
# Stages (each skipped when its outputs are complete; rerunning resumes):
#   0  prepare: data dirs $data/data/{train,dev} (dev = --dev-speakers held-out speakers),
#      forced alignments (alignments.ctm), ABX item files (phone.item, triphone.item)
#   1  features for train and dev: 80 log-mel (fbank, the model input and target) and
#      13 MFCC + deltas + delta-deltas (mfcc_dd, the ABX baseline), both with per-speaker
#      CMVN, as the models are trained (the extraction recomputes the same from audio)
#   2  train each of --models (conf/models.txt: a base pipeline, --train-config unless the
#      line names one with @config=, and its overrides) with the settings in --train-opts
#      (conf/train_cpu.conf; conf/train_gpu.conf for --device cuda) into $exp/<model>/
#      (config.yaml, command.txt, metrics.jsonl, best.pt, last.pt). Models with the cluster
#      decoder (masked prediction) first get their targets: k-means (--target-k) on the
#      training MFCCs, applied to them ($exp/targets/); a second iteration (@targets=FIRST
#      in conf/models.txt) predicts k-means labels of FIRST's tap ($exp/FIRST/targets/)
#   3  units: k-means on MFCC with --unit-k clusters, fitted on train, applied to dev
#      ($exp/kmeans-mfcc/units/dev, the units baseline); then dev units of each model's
#      best.pt in $exp/<model>/units/dev/ with dense/ (the model's tap: @tap= in
#      conf/models.txt, else --tap) and codes/ (frame-level codes). A model without codes
#      of its own (a continuous bottleneck) gets units from k-means (--unit-k) on its
#      tap's training features ($exp/<model>/kmeans.pt; extract --kmeans)
#   4  ABX on the dev item files: MFCC ($exp/mfcc/abx/), k-means-on-MFCC codes and each
#      model's dense and codes ($exp/<model>/abx/); triphone items within context and
#      phone items any context, within and across speakers
#   5  probes (phone, speaker, gender, fbank from the frozen taps, on dev) and unit metrics
#      against the alignments: $exp/<model>/probes/, $exp/<model>/unit_metrics.json
#   6  reports ($exp/<model>/report/) and the summary $exp/RESULTS.md, with the quality
#      table: each model's dense ABX over MFCC's, its units' ABX and PNMI over those of
#      k-means on MFCC at the same K (benchmarks/quality.py makes the same table for any
#      set of systems and K)
#
# Relative paths in options are relative to this folder (the script cd's here first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
[ -r "$0" ] || exec bash "$PWD/${0##*/}" "$@"  # $0 relative to another cwd: --help reads the script
# the command line, kept before the options are parsed (and shifted away)
command_line="$0${*:+$(printf ' %q' "$@")}"  # as typed, shell-quoted

help_message="Usage: $0 [options]   (the stages are described at the top of run.sh)"
stage=0              # first stage to run
stop_stage=100       # last stage to run
nj=2                 # parallel jobs (alignment, features, extraction, ABX threads)
corpus=../../../shared/corpora/speechocean762-train  # the corpus: the shared train split (flat) or a full release
data=data/so762      # the prepared corpus (data dirs, alignments, item files)
feats=feats          # feature root: $feats/<split>/<type>
exp=exp              # experiment root: logs, models, ABX, probes, results
dev_speakers=20      # train-part speakers held out as dev (balanced by gender and age)
max_utts_per_speaker=0  # only the first N utterances of each speaker (0: all)
seed=0               # seed of the dev split
input_type=fbank     # model input features: fbank (80) or mfcc_dd (39)
cmvn=speaker         # CMVN of the features (speaker, utterance, none)
models="masked masked-it2 vq"  # models to train, in order, by name in conf/models.txt (masked-it2 predicts masked's labels)
train_config=../../pipelines/small.yaml  # base pipeline that conf/models.txt modifies
train_opts=          # training settings file (empty: conf/train_cpu.conf, or conf/train_gpu.conf on cuda)
train_overrides=     # more key=value overrides for every model, e.g. "train.max_steps=500"
train_nj=1           # models trained at the same time (on CPU each uses one thread)
device=cpu           # torch device for training, extraction and probes (cpu, cuda)
tap=projection       # model tap extracted as dense features (unless conf/models.txt sets @tap=)
target_k=100         # k-means clusters of the MFCC targets of masked-prediction models
unit_k=100           # k-means clusters of units from continuous taps, and of the k-means-on-MFCC baseline
probe_opts="--max-frames 10000 --max-test-frames 10000"  # extra options of speechunits probe
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/recipe_lib.sh
. utils/parse_options.sh

start_model_recipe

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -f $data/corpus.json ]; then
    log "stage 0: corpus prepared in $data, skipping"
  else
    log "stage 0: preparing $corpus in $data (forced alignment with $nj jobs)"
    # an utterance whose transcript does not fit its audio is left out and listed in
    # $data/failed.txt (1 of the 2,500 in the shared train split), not a reason to stop
    opts=(--nj $nj --dev-speakers $dev_speakers --seed $seed --allow-failures)
    [ "$max_utts_per_speaker" -gt 0 ] && opts+=(--max-utts-per-speaker $max_utts_per_speaker)
    $cmd $exp/log/prepare.log speechunits prepare speechocean762 $corpus $data "${opts[@]}"
  fi
  for split in train dev; do speechunits validate-data $data/data/$split > /dev/null; done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for split in train dev; do
    for type in $(echo fbank mfcc_dd $input_type | tr ' ' '\n' | sort -u); do
      log "stage 1: $type features of $split"
      compute_features $data/data/$split $feats/$split/$type $type $cmvn $nj features.$split.$type
    done
  done
fi

# uses_targets MODEL: true when MODEL's pipeline predicts k-means labels (the cluster decoder)
uses_targets() {
  if model_overrides conf/models.txt $1 | tr ' ' '\n' | grep -q '^model\.decoder='; then
    model_overrides conf/models.txt $1 | tr ' ' '\n' | grep -qx 'model\.decoder=cluster'
  else
    grep -q '^ *decoder: *cluster' "$(model_setting conf/models.txt $1 config $train_config)"
  fi
}

# model_targets MODEL: the labels a second masked-prediction iteration predicts: k-means
# (--target-k) on MODEL's tap over the training data, in $exp/MODEL/targets/ (MODEL must
# have finished training: list it before the models that name it in @targets=).
model_targets() {
  local first=$1 mtap
  mtap=$(model_setting conf/models.txt $first tap $tap)
  [ -f $exp/$first/targets/train/units.jsonl ] && return 0
  if ! train_finished $exp/$first; then
    log "stage 2: $first must be trained before the models that predict its k-means labels (@targets=$first)"
    return 1
  fi
  log "stage 2: targets from $first: k-means (K=$target_k) on its $mtap tap -> $exp/$first/targets"
  extract_units $exp/$first $data/data/train $exp/$first/units/train $nj extract.$first.train --tap $mtap --device $device \
    || return 1
  $cmd $exp/log/targets.$first.fit.log speechunits kmeans fit $exp/$first/units/train/dense $exp/$first/targets/kmeans.pt \
    --k $target_k --seed $seed --device $device || return 1
  $cmd $exp/log/targets.$first.apply.log speechunits kmeans apply $exp/$first/targets/kmeans.pt \
    $exp/$first/units/train/dense $exp/$first/targets/train --device $device
}

# has_codes EXP: true when the trained model in EXP has a discrete bottleneck (codes of its own)
has_codes() {
  python -c "import sys, yaml; sys.exit(yaml.safe_load(open('$1/config.yaml'))['model']['bottleneck'] not in ('vq', 'pcvq'))"
}

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  for m in $models; do
    uses_targets $m || continue
    if [ -f $exp/targets/train/units.jsonl ]; then
      log "stage 2: k-means targets in $exp/targets, skipping"
    else
      log "stage 2: masked-prediction targets: k-means (K=$target_k) on $feats/train/mfcc_dd -> $exp/targets"
      $cmd $exp/log/targets.fit.log speechunits kmeans fit $feats/train/mfcc_dd $exp/targets/kmeans.pt \
        --k $target_k --seed $seed --device $device
      $cmd $exp/log/targets.apply.log speechunits kmeans apply $exp/targets/kmeans.pt $feats/train/mfcc_dd \
        $exp/targets/train --device $device
    fi
    break
  done
  log "stage 2: training ${models} ($train_opts ${train_overrides:+and $train_overrides})"
  train_one() {
    local config target=$feats/train/fbank classes=() first
    config=$(model_setting conf/models.txt $1 config $train_config)
    if uses_targets $1; then
      target=$exp/targets/train/codes; classes=(model.decoder_cfg.num_classes=$target_k)
      first=$(model_setting conf/models.txt $1 targets "")
      if [ -n "$first" ]; then  # a second iteration: labels from k-means on the first model's tap
        model_targets $first || return 1
        target=$exp/$first/targets/train/codes
      fi
    fi
    # shellcheck disable=SC2046,SC2086
    train_model $exp/$1 $exp/log/train.$1.log $config --device $device \
      data.train_dir=$data/data/train data.input_feats=$feats/train/$input_type \
      data.target_feats=$target "${classes[@]}" \
      $(conf_args $train_opts) $(model_overrides conf/models.txt $1) $train_overrides
  }
  run_limited $train_nj train_one $models || { log "stage 2: training failed; see $exp/log/train.*.log"; exit 1; }
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  km=$exp/kmeans-mfcc
  if [ -f $km/units/dev/units.jsonl ]; then
    log "stage 3: k-means-on-MFCC units in $km, skipping"
  else
    log "stage 3: k-means (K=$unit_k) on MFCC: the units baseline -> $km"
    $cmd $exp/log/kmeans-mfcc.fit.log speechunits kmeans fit $feats/train/mfcc_dd $km/kmeans.pt \
      --k $unit_k --seed $seed --device $device
    $cmd $exp/log/kmeans-mfcc.apply.log speechunits kmeans apply $km/kmeans.pt $feats/dev/mfcc_dd $km/units/dev \
      --device $device
  fi
  for m in $models; do
    mtap=$(model_setting conf/models.txt $m tap $tap)
    kmeans_opts=()
    if ! has_codes $exp/$m; then  # a continuous model: units from k-means on its tap's training features
      if [ ! -f $exp/$m/kmeans.pt ]; then
        log "stage 3: $m has no codes: k-means (K=$unit_k) on its $mtap tap over the training data"
        extract_units $exp/$m $data/data/train $exp/$m/units/train $nj extract.$m.train --tap $mtap --device $device
        $cmd $exp/log/kmeans.$m.log speechunits kmeans fit $exp/$m/units/train/dense $exp/$m/kmeans.pt \
          --k $unit_k --seed $seed --device $device
      fi
      kmeans_opts=(--kmeans $exp/$m/kmeans.pt)
    fi
    log "stage 3: dev units of $m ($mtap tap)"
    extract_units $exp/$m $data/data/dev $exp/$m/units/dev $nj extract.$m --tap $mtap --device $device "${kmeans_opts[@]}"
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "stage 4: ABX on $data/data/dev"
  {
    abx_suite mfcc $data/data/dev $feats/dev/mfcc_dd $exp/mfcc/abx --num-threads $nj
    abx_suite codes $data/data/dev $exp/kmeans-mfcc/units/dev/codes $exp/kmeans-mfcc/abx --num-threads $nj \
      | sed "s/^/kmeans-mfcc /"
    for m in $models; do
      abx_suite dense $data/data/dev $exp/$m/units/dev/dense $exp/$m/abx --num-threads $nj | sed "s/^/$m /"
      if [ -d $exp/$m/units/dev/codes ]; then
        abx_suite codes $data/data/dev $exp/$m/units/dev/codes $exp/$m/abx --num-threads $nj | sed "s/^/$m /"
      fi
    done
  } | tee $exp/abx.summary
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  for m in kmeans-mfcc $models; do
    if [ $m != kmeans-mfcc ]; then
      if [ -f $exp/$m/probes/probes.json ]; then
        log "stage 5: probes of $m done, skipping"
      else
        log "stage 5: probing $m on dev (log: $exp/log/probe.$m.log)"
        # shellcheck disable=SC2086
        $cmd $exp/log/probe.$m.log speechunits probe $exp/$m $data/data/dev --features $feats/dev/$input_type \
          --fbank $feats/dev/fbank --out $exp/$m/probes --device $device --seed $seed $probe_opts
      fi
    fi
    if [ -f $exp/$m/units/dev/units.jsonl ]; then
      if [ -f $exp/$m/unit_metrics.json ]; then
        log "stage 5: unit metrics of $m done, skipping"
      else
        log "stage 5: unit metrics of $m"
        $cmd $exp/log/unit_metrics.$m.log speechunits unit-metrics $exp/$m/units/dev \
          --alignments $data/data/dev/alignments.ctm --output $exp/$m/unit_metrics.json
      fi
    fi
  done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  for m in $models; do
    log "stage 6: report of $m -> $exp/$m/report"
    $cmd $exp/log/report.$m.log speechunits report $exp/$m --fbank $feats/dev/fbank \
      --alignments $data/data/dev/alignments.ctm
  done
  log "stage 6: summary -> $exp/RESULTS.md"
  python utils/summarize_results.py --command "$command_line" --note "$(run_note 6)" $exp \
    --systems mfcc kmeans-mfcc $models --title "speechocean762 ($(basename $corpus)): dev speakers" --out $exp/RESULTS.md
fi

log "done"
