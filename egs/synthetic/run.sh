#!/usr/bin/env bash
# The synthetic-speech recipe: espeak-ng speech with exact phone alignments, end to end.
#
#   bash egs/synthetic/run.sh                         # everything, default settings
#   bash egs/synthetic/run.sh --stage 3 --nj 4        # from training on
#   bash egs/synthetic/run.sh --out /tmp/synth-run    # outputs elsewhere
#   bash egs/synthetic/run.sh --publish true          # also refresh the committed RESULTS.md
#   bash egs/synthetic/run.sh --help                  # all options
#
# Stages (each skips work that is complete; rerunning resumes):
#   0  generate the corpus: audio, data dirs, CTM alignments, ABX item files
#   1  features for all utterances: 13 MFCC + deltas + delta-deltas, and 80 log-mel,
#      per-speaker CMVN (train and test select their utterances from the same stores)
#   2  ABX of the MFCC baseline on the test speakers
#   3  train the small VQ autoencoder (pipelines/small.yaml)
#   4  extract the test speakers' units: frame codes, and the dense projection (pre-VQ)
#   5  ABX of the learned representations: dense projection and units
#   6  probes (phone, speaker, gender, fbank at the four taps) and unit metrics
#   7  resynthesis: test speakers' units decoded in a training speaker's voice
#   8  report (Markdown + HTML with plots) and $out/exp/RESULTS.md, compared with the
#      committed egs/synthetic/RESULTS.md (key figures of this run vs the committed ones)
#   9  unit language model: train units, a transformer LM and a 4-gram baseline, perplexity on the
#      test units, spot-the-word and grammaticality sets (lm make-sets) and their accuracy, sampled and
#      continued utterances resynthesized, snippets of the most used units; the report again.
#      --lm-minutes M: the LMs train instead on M minutes of speech in the training voices (a
#      train-only synthetic corpus of the same seed and voices, $out/data/lm_train, whose first
#      utterances are the training split's), units by the model, and --lm-config (default
#      pipelines/lm/unit-lm-large.yaml then)
#
# ABX: triphone items with context within, phone items with any context; within and
# across speakers. Outputs: $out/data, $out/feats, $out/exp/{mfcc,small}, $out/exp/RESULTS.md
# (all ignored by git: a run leaves the checkout clean). The committed RESULTS.md beside
# this script changes only with --publish true (or `cp exp/RESULTS.md RESULTS.md` here
# after a full run); commit it after looking at the diff.
set -euo pipefail
command_line="$0${*:+$(printf ' %q' "$@")}"  # as typed, shell-quoted
cd "$(dirname "${BASH_SOURCE[0]}")"

stage=0              # first stage to run
stop_stage=100       # last stage to run
nj=2                 # parallel jobs
out=.                # folder for data/, feats/ and exp/ (exp/RESULTS.md: this run's figures)
minutes=12           # minutes of synthetic speech to generate
speakers=8           # speakers, alternately male and female
test_speakers=3      # of which held out for testing (ABX, unseen-speaker probes)
seed=0               # seed of everything random
train_config=../../pipelines/small.yaml  # model recipe
train_overrides=""   # extra key=value overrides for training, e.g. "train.max_steps=200"
device=cpu           # torch device for training and extraction
n_resynth=3          # utterances to resynthesize
lm_overrides=""      # extra key=value overrides of the unit LM (its --lm-config), e.g. "train.max_steps=2000"
lm_minutes=0         # minutes of speech in the training voices for the unit LMs (0: the training split's units)
lm_config=""         # unit-LM config (default: pipelines/lm/unit-lm.yaml, unit-lm-large.yaml with --lm-minutes)
n_lm_samples=3       # unit-LM samples from scratch, and continued test utterances, to resynthesize
lm_words=100         # spot-the-word pairs per voice (lm make-sets)
lm_pairs=40          # grammaticality pairs per subtype and voice (3 subtypes)
publish=false        # true: copy exp/RESULTS.md over the committed RESULTS.md (then commit it)
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/recipe_lib.sh
. utils/parse_options.sh

