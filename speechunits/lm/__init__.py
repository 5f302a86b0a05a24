"""speechunits.lm: the learned prior over units (a unit language model) and spoken-LM metrics.

    config.py         LMExperimentConfig (model / data / optim / train), load_lm_config
    data.py           unit files -> token sequences (BOS/EOS, optional duration classes), crops, batches
    models.py         UNIT_LMS registry: a causal transformer with a KV cache, an LSTM baseline
    trainer.py        LMTrainer: the training engine's loop (speechunits/train) with LM data and eval
    checkpoint.py     load_lm (checkpoint or experiment dir -> model + config)
    scoring.py        per-utterance log-probability and perplexity (sliding windows past the context)
    ngram.py          interpolated Kneser-Ney n-gram LM over units (the baseline), JSON on disk
    sample.py         sampling from scratch or continuing prompts: temperature, top-k, seeded, cached
    spoken_sets.py    spot-the-word and grammaticality sets from the synthetic generator (ZR2021 layout)
    spoken_metrics.py sWUGGY- / sBLIMP-style accuracies of a unit LM on such sets (or the real ones)
    snippets.py       short audio snippets of where the most used units occur (for listening)

Import from the submodules (nothing heavy happens on `import speechunits.lm`).
"""
