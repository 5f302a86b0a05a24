#!/usr/bin/env bash
# LibriSpeech (read English audiobooks) on a copy you provide, with phone alignments
# you provide (e.g. Montreal Forced Aligner TextGrids) or made here with pocketsphinx.
#
#   bash egs/librispeech/run.sh --librispeech /data/LibriSpeech --alignments /data/librispeech_alignments
#   bash egs/librispeech/run.sh --librispeech /data/LibriSpeech --align pocketsphinx
#   bash egs/librispeech/run.sh --librispeech /data/LibriSpeech --train-set train-clean-360 --device cuda
#   bash egs/librispeech/run.sh --help
#
# Data layout (the release's):
#   $librispeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac
#   $librispeech/<subset>/<spk>/<chapter>/<spk>-<chapter>.trans.txt
#   $librispeech/SPEAKERS.TXT                  (genders; optional)
#   --alignments DIR: TextGrids named <spk>-<chapter>-<utt>.TextGrid anywhere under DIR
#   (DIR/<subset>/ is used when it exists), phones on the tier --tier (MFA: "phones",
#   labels with stress digits, which --strip-stress removes; empty/sil/sp/spn = silence).
#
# Stages (each skipped when its outputs are complete; rerunning resumes):
#   0  data dirs $data/<set> for --train-set and --eval-set (LibriSpeech ids kept as
#      utterance ids, speakers = first folder level, text from trans.txt, spk2gender from
#      SPEAKERS.TXT); for the eval set, phone alignments (alignments.ctm) and ABX item
#      files (phone.item, triphone.item) from --alignments, or by pocketsphinx forced
#      alignment with --align pocketsphinx; without either, ABX and probes are skipped
#   1  features: fbank (model input and target) for both sets; MFCC baseline (mfcc_dd)
#      for the eval set; per-speaker CMVN
#   2  train --models (../conf/models.txt) with --train-opts (../conf/train_cpu.conf or _gpu.conf)
#   3  extract eval-set units with each model: $exp/<model>/units/<eval set>/{dense,codes}
#   4  ABX on the eval set (MFCC baseline and each model's dense and codes; triphone items
#      within context, phone items any context; within and across speakers)
#   5  probes (phone, speaker, gender, fbank) and unit metrics on the eval set
#   6  reports ($exp/<model>/report/) and the summary table $exp/RESULTS.md
# Stages 2-6 are the shared ones of utils/model_stages.sh (as in speechocean762 and zerospeech2017).
#
# Relative paths in options are relative to this folder (the script cd's here first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
[ -r "$0" ] || exec bash "$PWD/${0##*/}" "$@"  # $0 relative to another cwd: --help reads the script
# the command line, kept before the options are parsed (and shifted away)
command_line="$0${*:+$(printf ' %q' "$@")}"  # as typed, shell-quoted

help_message="Usage: $0 --librispeech DIR [--alignments DIR | --align pocketsphinx] [options]"
stage=0              # first stage to run
stop_stage=100       # last stage to run
nj=2                 # parallel jobs (features, alignment, extraction threads, ABX threads)
librispeech=         # the LibriSpeech folder (subset folders, SPEAKERS.TXT)
train_set=train-clean-100  # subset the models train on
eval_set=dev-clean   # subset for ABX, probes and unit metrics (speakers unseen in training)
alignments=          # folder of TextGrids with phone alignments (at least for the eval set)
tier=phones          # TextGrid tier with the phones
strip_stress=true    # drop stress digits from phone labels (AH0 -> AH)
align=none           # without --alignments: none (skip ABX and probes) or pocketsphinx
data=data            # data dirs: $data/<set>
feats=feats          # feature root: $feats/<set>/<type>
exp=exp              # experiment root: logs, models, units, ABX, probes, results
input_type=fbank     # model input features: fbank (80) or mfcc_dd (39)
cmvn=speaker         # CMVN of the features (speaker, utterance, none)
models="vq"          # models to train, by name in ../conf/models.txt
train_config=../../pipelines/small.yaml  # base pipeline that ../conf/models.txt modifies
train_opts=          # training settings file (empty: ../conf/train_cpu.conf, or ../conf/train_gpu.conf on cuda)
train_overrides=     # more key=value overrides for every model, e.g. "train.max_steps=500"
train_nj=1           # models trained at the same time
device=cpu           # torch device for training, extraction and probes
tap=projection       # model tap extracted and scored as dense features
probe_opts="--max-utts 400"  # extra options of speechunits probe
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/recipe_lib.sh
. utils/model_stages.sh
. utils/parse_options.sh

