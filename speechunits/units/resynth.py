"""Units -> audio through the model's decoder; voice conversion by swapping the speaker.

    rs = Resynthesizer.from_checkpoint("exp/vqvae/best.pt")
    seqs = read_units("units/test")                        # {utt: UnitSequence}
    out = rs.synthesize(list(seqs.values())[:4], speaker="spk03")
    out[0].waveform, out[0].sample_rate                      # (N,) float32, 16000

Units become latents by codebook lookup, frame by frame (each unit repeated for
its duration): exactly the bottleneck output the decoder saw for those codes.
The conditioning stack and the decoder then run as in `SpeechAutoencoder.generate`,
with the speaker embedding of any training speaker: units extracted from one
speaker's audio and decoded with another's embedding is voice conversion.

- WaveNet decoder: incremental (fast-WaveNet) sampling of 16 kHz mu-law samples,
  batched over utterances (`temperature`, `greedy`, a seeded generator).
- Filterbank decoder: the predicted log-mel frames (`Synthesis.frames`) are made
  audible by Griffin-Lim mel inversion (speechunits/units/vocoder.py), a rough
  vocoder: intelligible at best, never natural.

Output length: latent frames x latent shift, i.e. sum(durations) * 320 samples at
16 kHz for 50 Hz latents. Continuous bottlenecks (ae, vae) have no units; pass
their latents (the "bottleneck" tap of `speechunits extract`) to
`synthesize_latents` instead.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from speechunits.config import from_dict
from speechunits.errors import SpeechUnitsError
from speechunits.frontends.fbank import FbankConfig
from speechunits.frontends.pipeline import FeaturePipelineConfig, feature_preset
from speechunits.models.autoencoder import SpeechAutoencoder
from speechunits.units.formats import UnitSequence
from speechunits.units.vocoder import GriffinLimConfig, invert_log_mel

log = logging.getLogger(__name__)

__all__ = ["Synthesis", "Resynthesizer", "target_features_of_run"]


@dataclass
class Synthesis:
    """waveform: (N,) float32 in [-1, 1] at sample_rate; frames: (T, F) predicted frames
    (filterbank decoder only, else None); vocoder: how the waveform was made."""

    waveform: np.ndarray
    sample_rate: int
    frames: np.ndarray | None
    vocoder: str


def target_features_of_run(experiment_config: dict) -> FeaturePipelineConfig | None:
    """The filterbank decoder's target features of a training run (its experiment config as
    plain data, a checkpoint's "config"): the pipeline recorded in its target feature dir's
    meta.json (data.target_feats), when that folder is at hand."""
    data = experiment_config.get("data") if isinstance(experiment_config, dict) else None
    folder = (data.get("target_feats") or "") if isinstance(data, dict) else ""
    if not folder:
        return None
    meta = Path(folder) / "meta.json"
    if Path(folder).suffix == ".scp":
        meta = Path(folder).parent / "meta.json"
    if not meta.is_file():
        return None
    try:
        pipeline = json.loads(meta.read_text()).get("pipeline")
        return from_dict(FeaturePipelineConfig, pipeline, where=str(meta)) if pipeline else None
    except (ValueError, TypeError, KeyError, json.JSONDecodeError):
        return None


class Resynthesizer:
    """Decode units (or latents) to audio with a trained autoencoder; see the module docstring.

    target_features: what the filterbank decoder was trained to predict (for the
    Griffin-Lim inversion); default: an 80-bin Kaldi fbank like the `fbank` preset
    with the decoder's number of bins."""

    def __init__(
        self,
        model: SpeechAutoencoder,
        device: str | torch.device | None = None,
        target_features: FeaturePipelineConfig | None = None,
        griffin_lim: GriffinLimConfig | None = None,
    ):
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device)
        self.griffin_lim = griffin_lim or GriffinLimConfig()
        self.kind = model.decoder.target_kind  # "waveform" or "frames"
        self._fbank: FbankConfig | None = None
        self._normalize = False
        if self.kind == "frames":
            self._set_target(target_features)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu", **options) -> "Resynthesizer":
        from speechunits.models.checkpoint import load_model

        bundle = load_model(path, device=device)
        if "target_features" not in options:
            target = target_features_of_run(bundle.config)
            inp = bundle.input_features
            if target is None and inp is not None and inp.frontend == "fbank":
                target = inp  # the usual set-up: log-mel in, the same log-mel out
            options["target_features"] = target
        return cls(bundle.model, device=device, **options)

    def _set_target(self, target: FeaturePipelineConfig | None) -> None:
        out_dim = int(self.model.decoder.cfg.out_dim)
        if target is None:
            target = feature_preset("fbank", [f"frontend_config.mel_opts.num_bins={out_dim}"])
            log.warning("the filterbank decoder's target features are unknown: assuming a Kaldi fbank with %d bins "
                        "(the fbank preset)", out_dim)
        if target.frontend != "fbank":
            raise SpeechUnitsError(f"the Griffin-Lim vocoder inverts log-mel fbank frames, not {target.frontend!r}")
        fb = from_dict(FbankConfig, target.frontend_config or {}, where="target features")
        static = fb.mel_opts.num_bins + int(fb.use_energy)  # the statics come first (then any deltas)
        if out_dim not in (static, static * (target.deltas + 1)):
            raise SpeechUnitsError(
                f"target features have {fb.mel_opts.num_bins} mel bins, the decoder predicts {out_dim} values per frame"
            )
        self._fbank = fb
        self._normalize = target.cmvn != "none"
        if self._normalize:
            log.warning("the filterbank decoder predicts CMVN-normalised frames: their level is unknown, the "
                        "Griffin-Lim output is peak-normalised")

    # ------------------------------------------------------------------ properties
    @property
    def speakers(self) -> list[str]:
        return list(self.model.speaker_table.names)

    @property
    def sample_rate(self) -> int:
        if self.kind == "waveform":
            return int(self.model.decoder.target_rate)
        return int(self._fbank.frame_opts.samp_freq)

    @property
    def frame_shift(self) -> float:
        return self.model.frame_shift

    @property
    def vocoder(self) -> str:
        return "wavenet" if self.kind == "waveform" else "griffin-lim (rough)"

    # ------------------------------------------------------------------ units -> latents
    def latents(self, seq: UnitSequence) -> Tensor:
        """One utterance's units -> its latents (T', D): codebook vectors, each unit repeated
        for its duration."""
        bottleneck = self.model.bottleneck
        codebook = getattr(bottleneck, "codebook", None)
        if codebook is None:
            raise SpeechUnitsError(
                f"the {self.model.cfg.bottleneck} bottleneck is continuous: it has no units to decode; "
                "resynthesise from its latents (the bottleneck tap of `speechunits extract`)"
            )
        if seq.shift is not None and abs(seq.shift - self.frame_shift) > 1e-9:
            raise SpeechUnitsError(
                f"utterance {seq.utt}: units at {seq.shift:g} s per frame, the model's latents are at "
                f"{self.frame_shift:g} s (units from another model?)"
            )
        codes = torch.as_tensor(seq.frame_codes(), dtype=torch.long, device=self.device)
        if codes.numel() == 0:
            raise SpeechUnitsError(f"utterance {seq.utt}: no units")
        bad = (codes < 0) | (codes >= codebook.size)
        if bool(bad.any()):
            raise SpeechUnitsError(
                f"utterance {seq.utt}: unit {int(codes[bad][0])} is outside the codebook (0..{codebook.size - 1})"
            )
        return codebook.lookup(codes).float()

    def _speaker_ids(self, speaker: str | None, batch: int) -> Tensor | None:
        table = self.model.speaker_table
        if len(table) == 0:
            if speaker is not None:
                raise SpeechUnitsError("this model is not conditioned on the speaker: drop the speaker")
            return None
        if speaker is None:
            raise SpeechUnitsError(f"name a speaker to resynthesise with; the model knows {', '.join(table.names)}")
        return self.model.speaker_ids([speaker] * batch)

    # ------------------------------------------------------------------ synthesis
    def synthesize(
        self,
        seqs: Sequence[UnitSequence],
        speaker: str | None = None,
        *,
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> list[Synthesis]:
        """Units of several utterances, decoded together (one batch) with `speaker`'s voice."""
        return self.synthesize_latents([self.latents(s) for s in seqs], speaker, temperature=temperature,
                                       greedy=greedy, generator=generator)

    @torch.no_grad()
    def synthesize_latents(
        self,
        latents: Sequence[Tensor | np.ndarray],
        speaker: str | None = None,
        *,
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> list[Synthesis]:
        """Latents (T'_b, D) of several utterances -> one Synthesis each (one padded batch)."""
        if not latents:
            return []
        model = self.model
        lat = [torch.as_tensor(x, dtype=torch.float32, device=self.device) for x in latents]
        lengths = torch.tensor([x.shape[0] for x in lat], dtype=torch.long, device=self.device)
        batch = torch.nn.utils.rnn.pad_sequence(lat, batch_first=True)
        if batch.shape[-1] != model.bottleneck.dim:
            raise SpeechUnitsError(f"latents have {batch.shape[-1]} dims, the bottleneck {model.bottleneck.dim}")
        cond = model.conditioning(batch, lengths, self._speaker_ids(speaker, len(lat)))
        target_lengths = lengths * model.upsample_factor
        n = int(target_lengths.max())
        values = model.decoder.generate(
            cond.upsampled[:, :n], cond.speaker, target_lengths, temperature=temperature, greedy=greedy,
            generator=generator,
        )
        out = []
        for b, m in enumerate(target_lengths.tolist()):
            if self.kind == "waveform":
                wav = values[b, :m].float().cpu().numpy()
                out.append(Synthesis(wav, self.sample_rate, None, self.vocoder))
            else:
                frames = values[b, :m].float().cpu().numpy()
                num_bins = self._fbank.mel_opts.num_bins
                first = 1 if (self._fbank.use_energy and not self._fbank.htk_compat) else 0
                fb = FbankConfig(frame_opts=self._fbank.frame_opts, mel_opts=self._fbank.mel_opts,
                                 use_log_fbank=self._fbank.use_log_fbank, use_power=self._fbank.use_power)
                wav = invert_log_mel(frames[:, first : first + num_bins], fb, self.griffin_lim, self._normalize)
                out.append(Synthesis(wav, self.sample_rate, frames, self.vocoder))
        return out
