"""The composed speech autoencoder (Chorowski et al. 2019) and its config.

    feats (B, T, F) --frequency warp, band and span masking (training only, optional)-->
        --encoder--> (B, T', C)                                    tap "encoder"
        --bottleneck projection--> (B, T', D)                      tap "projection"
        --quantise / sample--> latents (B, T', D)                  tap "bottleneck"
        --time jitter (training only)--> --conv k3--> (B, T', 128) tap "conditioning"
        --upsample to the decoder's rate, + speaker--> decoder --> reconstruction loss

All four taps share the latent frame shift (input frame shift x encoder stride)
and come back in every output, so probes, unit extraction and training never
reach into the modules. Taps are not detached: a probe must call `Tap.detach()`
(probes send no gradients into the model).

The upsampled conditioning is fitted to each target's length: latent frame j
covers target positions [j f, (j+1) f); positions past an utterance's last latent
frame (a target a little longer than the features cover, e.g. Kaldi's
snip_edges=true frames) repeat the last covered position. A target that
disagrees with the features by more than a few frames is an error (wrong frame
shift or sample rate, or mismatched utterances).

With `masking.prob > 0` and the `cluster` decoder the same composition is a masked
predictor (HuBERT's objective on a small convolutional encoder): spans of input
frames are replaced by a learned vector and the decoder predicts the k-means label
of every masked frame (models/masking.py, models/cluster_decoder.py).

The YAML form (pipelines/*.yaml) keeps the model under `model:`; the bottleneck's
and decoder's own settings are plain mappings (`bottleneck_cfg`, `decoder_cfg`)
checked against the chosen kind's config class and completed with its defaults,
so the saved config of an experiment lists every value used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from speechunits.config import from_dict, load_yaml, override_mapping
from speechunits.errors import SpeechUnitsError
from speechunits.models.bottleneck import build_bottleneck, resolve_bottleneck_config
from speechunits.models.common import Tap, as_lengths
from speechunits.models.conditioning import Conditioning, ConditioningConfig, SpeakerTable
from speechunits.models.decoders import build_decoder, resolve_decoder_config
from speechunits.models.encoder import Encoder, EncoderConfig
from speechunits.models.jitter import TimeJitter
from speechunits.models.adversary import SpeakerAdversary, SpeakerAdversaryConfig
from speechunits.models.augment import BandMasking, BandMaskingConfig, FrequencyWarp, WarpConfig
from speechunits.models.invariance import InvarianceConfig, two_view_loss
from speechunits.models.masking import MaskingConfig, SpanMasking
from speechunits.models.speaker_shift import SpeakerShift, SpeakerShiftConfig

__all__ = [
    "AutoencoderConfig",
    "SpeechAutoencoder",
    "AutoencoderOutput",
    "EncodeOutput",
    "GenerationOutput",
    "TAP_NAMES",
    "build_model",
    "load_model_config",
    "model_config_from_dict",
]

TAP_NAMES = ("encoder", "projection", "bottleneck", "conditioning")


@dataclass
class AutoencoderConfig:
    """The model part of an experiment config. Defaults = the paper's VQ WaveNet autoencoder."""

    input_dim: int = 0  # 0: from the input features' meta.json (training); 39 MFCC + d + dd, 80 log-mel, 1 waveform
    input_frame_shift: float = 0.01  # seconds; 1 / sample_rate for waveform input
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    bottleneck: str = "vq"
    bottleneck_cfg: dict = field(default_factory=dict)
    jitter: float = 0.12  # time-jitter probability (0 = off)
    masking: MaskingConfig = field(default_factory=MaskingConfig)  # input span masking (training only)
    warp: WarpConfig = field(default_factory=WarpConfig)  # vocal-tract-length perturbation of log-mel input (training only)
    band_masking: BandMaskingConfig = field(default_factory=BandMaskingConfig)  # SpecAugment's frequency masks, after the warp (training only)
    invariance: InvarianceConfig = field(default_factory=InvarianceConfig)  # two warped copies, one projection (training only)
    speaker_adversary: SpeakerAdversaryConfig = field(default_factory=SpeakerAdversaryConfig)  # a speaker classifier the projection must confuse (training only)
    speaker_shift: SpeakerShiftConfig = field(default_factory=SpeakerShiftConfig)  # crops re-voiced as other training speakers by cluster means (training only)
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    decoder: str = "wavenet"
    decoder_cfg: dict = field(default_factory=dict)
    speaker_conditioning: bool = True
    speakers: tuple[str, ...] = ()  # training speakers; index = embedding row (filled from the data)

    def __post_init__(self):
        self.speakers = tuple(self.speakers)
        try:
            self.bottleneck_cfg = resolve_bottleneck_config(self.bottleneck, self.bottleneck_cfg)
            self.decoder_cfg = resolve_decoder_config(self.decoder, self.decoder_cfg)
        except (KeyError, ValueError) as e:
            raise SpeechUnitsError(f"model config: {e.args[0] if e.args else e}") from None
        if not 0.0 <= self.jitter <= 1.0:
            raise SpeechUnitsError(f"model config: jitter must be in [0, 1], got {self.jitter}")
        if self.input_dim < 0:
            raise SpeechUnitsError(f"model config: input_dim must be >= 0 (0: from the features), got {self.input_dim}")
        if self.speaker_adversary.weight > 0 and not self.speaker_conditioning:
            raise SpeechUnitsError(
                "model config: the speaker adversary classifies the training speakers, which only a "
                "speaker-conditioned model records: set speaker_conditioning=true (or speaker_adversary.weight=0)"
            )
        if self.speaker_shift.prob > 0 and not (self.speaker_conditioning and self.decoder == "cluster"):
            raise SpeechUnitsError(
                "model config: speaker_shift moves frames by their speaker's and cluster's means, which needs "
                "the training speakers (speaker_conditioning=true) and cluster labels (decoder: cluster); "
                "set speaker_shift.prob=0 otherwise"
            )
        if self.invariance.weight > 0 and self.warp.max_log_factor <= 0:
            raise SpeechUnitsError(
                "model config: invariance.weight > 0 compares two differently warped copies of each crop; "
                "set warp.max_log_factor > 0 (or invariance.weight=0)"
            )

    @property
    def n_speakers(self) -> int:
        return len(self.speakers) if self.speaker_conditioning else 0

    @property
    def latent_frame_shift(self) -> float:
        return self.input_frame_shift * self.encoder.total_stride