corpus=$out/data/synthetic
feats=$out/feats
exp=$out/exp
model=$exp/small
start_recipe

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -f $corpus/corpus.json ]; then
    log "stage 0: corpus exists in $corpus, skipping"
  else
    log "stage 0: generating $minutes minutes of synthetic speech in $corpus"
    $cmd $exp/log/prepare.log speechunits prepare synthetic $corpus --minutes $minutes --seed $seed \
      --speakers $speakers --test-speakers $test_speakers --nj $nj
  fi
  for split in all train test; do speechunits validate-data $corpus/data/$split; done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  compute_features $corpus/data/all $feats/mfcc_dd mfcc_dd speaker $nj features.mfcc_dd
  compute_features $corpus/data/all $feats/fbank fbank speaker $nj features.fbank
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: ABX of the MFCC baseline"
  abx_suite mfcc $corpus/data/test $feats/mfcc_dd $exp/mfcc/abx
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "stage 3: training $train_config -> $model"
  # shellcheck disable=SC2086
  train_model $model $exp/log/train.log $train_config --device $device \
    data.train_dir=$corpus/data/train data.input_feats=$feats/fbank data.target_feats=$feats/fbank \
    $train_overrides
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "stage 4: units of the test speakers -> $model/units_test"
  extract_units $model $corpus/data/test $model/units_test $nj extract --tap projection --device $device
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "stage 5: ABX of the learned representations"
  abx_suite dense $corpus/data/test $model/units_test/dense $model/abx
  abx_suite codes $corpus/data/test $model/units_test/codes $model/abx
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "stage 6: probes and unit metrics"
  if [ -f $model/probes/probes.json ]; then
    log "probes exist, skipping"
  else
    $cmd $exp/log/probe.log speechunits probe $model $corpus/data/all --features $feats/fbank \
      --alignments $corpus/data/all/alignments.ctm --out $model/probes --device $device
  fi
  $cmd $exp/log/unit_metrics.log speechunits unit-metrics $model/units_test \
    --alignments $corpus/data/test/alignments.ctm --output $model/unit_metrics.json
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  voice=$(head -n 1 $corpus/data/train/spk2utt | cut -d' ' -f1)
  log "stage 7: $n_resynth test utterances resynthesized in the voice of $voice -> $model/resynth/$voice"
  $cmd $exp/log/resynth.log speechunits resynth $model $model/units_test $model/resynth/$voice \
    --speaker $voice --max-utts $n_resynth --device $device
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "stage 8: report and $exp/RESULTS.md"
  $cmd $exp/log/report.log speechunits report $model --alignments $corpus/data/test/alignments.ctm \
    --fbank $feats/fbank --units $model/units_test
  write_results 8 --systems mfcc small
  python utils/compare_results.py $exp/RESULTS.md RESULTS.md
  if [ "$publish" = true ]; then
    cp $exp/RESULTS.md RESULTS.md
    log "published: $exp/RESULTS.md -> egs/synthetic/RESULTS.md (review with git diff, then commit it)"
  fi
  log "report: $model/report/report.html; results: $exp/RESULTS.md"
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  lm=$model/lm
  sets=$out/data/spoken_lm
  voice=$(head -n 1 $corpus/data/train/spk2utt | cut -d' ' -f1)
  log "stage 9: unit language model on the training speakers' units -> $lm"
  extract_units $model $corpus/data/train $model/units_train $nj extract_train --device $device
  lm_units=$model/units_train
  [ -n "$lm_config" ] || lm_config=../../pipelines/lm/unit-lm.yaml
  if [ "$lm_minutes" != 0 ]; then
    lm_corpus=$out/data/lm_train
    [ "$lm_config" = ../../pipelines/lm/unit-lm.yaml ] && lm_config=../../pipelines/lm/unit-lm-large.yaml
    if [ -f $lm_corpus/corpus.json ]; then
      log "LM training corpus exists in $lm_corpus, skipping"
    else
      # the training speakers' share of a full corpus of these minutes: M minutes in all
      full_minutes=$(python -c "import sys; m, s, t = map(float, sys.argv[1:]); print(m * s / (s - t))" \
        $lm_minutes $speakers $test_speakers)
      log "generating $lm_minutes minutes of speech in the training voices in $lm_corpus"
      $cmd $exp/log/prepare_lm.log speechunits prepare synthetic $lm_corpus train_only=true --minutes $full_minutes \
        --seed $seed --speakers $speakers --test-speakers $test_speakers --nj $nj
    fi
    extract_units $model $lm_corpus/data/train $model/units_lm_train $nj extract_lm_train --device $device
    lm_units=$model/units_lm_train
  fi
  # the LM's vocabulary is the codebook (units unseen in training still get a probability)
  codebook=$(codebook_size $model)
  if train_finished $lm/transformer; then
    log "$lm/transformer finished training, skipping"
  else
    # shellcheck disable=SC2086
    $cmd $exp/log/lm_train.log speechunits lm train $lm_units $lm/transformer \
      --config $lm_config model.vocab_size=$codebook --device $device $lm_overrides
  fi
  [ -f $lm/ngram.json ] || $cmd $exp/log/lm_ngram.log speechunits lm ngram $lm_units $lm/ngram.json --order 4 \
    --vocab-size $codebook
  for m in transformer ngram; do
    path=$lm/$m; [ $m = ngram ] && path=$lm/ngram.json
    $cmd $exp/log/lm_score_$m.log speechunits lm score $path $model/units_test --output $lm/scores/${m}_test.json
    grep -h perplexity $exp/log/lm_score_$m.log | tail -n 1
  done
  [ -f $sets/sets.json ] || $cmd $exp/log/lm_sets.log speechunits lm make-sets $corpus $sets \
    --words $lm_words --pairs-per-type $lm_pairs
  [ -f $lm/spoken/transformer/spoken_lm.json ] || $cmd $exp/log/lm_eval_transformer.log \
    speechunits lm eval $lm/transformer $sets $lm/spoken/transformer --extractor $model --device $device
  [ -f $lm/spoken/ngram/spoken_lm.json ] || $cmd $exp/log/lm_eval_ngram.log speechunits lm eval $lm/ngram.json \
    $sets $lm/spoken/ngram --units lexical=$lm/spoken/transformer/lexical_dev/units \
    syntactic=$lm/spoken/transformer/syntactic_dev/units
  grep -h "%" $exp/log/lm_eval_transformer.log $exp/log/lm_eval_ngram.log | grep -v "^#"
  $cmd $exp/log/lm_sample.log speechunits lm sample $lm/transformer $lm/samples --n $n_lm_samples \
    --temperature 0.8 --top-k 20
  $cmd $exp/log/lm_continue.log speechunits lm sample $lm/transformer $lm/continued --prompt $model/units_test \
    --prompt-seconds 1.0 --max-utts $n_lm_samples --temperature 0.8 --top-k 20
  for d in samples continued; do
    $cmd $exp/log/lm_resynth_$d.log speechunits resynth $model $lm/$d $lm/$d/wav --speaker $voice --device $device
  done
  $cmd $exp/log/lm_snippets.log speechunits lm snippets $model/units_test $corpus/data/test $lm/snippets
  $cmd $exp/log/report.log speechunits report $model --alignments $corpus/data/test/alignments.ctm \
    --fbank $feats/fbank --units $model/units_test
  log "unit LM: $lm (report: $model/report/report.html)"
fi

log "done"
