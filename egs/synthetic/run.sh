#!/usr/bin/env bash
# The synthetic-speech recipe: espeak-ng speech with exact phone alignments.
#
#   bash egs/synthetic/run.sh                     # everything, default settings
#   bash egs/synthetic/run.sh --stage 1 --nj 4    # from the features on
#   bash egs/synthetic/run.sh --help              # all options
#
# Stages (each skipped when its outputs are complete; rerunning resumes):
#   0  generate the corpus (audio, data dirs, CTM alignments, ABX item files)
#   1  features: 13 MFCC + deltas + delta-deltas with per-speaker CMVN, and 80 log-mel
#   2  ABX of the MFCC baseline on the test speakers (triphone items within context,
#      phone items any context; within and across speakers) -> exp/abx/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

stage=0              # first stage to run
stop_stage=100       # last stage to run
nj=2                 # parallel jobs
minutes=6            # minutes of synthetic speech to generate
seed=0               # seed of everything random
corpus=data/synthetic  # where the corpus goes
feats=feats          # where features go
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/parse_options.sh

log "$0 $*"
mkdir -p exp
echo "$0 $*" >> exp/command_lines.txt

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -f $corpus/corpus.json ]; then
    log "stage 0: corpus exists in $corpus, skipping"
  else
    log "stage 0: generating $minutes minutes of synthetic speech in $corpus"
    $cmd exp/log/prepare.log speechunits prepare synthetic $corpus --minutes $minutes --seed $seed --nj $nj
  fi
  for split in train test; do speechunits validate-data $corpus/data/$split; done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for split in train test; do
    for type in mfcc_dd fbank; do
      log "stage 1: $type features of $split"
      # jobs hold whole speakers, so per-speaker CMVN statistics stay within a job
      n=$(( nj < $(wc -l < $corpus/data/$split/spk2utt) ? nj : $(wc -l < $corpus/data/$split/spk2utt) ))
      $cmd JOB=1:$n exp/log/features.$split.$type.JOB.log \
        speechunits features $corpus/data/$split $feats/$split/$type --type $type --cmvn speaker --job JOB/$n
    done
  done
fi

abx_eval() {  # abx_eval NAME FEATURE_DIR: four ABX conditions, JSON + one summary line each
  local name=$1 feats=$2 level context speaker out
  mkdir -p exp/abx
  for level in triphone phone; do
    [ $level = triphone ] && context=within || context=any
    for speaker in within across; do
      out=exp/abx/$name.$level.$speaker.json
      if [ ! -f $out ]; then
        speechunits abx $corpus/data/test/$level.item $feats --speaker $speaker --context $context \
          --output $out > exp/abx/$name.$level.$speaker.log 2>&1
      fi
      printf '%-14s %-9s %s\n' "$name" "$level" "$(tail -n 1 exp/abx/$name.$level.$speaker.log)"
    done
  done
}

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: ABX of the MFCC baseline"
  abx_eval mfcc $feats/test/mfcc_dd | tee exp/abx/mfcc.summary
fi

log "done"