@dataclass
class AutoencoderOutput:
    """loss: total = recon_loss + sum of weighted bottleneck losses (scalar).
    recon_loss: decoder loss (nats per sample for WaveNet, MSE/L1 per bin for fbank).
    bottleneck_losses: raw bottleneck terms; loss_weights their weights.
    taps: TAP_NAMES -> Tap (B, T', C) at the latent rate.
    codes: (B, T') long (-1 on padding) for discrete bottlenecks, else None.
    lengths: (B,) latent lengths. predictions: decoder output (logits or frames).
    stats: detached scalars for logging (bottleneck statistics)."""

    loss: Tensor
    recon_loss: Tensor
    bottleneck_losses: dict[str, Tensor]
    loss_weights: dict[str, float]
    taps: dict[str, Tap]
    codes: Tensor | None
    lengths: Tensor
    predictions: Tensor
    stats: dict

    def scalars(self) -> dict[str, float]:
        """Everything worth logging, as Python floats (synchronises with the device)."""
        def num(v) -> float:
            return float(v.detach()) if isinstance(v, Tensor) else float(v)

        out = {"loss": num(self.loss), "recon": num(self.recon_loss)}
        out.update({k: num(v) for k, v in self.bottleneck_losses.items()})
        out.update({k: num(v) for k, v in self.stats.items()})
        return out


@dataclass
class EncodeOutput:
    """taps: TAP_NAMES -> Tap; codes (B, T') or None; lengths (B,); frame_shift (s)."""

    taps: dict[str, Tap]
    codes: Tensor | None
    lengths: Tensor
    frame_shift: float


