"""speechunits.models: the WaveNet autoencoder and its parts.

    mulaw.py          mu-law companding / 256-level coding
    common.py         length masks, probe `Tap`, DDP helpers
    encoder.py        strided conv encoder (paper stack by default), time-aligned
    bottleneck.py     bottleneck interface + registry BOTTLENECKS
    linear_bottleneck.py  linear projection bottleneck (registry key "ae": the plain autoencoder)
    vae.py            Gaussian bottleneck
    codebook.py       VQ codebook: nearest codes, EMA, k-means init, dead-code restarts, usage
    vq.py             VQ-VAE bottleneck
    segmentation.py, piecewise.py   piecewise-constant VQ ("pcvq")
    jitter.py         time jitter (training only)
    augment.py, masking.py, speaker_shift.py   input perturbations and span masking (training only)
    conditioning.py   conv k3 + upsampling + speaker embedding, SpeakerTable
    decoders.py       decoder interface + registry DECODERS
    wavenet.py        WaveNet decoder with incremental generation
    fbank_decoder.py  fast non-autoregressive filterbank decoder
    autoencoder.py    AutoencoderConfig, SpeechAutoencoder, load_model_config
    checkpoint.py     reading checkpoints (weights_only); load_model -> ModelBundle for inference

Import from the submodules (nothing heavy happens on `import speechunits.models`).
"""
