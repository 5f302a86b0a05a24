#!/usr/bin/env bash
# ZeroSpeech 2017 track 1 (unsupervised subword modelling) on data you provide.
#
#   bash egs/zerospeech2017/run.sh --zr-root /data/zerospeech2017/data --lang english
#   bash egs/zerospeech2017/run.sh --zr-root ... --lang french --durations "1s 10s" --stage 3
#   bash egs/zerospeech2017/run.sh --help
#
# Data layout (the challenge's; checked at stage 0):
#   $zr_root/train/<lang>/*.wav              one file per speaker, named by the speaker
#                                            (B07.wav: speaker B07); see --train-speaker-from
#   $zr_root/test/<lang>/<dur>/*.wav         test files of 1 s, 10 s, 120 s (speakers unknown)
#   $zr_root/test/<lang>/<dur>/<dur>.item    ABX item files (`#file onset offset #phone prev next
#        or $zr_root/test/<lang>/<dur>.item  speaker`); or give --item-dir DIR with <dur>.item
#   The ZeroSpeech 2020 release of the same data ($root/2017/<lang>/{train,test}/...) works
#   too: pass --zr-root $root/2017 (the layout is detected).
#
# Stages (each skipped when its outputs are complete; rerunning resumes):
#   0  data dirs: $data/train_files (one utterance per training file), cut into
#      --segment-seconds segments in $data/train; $data/test_<dur> per duration (each
#      test file its own speaker: utterance id = file name), with the item file as abx.item
#   1  features: the model input (and the fbank target) of train; the MFCC baseline
#      (mfcc_dd) of each test set; CMVN --cmvn (per utterance by default: test files have
#      no speaker labels, so training normalises the same way)
#   2  train --models (../conf/models.txt) with --train-opts (../conf/train_cpu.conf or _gpu.conf)
#   3  extract every test set with each model: $exp/<model>/units/test_<dur>/{dense,codes}
#   4  export the dense features in the submission format (one <wav name>.txt per test
#      file, `time v1 ... vD` per frame, time = frame centre):
#      $exp/<model>/submission/2017/track1/<lang>/<dur>/ (--export-codes: codes as one-hot)
#   5  ABX with the challenge's item files (triphones within context, within and across
#      speakers) for the MFCC baseline and each model's dense and codes: $exp/*/abx/
#   6  reports ($exp/<model>/report/) and the summary table $exp/RESULTS.md
# Stages 2, 3, 5 and 6 are the shared ones of utils/model_stages.sh (as in speechocean762 and
# librispeech), with the challenge's ABX (zr_abx below) at stage 5.
#
# Relative paths in options are relative to this folder (the script cd's here first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
[ -r "$0" ] || exec bash "$PWD/${0##*/}" "$@"  # $0 relative to another cwd: --help reads the script
# the command line, kept before the options are parsed (and shifted away)
command_line="$0${*:+$(printf ' %q' "$@")}"  # as typed, shell-quoted

help_message="Usage: $0 --zr-root DIR [options]   (the stages are described at the top of run.sh)"
stage=0              # first stage to run
stop_stage=100       # last stage to run
nj=2                 # parallel jobs (features, extraction threads, ABX threads)
zr_root=             # the challenge data: train/<lang>/*.wav, test/<lang>/<dur>/*.wav
lang=english         # language folder
durations="1s 10s 120s"  # test subsets
item_dir=            # folder of <dur>.item files (default: beside the test wavs)
train_speaker_from="file"  # training speakers: file (file name = speaker), dir, or pattern
train_pattern=       # with --train-speaker-from pattern: file-name regex with (?P<spk>...)
segment_seconds=30   # training files are cut into segments of at most this length
data=data            # data dirs
feats=feats          # feature root: $feats/<set>/<type>
exp=exp              # experiment root: logs, models, units, submissions, ABX, results
input_type=fbank     # model input features: fbank (80) or mfcc_dd (39)
cmvn=utterance       # CMVN of the features (utterance, speaker, none)
models="vq"          # models to train, by name in ../conf/models.txt
train_config=../../pipelines/small.yaml  # base pipeline that ../conf/models.txt modifies
train_opts=          # training settings file (empty: ../conf/train_cpu.conf, or ../conf/train_gpu.conf on cuda)
train_overrides=     # more key=value overrides for every model, e.g. "train.max_steps=500"
train_nj=1           # models trained at the same time
device=cpu           # torch device for training and extraction
tap=projection       # model tap exported and scored as dense features
export_codes=false   # also export the codes (one-hot) in the submission format
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/recipe_lib.sh
. utils/model_stages.sh
. utils/parse_options.sh

# what the shared stages (utils/model_stages.sh) read: the data dirs $data/<set>; the
# models train on train, each test_<dur> is extracted and scored
sets_dir=$data
train_set=train
eval_sets=
for dur in $durations; do eval_sets+=" test_$dur"; done
start_model_recipe

