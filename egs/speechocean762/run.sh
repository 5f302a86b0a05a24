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
#      CMVN, as the models are trained (the extraction recomputes the same from audio);
#      with --nolifter-baseline true (the default) also mfcc_nolifter_dd, the same MFCC
#      without Kaldi's cepstral lifter (a stronger baseline on this corpus); with
#      --balanced-baseline true (the default) also mfcc_dd_bal, the MFCC + d + dd with their
#      deltas scaled per utterance to the statics' RMS (delta_balance=1: the baseline given
#      the models' --dense-deltas read-out)
#   2  train each of --models (conf/models.txt: a base pipeline, --train-config unless the
#      line names one with @config=, and its overrides) with the settings in --train-opts
#      (../conf/train_cpu.conf; ../conf/train_gpu.conf for --device cuda) into $exp/<model>/
#      (config.yaml, command.txt, metrics.jsonl, best.pt, last.pt). Models with the cluster
#      decoder (masked prediction) first get their targets: k-means (--target-k) on the
#      training MFCCs, applied to them ($exp/targets/); a second iteration (@targets=FIRST
#      in conf/models.txt) predicts k-means labels of FIRST's tap ($exp/FIRST/targets/)
#   3  units: k-means on MFCC with --unit-k clusters, fitted on train, applied to dev
#      ($exp/kmeans-mfcc/units/dev, the units baseline; and $exp/kmeans-mfcc-nolifter on
#      mfcc_nolifter_dd with --nolifter-baseline true); then dev units of each model's
#      best.pt in $exp/<model>/units/dev/ with dense/ (the model's tap: @tap= in
#      conf/models.txt, else --tap) and codes/ (frame-level codes). A model without codes
#      of its own (a continuous bottleneck) gets units from k-means (--unit-k) on its
#      tap's training features ($exp/<model>/kmeans.pt; extract --kmeans); with --readout
#      true (the default) its tap is read through a centroid regression fitted on those
#      training frames and centroids ($exp/<model>/readout.pt, kmeans regress), which pulls
#      the frames toward their centroids and shrinks the within-cluster (largely speaker)
#      scatter: dense/ holds the mapped tap and the units come from k-means refitted on the
#      mapped training frames ($exp/<model>/kmeans-readout.pt; extract --readout --kmeans);
#      with --unit-context C > 0 (default 4) that k-means clusters each mapped frame stacked with
#      its C neighbours on either side ($exp/<model>/kmeans-readout-cC.pt; kmeans fit --context):
#      units that follow a stretch of the frame trajectory, more phone-like (EXPERIMENTS.md);
#      with --dense-deltas B > 0 (default 1) each model's dev dense/ also carries each frame's
#      deltas, scaled per utterance to B times the frames' RMS (extract --deltas): the dynamic
#      read-out, 1-2 points of ABX across speakers on the masked models (EXPERIMENTS.md)
#   4  ABX on the dev item files: MFCC ($exp/mfcc/abx/), k-means-on-MFCC codes (and the
#      lifter-free MFCC, $exp/mfcc-nolifter/abx/, and its k-means codes) and each
#      model's dense and codes ($exp/<model>/abx/); triphone items within context and
#      phone items any context, within and across speakers
#   5  probes (phone, speaker, gender, fbank from the frozen taps, on dev) and unit metrics
#      against the alignments: $exp/<model>/probes/, $exp/<model>/unit_metrics.json
#   6  reports ($exp/<model>/report/) and the summary $exp/RESULTS.md, with the quality
#      table: each model's dense ABX over MFCC's, its units' ABX and PNMI over those of
#      k-means on MFCC at the same K (benchmarks/quality.py makes the same table for any
#      set of systems and K)
#   7  the prior over the units of --lm-model (the default model): a transformer unit LM
#      (--lm-config, --lm-overrides) and Kneser-Ney n-grams (--lm-orders) trained on its
#      units of train, their perplexity on the dev speakers' units
#      ($exp/<lm-model>/lm/perplexity.txt), sampled and continued unit sequences, audio
#      snippets of the most used units, and the model's report with all of it
# Stages 2-7 are the shared ones of utils/model_stages.sh (2-6 as in librispeech and
# zerospeech2017).
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
train_opts=          # training settings file (empty: ../conf/train_cpu.conf, or ../conf/train_gpu.conf on cuda)
train_overrides=     # more key=value overrides for every model, e.g. "train.max_steps=500"
train_nj=1           # models trained at the same time (on CPU each uses one thread)
device=cpu           # torch device for training, extraction and probes (cpu, cuda)
tap=projection       # model tap extracted as dense features (unless conf/models.txt sets @tap=)
target_k=100         # k-means clusters of the MFCC targets of masked-prediction models
unit_k=100           # k-means clusters of units from continuous taps, and of the k-means-on-MFCC baseline
nolifter_baseline=true  # also MFCC without the cepstral lifter (mfcc-nolifter) and k-means on it (kmeans-mfcc-nolifter) as baselines
balanced_baseline=true  # also MFCC + d + dd with balanced deltas (mfcc-bal; delta_balance=1) and k-means on it (kmeans-mfcc-bal) as baselines
readout=true         # continuous taps read through a centroid regression (kmeans regress; stage 3): dense = the mapped tap, units = k-means on it
unit_context=4       # units of continuous taps from k-means on each frame stacked with this many frames on either side (kmeans fit --context; 0: single frames)
unit_context_frames=300000  # frames sampled for that k-means (4 x (2 x unit_context + 1) x D bytes each; the sampling peaks at about 5x that)
dense_deltas=1       # dev dense features carry each frame's deltas at this share of the frames' RMS (extract --deltas; 0: the tap alone)
probe_opts="--max-frames 10000 --max-test-frames 10000"  # extra options of speechunits probe
lm_model=masked      # the model whose units the unit LM of stage 7 models (the default model)
lm_config=../../pipelines/lm/unit-lm-large.yaml  # unit-LM pipeline (a 2-layer causal transformer)
lm_overrides="model.dropout=0.2"  # key=value overrides of the unit LM
lm_orders="3 4"      # orders of the Kneser-Ney n-gram baselines
lm_samples=3         # unit sequences sampled from scratch, and dev utterances continued
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/recipe_lib.sh
. utils/model_stages.sh
. utils/parse_options.sh