@dataclass
class GenerationOutput:
    """values: (B, N) waveform or (B, T, F) frames; lengths (B,); rate: positions per second."""

    values: Tensor
    lengths: Tensor
    rate: float


class SpeechAutoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.input_dim < 1:
            raise SpeechUnitsError(
                "model.input_dim is 0 (unset: training takes it from the input features' meta.json); set it to "
                "build a model without training data"
            )
        if cfg.speaker_conditioning and not cfg.speakers:
            raise SpeechUnitsError(
                "speaker_conditioning is on but the config lists no speakers: set model.speakers from the "
                "training data (spk2utt), or set model.speaker_conditioning=false"
            )
        self.speaker_table = SpeakerTable(cfg.speakers if cfg.speaker_conditioning else ())
        self.warp = FrequencyWarp(cfg.input_dim, cfg.warp)
        self.band_masking = BandMasking(cfg.input_dim, cfg.band_masking)
        self.masking = SpanMasking(cfg.input_dim, cfg.masking)
        self.encoder = Encoder(cfg.input_dim, cfg.encoder, cfg.input_frame_shift)
        self.bottleneck = build_bottleneck(cfg.bottleneck, self.encoder.out_dim, cfg.bottleneck_cfg)
        self.jitter = TimeJitter(cfg.jitter)
        speaker_dim = cfg.conditioning.speaker_dim if cfg.n_speakers > 0 else 0
        self.decoder = build_decoder(cfg.decoder, cfg.decoder_cfg, cfg.conditioning.channels, speaker_dim)
        factor = cfg.latent_frame_shift * self.decoder.target_rate
        if abs(factor - round(factor)) > 1e-6 * max(1.0, factor) or round(factor) < 1:
            raise SpeechUnitsError(
                f"latent frame shift {cfg.latent_frame_shift:g} s is not a whole number of decoder steps "
                f"at {self.decoder.target_rate:g} Hz (factor {factor:g})"
            )
        self.upsample_factor = int(round(factor))
        self.conditioning = Conditioning(self.bottleneck.dim, cfg.conditioning, self.upsample_factor, cfg.n_speakers)
        self.speaker_shift = (
            SpeakerShift(len(cfg.speakers), cfg.decoder_cfg["num_classes"], cfg.input_dim, cfg.speaker_shift)
            if cfg.speaker_shift.prob > 0 else None
        )
        self.adversary = (
            SpeakerAdversary(self.bottleneck.dim, len(cfg.speakers), cfg.speaker_adversary)
            if cfg.speaker_adversary.weight > 0 else None
        )

    # ------------------------------------------------------------------ helpers
    @property
    def frame_shift(self) -> float:
        """Seconds between latent frames (all four taps)."""
        return self.encoder.frame_shift

    @property
    def discrete(self) -> bool:
        return bool(getattr(self.bottleneck, "discrete", False))

    def speaker_ids(self, names: Sequence[str]) -> Tensor:
        """Speaker names -> (B,) ids on the model's device; unknown names are an error."""
        return self.speaker_table.ids(names, device=next(self.parameters()).device)

    def _taps(self, enc, bn, cond_frames: Tensor) -> dict[str, Tap]:
        s = self.frame_shift
        return {
            "encoder": Tap(enc.values, enc.lengths, s),
            "projection": Tap(bn.projected, enc.lengths, s),
            "bottleneck": Tap(bn.latents, enc.lengths, s),
            "conditioning": Tap(cond_frames, enc.lengths, s),
        }

    def _fit(self, upsampled: Tensor, latent_lengths: Tensor, target_lengths: Tensor, n: int) -> Tensor:
        """(B, M, C) upsampled conditioning -> (B, n, C): position p of utterance b reads
        min(p, covered_b - 1), covered_b = latent_lengths[b] * f (see the module docstring)."""
        f = self.upsample_factor
        covered = latent_lengths * f
        slack = 3 * round(self.cfg.input_frame_shift * self.decoder.target_rate) + f
        bad = ((target_lengths - covered).abs() > slack) & (target_lengths > 0)
        if bool(bad.any()):
            b = int(bad.nonzero()[0, 0])
            raise SpeechUnitsError(
                f"target length {int(target_lengths[b])} does not match the features: their "
                f"{int(latent_lengths[b])} latent frames cover {int(covered[b])} positions at "
                f"{self.decoder.target_rate:g} Hz (batch item {b}); check frame shift and sample rate"
            )
        pos = torch.arange(n, device=upsampled.device)[None, :]
        idx = torch.minimum(pos, (covered[:, None] - 1).clamp_min(0))
        if upsampled.shape[1] == 0:
            return upsampled.new_zeros(upsampled.shape[0], n, upsampled.shape[2])
        idx = idx.clamp_max(upsampled.shape[1] - 1)
        return torch.gather(upsampled, 1, idx[..., None].expand(-1, -1, upsampled.shape[2]))

    def _masked_targets(self, target: Tensor, mask: Tensor) -> Tensor:
        """Labels (B, N) or (B, N, M) -> the same with every position whose centre lies in an
        unmasked input frame set to IGNORE_LABEL (mask: (B, T) at the input rate)."""
        from speechunits.models.cluster_decoder import IGNORE_LABEL

        per_frame = self.decoder.target_rate * self.cfg.input_frame_shift  # target positions per input frame
        pos = torch.arange(target.shape[1], device=target.device, dtype=torch.float64)
        frame = torch.floor((pos + 0.5) / per_frame).long().clamp_(0, mask.shape[1] - 1)
        unmasked = ~mask[:, frame]
        return target.masked_fill(unmasked[..., None] if target.dim() == 3 else unmasked, IGNORE_LABEL)

    def _input_rate_labels(self, target: Tensor, n_frames: int) -> Tensor:
        """Labels (B, N) at the decoder's rate (or (B, N, M): the first set) -> (B, n_frames)
        the label of the position under each input frame's centre (-1 past the labels' end)."""
        target = target[..., 0] if target.dim() == 3 else target
        per_frame = self.decoder.target_rate * self.cfg.input_frame_shift  # target positions per input frame
        frame = torch.arange(n_frames, device=target.device, dtype=torch.float64)
        pos = torch.floor((frame + 0.5) * per_frame).long()
        if target.shape[1] == 0:
            return target.new_full((target.shape[0], n_frames), -1)
        return target[:, pos.clamp_max(target.shape[1] - 1)].masked_fill((pos >= target.shape[1])[None, :], -1)

    def _decode(self, latents, lengths, speaker_ids, target, target_lengths):
        cond = self.conditioning(latents, lengths, speaker_ids)
        target_lengths = as_lengths(target, target_lengths)
        fitted = self._fit(cond.upsampled, lengths, target_lengths, target.shape[1])
        return cond, self.decoder(fitted, cond.speaker, target, target_lengths)

    # ------------------------------------------------------------------ training
    def forward(
        self,
        feats: Tensor,
        feat_lengths: Tensor | None = None,
        speaker_ids: Tensor | None = None,
        target: Tensor | None = None,
        target_lengths: Tensor | None = None,
    ) -> AutoencoderOutput:
        """feats: (B, T, F) (or (B, N) waveform), feat_lengths (B,), speaker_ids (B,) long,
        target: (B, N) waveform in [-1, 1] (wavenet), (B, T, F_out) frames (fbank), or (B, N) long
        labels (cluster; (B, N, M) with M label sets, one per head), target_lengths (B,) -> AutoencoderOutput."""
        if target is None:
            raise SpeechUnitsError("forward needs the reconstruction target; use encode() for features only")
        batch = feats.shape[0]
        if self.training and self.speaker_shift is not None and speaker_ids is not None:  # models/speaker_shift.py
            lengths = as_lengths(feats, feat_lengths)
            feats = self.speaker_shift(feats, lengths, speaker_ids, self._input_rate_labels(target, feats.shape[1]))
        two_views = self.training and self.cfg.invariance.weight > 0 and feats.dim() == 3
        if two_views:  # models/invariance.py: rows b and B + b are two warps of crop b, masked alike
            feats, feat_lengths, mask = self._two_views(feats, feat_lengths)
            speaker_ids = None if speaker_ids is None else speaker_ids.repeat(2)
            target = torch.cat([target, target])
            target_lengths = None if target_lengths is None else target_lengths.repeat(2)
        else:
            feats, mask = self.masking(self.band_masking(self.warp(feats)), feat_lengths)
        if mask is not None and self.decoder.target_kind == "labels" and self.cfg.masking.loss_on == "masked":
            target = self._masked_targets(target, mask)
        enc = self.encoder(feats, feat_lengths)
        bn = self.bottleneck(enc.values, enc.lengths)
        latents = self.jitter(bn.latents, enc.lengths)
        cond, dec = self._decode(latents, enc.lengths, speaker_ids, target, target_lengths)
        losses, weights = dict(bn.losses), dict(bn.loss_weights)
        loss = dec.loss + bn.weighted_loss()
        stats = dict(bn.stats)
        if self.training and self.adversary is not None and speaker_ids is not None:  # models/adversary.py
            adv = self.adversary(bn.projected, enc.lengths, speaker_ids)
            losses["speaker_classifier"], losses["speaker_confusion"] = adv.classifier, adv.confusion
            weights["speaker_classifier"], weights["speaker_confusion"] = 1.0, self.cfg.speaker_adversary.weight
            stats["speaker_accuracy"] = adv.accuracy
            loss = loss + adv.classifier + self.cfg.speaker_adversary.weight * adv.confusion
        if two_views:
            losses["invariance"] = two_view_loss(self.cfg.invariance, bn.projected[:batch], bn.projected[batch:], enc.lengths[:batch])
            weights["invariance"] = self.cfg.invariance.weight
            loss = loss + self.cfg.invariance.weight * losses["invariance"]
        first = slice(0, batch)  # outputs describe the caller's batch (the first copy)
        taps = {name: Tap(t.values[first], t.lengths[first], t.frame_shift) for name, t in self._taps(enc, bn, cond.frames).items()}
        return AutoencoderOutput(
            loss=loss,
            recon_loss=dec.loss,
            bottleneck_losses=losses,
            loss_weights=weights,
            taps=taps,
            codes=None if bn.codes is None else bn.codes[first],
            lengths=enc.lengths[first],
            predictions=dec.predictions[first],
            stats=stats,
        )

    def _two_views(self, feats: Tensor, feat_lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """feats (B, T, F) -> (2B, T, F) two independently warped (and band-masked) copies with
        one span mask (the same frames masked in both), lengths (2B,), mask (2B, T) or None."""
        lengths = as_lengths(feats, feat_lengths)
        views = self.band_masking(self.warp(torch.cat([feats, feats])))
        mask = None
        if self.masking.active:
            mask = self.masking.draw(lengths, feats.shape[1]).repeat(2, 1)
            views = self.masking.replace(views, mask)
        return views, lengths.repeat(2), mask

    # ------------------------------------------------------------------ inference
    def encode(self, feats: Tensor, feat_lengths: Tensor | None = None) -> EncodeOutput:
        """Units and taps without the decoder: inference behaviour (no jitter, no sampling,
        no codebook updates, no dropout) whatever the mode. feats (B, T, F) -> EncodeOutput."""
        enc = self.encoder(feats, feat_lengths, inference=True)
        bn = self.bottleneck.quantize(enc.values, enc.lengths)
        frames = self.conditioning.local(bn.latents, enc.lengths)
        return EncodeOutput(self._taps(enc, bn, frames), bn.codes, enc.lengths, self.frame_shift)

    @torch.no_grad()
    def generate(
        self,
        feats: Tensor,
        feat_lengths: Tensor | None = None,
        speaker_ids: Tensor | None = None,
        target_lengths: Tensor | None = None,
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> GenerationOutput:
        """Resynthesis: feats (B, T, F), speaker_ids (B,) (any training speaker: voice
        conversion) -> GenerationOutput with a (B, N) waveform (wavenet) or (B, T, F)
        frames (fbank). Output lengths default to latent_lengths * upsample factor."""
        enc = self.encoder(feats, feat_lengths, inference=True)
        bn = self.bottleneck.quantize(enc.values, enc.lengths)
        cond = self.conditioning(bn.latents, enc.lengths, speaker_ids)
        if target_lengths is None:
            target_lengths = enc.lengths * self.upsample_factor
        target_lengths = target_lengths.to(enc.lengths.device)
        n = int(target_lengths.max()) if target_lengths.numel() else 0
        fitted = self._fit(cond.upsampled, enc.lengths, target_lengths, n)
        values = self.decoder.generate(
            fitted, cond.speaker, target_lengths, temperature=temperature, greedy=greedy, generator=generator
        )
        return GenerationOutput(values, target_lengths, self.decoder.target_rate)

    @torch.no_grad()
    def latent_usage(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        """Does the decoder use the latents? Reconstruction loss with the true latents,
        with all latents zeroed, and with latents shuffled across the batch (utterance b
        gets utterance b-1's; a batch of one gets its own latents rotated by half their
        length). A decoder that ignores its latents (silent collapse) scores the same on
        all three. `batch` holds forward()'s keyword arguments. Runs with inference
        behaviour."""
        was_training = self.training
        self.eval()
        try:
            enc = self.encoder(batch["feats"], batch.get("feat_lengths"))
            bn = self.bottleneck.quantize(enc.values, enc.lengths)
            args = (batch.get("speaker_ids"), batch["target"], batch.get("target_lengths"))
            true = self._decode(bn.latents, enc.lengths, *args)[1].loss
            zero = self._decode(torch.zeros_like(bn.latents), enc.lengths, *args)[1].loss
            if bn.latents.shape[0] > 1:
                wrong = torch.roll(bn.latents, 1, dims=0)
            else:  # one utterance: its latents from half its length away
                wrong = torch.roll(bn.latents, max(1, int(enc.lengths[0]) // 2), dims=1)
            shuffled = float(self._decode(wrong, enc.lengths, *args)[1].loss)
        finally:
            self.train(was_training)
        true, zero = float(true), float(zero)
        return {
            "recon_true": true,
            "recon_zero": zero,
            "recon_shuffled": shuffled,
            "gap_zero": zero - true,
            "gap_shuffled": shuffled - true,
        }

    # ------------------------------------------------------------------ usage accounting
    def reset_usage(self) -> None:
        self.bottleneck.reset_usage()

    def usage_stats(self) -> dict[str, float]:
        return self.bottleneck.usage_stats()


def build_model(cfg: AutoencoderConfig) -> SpeechAutoencoder:
    return SpeechAutoencoder(cfg)


def _strip_model_prefix(items: Iterable[str]) -> list[str]:
    return [item[len("model.") :] if item.startswith("model.") else item for item in items]


def load_model_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> AutoencoderConfig:
    """The `model:` section of a pipeline YAML as an AutoencoderConfig, with dotted
    overrides applied ("encoder.channels=256" or "model.encoder.channels=256")."""
    data = load_yaml(path)
    if "model" not in data or not isinstance(data["model"], dict):
        raise SpeechUnitsError(f"{path}: no 'model:' section")
    return model_config_from_dict(data["model"], overrides, where=str(path))


def model_config_from_dict(data: dict, overrides: Iterable[str] = (), where: str = "model") -> AutoencoderConfig:
    """An AutoencoderConfig from a `model:` mapping plus dotted overrides.

    Overrides are applied to the mapping before it is checked, so switching the
    bottleneck or decoder kind works as long as its settings are switched too."""
    try:
        data = override_mapping(data, _strip_model_prefix(overrides))
        return from_dict(AutoencoderConfig, data, where="model")
    except (KeyError, ValueError, TypeError) as e:
        raise SpeechUnitsError(f"{where}: {e.args[0] if e.args else e}") from None