# what the shared stages (utils/model_stages.sh) read: the data dirs $data/<set>; the
# models train on --train-set, --eval-set is extracted and scored
sets_dir=$data
eval_sets=$eval_set
start_model_recipe
case $align in none|pocketsphinx) ;; *) echo "$0: --align must be none or pocketsphinx" >&2; exit 1 ;; esac
eval_dir=$data/$eval_set

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -z "$librispeech" ] || [ ! -d "$librispeech/$train_set" ] || [ ! -d "$librispeech/$eval_set" ]; then
    echo "$0: --librispeech must hold $train_set/ and $eval_set/; got '$librispeech'" >&2; exit 1
  fi
  for set in $(echo $train_set $eval_set | tr ' ' '\n' | sort -u); do
    if [ -f $data/$set/failed.txt ]; then
      log "stage 0: $data/$set exists, skipping"
      speechunits validate-data $data/$set > /dev/null
      continue
    fi
    log "stage 0: transcripts and genders of $set -> $data/local/$set"
    python local/prepare_librispeech.py $librispeech $set $data/local/$set
    # shellcheck disable=SC2054  # flac,wav is one argument
    opts=(--speaker-from dir --extensions flac,wav --transcripts "$data/local/$set/text")
    [ -f $data/local/$set/spk2gender ] && opts+=(--spk2gender "$data/local/$set/spk2gender")
    if [ $set = $eval_set ] && [ -n "$alignments" ]; then
      ali=$alignments; [ -d $alignments/$set ] && ali=$alignments/$set
      opts+=(--alignments "$ali" --tier "$tier" --allow-failures)
      [ "$strip_stress" = true ] && opts+=(--strip-stress)
      log "stage 0: $set with the phone alignments in $ali"
    fi
    log "stage 0: importing $librispeech/$set -> $data/$set"
    $cmd $exp/log/prepare.$set.log speechunits prepare folder $librispeech/$set $data/$set "${opts[@]}"
    if [ -s $data/$set/failed.txt ]; then
      log "stage 0: $(wc -l < $data/$set/failed.txt) files of $set left out (no alignment, unreadable, ...); see $data/$set/failed.txt"
    fi
    speechunits validate-data $data/$set > /dev/null
  done
  if [ ! -f $eval_dir/alignments.ctm ] && [ "$align" = pocketsphinx ]; then
    log "stage 0: forced alignment of $eval_set with pocketsphinx ($nj jobs)"
    $cmd $exp/log/align.$eval_set.log python local/align_pocketsphinx.py $eval_dir --nj $nj
  fi
  if [ -f $eval_dir/alignments.ctm ]; then
    log "stage 0: $eval_set has phone alignments ($(wc -l < $eval_dir/triphone.item) triphone items)"
  else
    log "stage 0: $eval_set has no phone alignments (give --alignments DIR or --align pocketsphinx):" \
      "ABX, probes and unit metrics will be skipped"
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for type in $(echo fbank $input_type | tr ' ' '\n' | sort -u); do
    log "stage 1: $type features of $train_set"
    compute_features $data/$train_set $feats/$train_set/$type $type $cmvn $nj features.$train_set.$type
  done
  for type in $(echo fbank mfcc_dd $input_type | tr ' ' '\n' | sort -u); do
    log "stage 1: $type features of $eval_set"
    compute_features $eval_dir $feats/$eval_set/$type $type $cmvn $nj features.$eval_set.$type
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  stage_train 2
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  stage_units 3
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  stage_abx 4 triphone.item abx_suite
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  stage_probes 5 $eval_set
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  stage_reports 6 "LibriSpeech: trained on $train_set, evaluated on $eval_set" $eval_set
fi

log "done"