# what the shared stages (utils/model_stages.sh) read: this recipe's own models file, and the
# data dirs $data/data/<set>: the models train on train, dev is extracted and scored
models_conf=conf/models.txt
sets_dir=$data/data
extra_baselines=""
if [ "$nolifter_baseline" = true ]; then extra_baselines="mfcc-nolifter:mfcc_nolifter_dd"; fi
if [ "$balanced_baseline" = true ]; then extra_baselines="$extra_baselines mfcc-bal:mfcc_dd_bal"; fi
train_set=train
eval_sets=dev
start_model_recipe

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -f $data/corpus.json ]; then
    log "stage 0: corpus prepared in $data, skipping"
  else
    log "stage 0: preparing $corpus in $data (forced alignment with $nj jobs)"
    # an utterance whose transcript does not fit its audio is left out and listed in
    # $data/failed.txt (1 of the 2,500 in the shared train split), not a reason to stop
    opts=(--nj "$nj" --dev-speakers "$dev_speakers" --seed "$seed" --allow-failures)
    [ "$max_utts_per_speaker" -gt 0 ] && opts+=(--max-utts-per-speaker "$max_utts_per_speaker")
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
    if [ "$nolifter_baseline" = true ]; then
      log "stage 1: mfcc_nolifter_dd features of $split (Kaldi's MFCC without the cepstral lifter)"
      compute_features $data/data/$split $feats/$split/mfcc_nolifter_dd mfcc_dd $cmvn $nj \
        features.$split.mfcc_nolifter_dd frontend_config.cepstral_lifter=0
    fi
    if [ "$balanced_baseline" = true ]; then
      log "stage 1: mfcc_dd_bal features of $split (MFCC + d + dd, the deltas at the statics' RMS)"
      compute_features $data/data/$split $feats/$split/mfcc_dd_bal mfcc_dd $cmvn $nj \
        features.$split.mfcc_dd_bal delta_balance=1
    fi
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
  stage_probes 5 dev
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  stage_reports 6 "speechocean762 ($(basename $corpus)): dev speakers" dev
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  stage_lm 7 $lm_model dev
fi

log "done"