# The two layouts: train/<lang> + test/<lang> (2017), or <lang>/train + <lang>/test (2020).
train_audio=; test_audio=
if [ -n "$zr_root" ]; then
  if [ -d $zr_root/train/$lang ]; then
    train_audio=$zr_root/train/$lang; test_audio=$zr_root/test/$lang
  elif [ -d $zr_root/$lang/train ]; then
    train_audio=$zr_root/$lang/train; test_audio=$zr_root/$lang/test
  fi
fi
# item_file DUR: the item file of a test subset, or nothing.
item_file() {
  local f
  for f in ${item_dir:+$item_dir/$1.item} $test_audio/$1/$1.item $test_audio/$1.item; do
    if [ -f "$f" ]; then echo "$f"; return 0; fi
  done
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -z "$train_audio" ]; then
    echo "$0: --zr-root must hold train/$lang/ and test/$lang/ (or $lang/train/ and $lang/test/); got '$zr_root'" >&2
    exit 1
  fi
  if [ -d $data/train ]; then
    log "stage 0: $data/train exists, skipping"
  else
    log "stage 0: training files of $train_audio -> $data/train_files"
    opts=(--speaker-from "$train_speaker_from")
    [ -n "$train_pattern" ] && opts+=(--pattern "$train_pattern")
    $cmd $exp/log/prepare.train.log speechunits prepare folder $train_audio $data/train_files "${opts[@]}"
    log "stage 0: segments of at most $segment_seconds s -> $data/train"
    $cmd $exp/log/segment.train.log python local/segment_data.py $data/train_files $data/train \
      --max-seconds $segment_seconds
  fi
  speechunits validate-data $data/train > /dev/null
  for dur in $durations; do
    if [ ! -d $test_audio/$dur ]; then
      echo "$0: no test folder $test_audio/$dur" >&2; exit 1
    fi
    if [ -f $data/test_$dur/failed.txt ]; then
      log "stage 0: $data/test_$dur exists, skipping"
    else
      log "stage 0: test files of $test_audio/$dur -> $data/test_$dur"
      $cmd $exp/log/prepare.test_$dur.log speechunits prepare folder $test_audio/$dur $data/test_$dur --speaker-from file
    fi
    item=$(item_file $dur)
    if [ -n "$item" ]; then
      cp $item $data/test_$dur/abx.item
    else
      log "stage 0: no item file for $dur (looked for $dur.item in ${item_dir:+$item_dir, }$test_audio/$dur and $test_audio): no ABX on it"
    fi
    speechunits validate-data $data/test_$dur > /dev/null
  done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for type in $(echo fbank $input_type | tr ' ' '\n' | sort -u); do
    log "stage 1: $type features of train"
    compute_features $data/train $feats/train/$type $type $cmvn $nj features.train.$type
  done
  for dur in $durations; do
    log "stage 1: MFCC baseline features of test_$dur"
    compute_features $data/test_$dur $feats/test_$dur/mfcc_dd mfcc_dd $cmvn $nj features.test_$dur.mfcc_dd
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  stage_train 2
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  stage_units 3
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for m in $models; do
    for dur in $durations; do
      reps=dense
      [ "$export_codes" = true ] && [ -d $exp/$m/units/test_$dur/codes ] && reps="dense codes"
      for rep in $reps; do
        sub=$exp/$m/submission/2017/track1/$lang/$dur
        [ $rep = codes ] && sub=$exp/$m/submission_codes/2017/track1/$lang/$dur
        if [ -f $sub/export.json ]; then
          log "stage 4: $sub complete, skipping"; continue
        fi
        opts=()
        if [ $rep = codes ]; then
          opts=(--num-codes "$(codebook_size $exp/$m)")
        fi
        log "stage 4: exporting $m $rep of test_$dur -> $sub"
        $cmd $exp/log/export.$m.$rep.test_$dur.log python local/export_zr2017.py \
          $exp/$m/units/test_$dur/$rep $sub "${opts[@]}"
      done
    done
  done
fi

# zr_abx NAME DIR FEATS OUT_DIR [options]: stage 5's ABX suite: within- and across-speaker ABX
# (triphones within context) on the challenge's item file DIR/abx.item of test set DIR
# (test_<dur>): OUT_DIR/NAME.<dur>.{within,across}.json.
zr_abx() {
  local name=$1 item=$2/abx.item feats=$3 out=$4 dur=${2##*/test_} speaker line
  shift 4
  mkdir -p "$out"
  for speaker in within across; do
    line=$(abx_one "$item" "$feats" "$out/$name.$dur.$speaker.json" --speaker $speaker --context within "$@") \
      || return 1
    printf '%-22s %-5s %s\n' "$name" "$dur" "$line"
  done
}

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  stage_abx 5 abx.item zr_abx
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  stage_reports 6 "ZeroSpeech 2017 track 1, $lang (test: $durations)"
fi

log "done"
