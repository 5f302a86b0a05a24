"""speechunits.train: the training engine.

    config.py       ExperimentConfig (model / data / optim / train), load_experiment_config
    checkpoint.py   save_checkpoint (atomic); reading is speechunits/models/checkpoint.py
    data.py         random crops of features + aligned target, seeded per-rank sampler
    optim.py        Adam, warm-up + cosine / exponential schedule
    state.py        RNG and private module state for bit-exact resume
    distributed.py  torchrun process group (gloo on CPU, NCCL on CUDA)
    metrics.py      EXP/metrics.jsonl (+ TensorBoard when installed)
    trainer.py      Trainer.fit(): the loop, evaluation, checkpoints, resume

Import from the submodules (nothing heavy happens on `import speechunits.train`).
"""
