"""WaveNet decoder: an autoregressive model of mu-law samples (van den Oord et al. 2016).

Architecture (paper default: 2 cycles of dilations 1, 2, ..., 512 = 20 layers,
kernel 2, receptive field 2047 samples = 128 ms at 16 kHz, 256-way softmax):

    input      previous sample's mu-law code -> embedding (R channels)
    layer l    z = W_l * [h(t - d_l), h(t)] + V_l c(t) + U_l s        (2G channels)
               g = tanh(z_a) * sigmoid(z_b)                             (gated, G)
               h <- h + A_l g   (residual, R);   skip += B_l g          (skip, S)
    output     logits = W_2 relu(W_1 relu(skip))                        (Q = 256)

c(t) is the local conditioning at the sample rate (the upsampled latents), s the
global conditioning (speaker embedding). The paper fixes neither R, G nor S for
this decoder; 256 each is our default.

Teacher forcing: the input at step t is the code of sample t-1 (the first input is
the code of silence, mu-law of 0), so the logits at t depend on samples < t only
(causal convolutions pad on the left).

Generation runs the same network one sample at a time with a queue per layer
holding its last d_l inputs (fast-WaveNet, Paine et al. 2016): a step costs
O(layers) instead of a pass over the whole prefix, and gives the same logits as the
full forward pass (tests check this to 1e-5). Sampling draws u ~ U(0, 1) once per
utterance and step from the caller's generator and inverts the CDF of
softmax(logits / temperature), or takes the argmax (`greedy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import as_lengths, length_mask, masked_mean
from speechunits.models.decoders import DECODERS, Decoder, DecoderOutput
from speechunits.models.mulaw import mulaw_decode, mulaw_encode

__all__ = [
    "WaveNetConfig",
    "WaveNet",
    "WaveNetDecoder",
    "IncrementalWaveNet",
    "sample_codes",
    "shift_right",
    "silence_code",
]


@dataclass
class WaveNetConfig:
    sample_rate: int = 16000
    quantization_channels: int = 256
    residual_channels: int = 256
    gate_channels: int = 256  # per half: the dilated conv outputs 2 x gate_channels
    skip_channels: int = 256
    cycles: int = 2
    layers_per_cycle: int = 10  # dilations 1, 2, 4, ..., 2^(layers_per_cycle - 1)

    def __post_init__(self):
        if self.cycles < 1 or self.layers_per_cycle < 1:
            raise SpeechUnitsError("wavenet needs cycles >= 1 and layers_per_cycle >= 1")

    @property
    def dilations(self) -> list[int]:
        return [2**i for i in range(self.layers_per_cycle)] * self.cycles

    @property
    def receptive_field(self) -> int:
        """Input positions the logits at one step see (kernel 2: 1 + sum of dilations)."""
        return 1 + sum(self.dilations)


def silence_code(quantization_channels: int = 256) -> int:
    """The mu-law code of a zero sample (128 for 256 levels)."""
    return int(mulaw_encode(torch.zeros(()), quantization_channels))


def shift_right(codes: Tensor, first: int) -> Tensor:
    """codes (B, N) -> teacher-forcing inputs (B, N): [first, codes[:, :-1]]."""
    return torch.cat([codes.new_full((codes.shape[0], 1), first), codes[:, :-1]], dim=1)


def sample_codes(
    logits: Tensor, temperature: float = 1.0, greedy: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    """logits (B, Q) -> (B,) long codes: argmax, or an inverse-CDF draw from softmax(logits / T)."""
    if greedy or temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    cdf = probs.cumsum(-1)
    if generator is not None:
        u = torch.rand(logits.shape[0], 1, generator=generator, device=generator.device, dtype=torch.float64)
        u = u.to(logits.device)
    else:
        u = torch.rand(logits.shape[0], 1, device=logits.device, dtype=torch.float64)
    u = u * cdf[:, -1:]  # guards against a total a hair below 1
    return torch.searchsorted(cdf, u).squeeze(1).clamp_(max=logits.shape[-1] - 1)


class _ResidualLayer(nn.Module):
    def __init__(self, cfg: WaveNetConfig, dilation: int, cond_dim: int, global_dim: int):
        super().__init__()
        R, G, S = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels
        self.dilation, self.R = dilation, R
        self.dilated = nn.Conv1d(R, 2 * G, 2, dilation=dilation)
        self.cond = nn.Conv1d(cond_dim, 2 * G, 1, bias=False) if cond_dim > 0 else None
        self.glob = nn.Linear(global_dim, 2 * G, bias=False) if global_dim > 0 else None
        self.out = nn.Conv1d(G, R + S, 1)

    def forward(self, h: Tensor, cond: Tensor | None, glob: Tensor | None) -> tuple[Tensor, Tensor]:
        """h: (B, R, N), cond: (B, C, N), glob: (B, S_g) -> new h (B, R, N), skip (B, S, N)."""
        z = self.dilated(F.pad(h, (self.dilation, 0)))
        if self.cond is not None and cond is not None:
            z = z + self.cond(cond)
        if self.glob is not None and glob is not None:
            z = z + self.glob(glob)[:, :, None]
        a, b = z.chunk(2, dim=1)
        o = self.out(torch.tanh(a) * torch.sigmoid(b))
        return h + o[:, : self.R], o[:, self.R :]


class WaveNet(nn.Module):
    """The network; see the module docstring."""

    def __init__(self, cfg: WaveNetConfig, cond_dim: int = 0, global_dim: int = 0):
        super().__init__()
        self.cfg, self.cond_dim, self.global_dim = cfg, int(cond_dim), int(global_dim)
        Q, R, S = cfg.quantization_channels, cfg.residual_channels, cfg.skip_channels
        self.embed = nn.Embedding(Q, R)
        self.layers = nn.ModuleList(_ResidualLayer(cfg, d, cond_dim, global_dim) for d in cfg.dilations)
        self.head1 = nn.Conv1d(S, S, 1)
        self.head2 = nn.Conv1d(S, Q, 1)

    @property
    def receptive_field(self) -> int:
        return self.cfg.receptive_field

    def forward(self, inputs: Tensor, cond: Tensor | None = None, glob: Tensor | None = None) -> Tensor:
        """inputs: (B, N) long codes of the previous samples (already shifted),
        cond: (B, N, C) local conditioning, glob: (B, S_g) -> logits (B, N, Q)."""
        self._check(cond, glob)
        h = self.embed(inputs).transpose(1, 2)
        c = cond.transpose(1, 2) if cond is not None else None
        skip = None
        for layer in self.layers:
            h, s = layer(h, c, glob)
            skip = s if skip is None else skip + s
        out = self.head2(F.relu(self.head1(F.relu(skip))))
        return out.transpose(1, 2)

    def _check(self, cond: Tensor | None, glob: Tensor | None) -> None:
        if self.cond_dim > 0 and cond is None:
            raise SpeechUnitsError("this WaveNet is locally conditioned: pass cond (B, N, C)")
        if self.global_dim > 0 and glob is None:
            raise SpeechUnitsError("this WaveNet is globally conditioned: pass glob (B, S)")

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        n_samples: int,
        cond: Tensor | None = None,
        glob: Tensor | None = None,
        batch_size: int | None = None,
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Incremental generation: cond (B, N, C), glob (B, S) -> codes (B, N) long."""
        state = IncrementalWaveNet(self, cond, glob, batch_size)
        x = torch.full((state.batch,), silence_code(self.cfg.quantization_channels), dtype=torch.long, device=state.device)
        out = torch.empty(state.batch, n_samples, dtype=torch.long, device=state.device)
        for t in range(n_samples):
            logits = state.step(x)
            x = sample_codes(logits, temperature, greedy, generator)
            out[:, t] = x
        return out

    @torch.no_grad()
    def generate_naive(
        self,
        n_samples: int,
        cond: Tensor | None = None,
        glob: Tensor | None = None,
        batch_size: int | None = None,
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        window: int | None = None,
    ) -> Tensor:
        """Reference generation: a full forward pass over the prefix at every step.

        With `window`, only the last `window` inputs are fed (exact when window >=
        receptive_field). O(N^2) (or O(N * window)); for tests and benchmarks.
        """
        self._check(cond, glob)
        B = cond.shape[0] if cond is not None else glob.shape[0] if glob is not None else (batch_size or 1)
        device = next(self.parameters()).device
        first = silence_code(self.cfg.quantization_channels)
        inputs = torch.full((B, n_samples), first, dtype=torch.long, device=device)
        out = torch.empty(B, n_samples, dtype=torch.long, device=device)
        for t in range(n_samples):
            start = 0 if window is None else max(0, t + 1 - window)
            c = cond[:, start : t + 1] if cond is not None else None
            logits = self.forward(inputs[:, start : t + 1], c, glob)[:, -1]
            code = sample_codes(logits, temperature, greedy, generator)
            out[:, t] = code
            if t + 1 < n_samples:
                inputs[:, t + 1] = code
        return out


class IncrementalWaveNet:
    """One-sample-at-a-time evaluation of a `WaveNet` with per-layer input queues.

    Layer l keeps its last d_l inputs in a ring buffer (d_l, B, R); step t reads
    slot t mod d_l (the input at t - d_l, zeros before the start, as the causal
    padding of the full pass) and then stores the current input there. The weights
    are rearranged once into matrices so a step is a handful of (B x .) matmuls.
    Local conditioning is projected for all layers at once in chunks of steps.
    """

    def __init__(self, net: WaveNet, cond: Tensor | None, glob: Tensor | None, batch_size: int | None = None):
        net._check(cond, glob)
        p = next(net.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.net, self.cfg = net, net.cfg
        B = cond.shape[0] if cond is not None else glob.shape[0] if glob is not None else (batch_size or 1)
        self.batch = B
        cfg = net.cfg
        R, G, S = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels
        self.R, self.G, self.S = R, G, S
        L = len(net.layers)
        self.t = 0
        self.dilations = list(cfg.dilations)
        self.queues = [torch.zeros(d, B, R, device=self.device, dtype=self.dtype) for d in self.dilations]
        # Rearranged weights: conv weight (2G, R, 2): tap 0 multiplies h(t - d), tap 1 h(t).
        self.w_past = [layer.dilated.weight[:, :, 0].t().contiguous() for layer in net.layers]  # (R, 2G)
        self.w_now = [layer.dilated.weight[:, :, 1].t().contiguous() for layer in net.layers]
        self.w_res = [layer.out.weight[:R, :, 0].t().contiguous() for layer in net.layers]  # (G, R)
        self.b_res = [layer.out.bias[:R] for layer in net.layers]
        self.w_skip = torch.cat([layer.out.weight[R:, :, 0].t() for layer in net.layers], 0).contiguous()  # (L G, S)
        self.b_skip = sum(layer.out.bias[R:] for layer in net.layers)
        bias = torch.stack([layer.dilated.bias for layer in net.layers])  # (L, 2G)
        bias = bias[None].expand(B, L, 2 * G).clone()
        if glob is not None and net.global_dim > 0:
            bias += torch.stack([layer.glob(glob) for layer in net.layers], 1)
        self.bias = bias.reshape(B, L * 2 * G)
        self.cond = cond
        if cond is not None and net.cond_dim > 0:
            self.w_cond = torch.cat([layer.cond.weight[:, :, 0].t() for layer in net.layers], 1).contiguous()  # (C, L 2G)
        else:
            self.w_cond = None
        self.chunk = max(1, min(1024, (1 << 22) // max(1, B * L * 2 * G)))
        self._cond_chunk: Tensor | None = None
        self._chunk_start = -1
        self.gates = torch.empty(B, L, G, device=self.device, dtype=self.dtype)
        self.head1_w = net.head1.weight[:, :, 0].t().contiguous()
        self.head1_b = net.head1.bias
        self.head2_w = net.head2.weight[:, :, 0].t().contiguous()
        self.head2_b = net.head2.bias

    def _step_bias(self, t: Tensor | int) -> Tensor:
        """(B, L, 2G) conv bias + global + local conditioning contributions at step t."""
        L, G2 = len(self.dilations), 2 * self.G
        if self.w_cond is None:
            return self.bias.view(self.batch, L, G2)
        if not (self._chunk_start <= t < self._chunk_start + self.chunk) or self._cond_chunk is None:
            start = t
            c = self.cond[:, start : start + self.chunk].to(self.dtype)
            if c.shape[1] == 0:
                raise SpeechUnitsError(f"generation ran past the conditioning ({self.cond.shape[1]} samples)")
            self._cond_chunk = torch.matmul(c, self.w_cond) + self.bias[:, None, :]  # (B, K, L 2G)
            self._chunk_start = start
        return self._cond_chunk[:, t - self._chunk_start].view(self.batch, L, G2)

    @torch.no_grad()
    def step(self, inputs: Tensor) -> Tensor:
        """inputs: (B,) long code of the previous sample -> logits (B, Q) for this step."""
        t = self.t
        zb = self._step_bias(t)
        h = self.net.embed(inputs.to(self.device))
        G = self.G
        n_layers = len(self.dilations)
        for l, d in enumerate(self.dilations):
            slot = t % d
            queue = self.queues[l]
            z = torch.addmm(zb[:, l], queue[slot], self.w_past[l])
            z.addmm_(h, self.w_now[l])
            queue[slot].copy_(h)
            g = self.gates[:, l]
            torch.mul(torch.tanh(z[:, :G]), torch.sigmoid(z[:, G:]), out=g)
            if l < n_layers - 1:  # the last layer's residual output is never used
                h = torch.addmm(self.b_res[l], g, self.w_res[l]).add_(h)
        skip = torch.addmm(self.b_skip, self.gates.view(self.batch, -1), self.w_skip)
        hid = torch.addmm(self.head1_b, F.relu(skip), self.head1_w)
        logits = torch.addmm(self.head2_b, F.relu(hid), self.head2_w)
        self.t += 1
        return logits


@DECODERS.register("wavenet")
class WaveNetDecoder(Decoder):
    """Waveform decoder: mu-law cross-entropy with teacher forcing; sampling at inference."""

    config_class = WaveNetConfig
    target_kind = "waveform"

    def __init__(self, cfg: WaveNetConfig, cond_dim: int, speaker_dim: int):
        super().__init__()
        self.cfg = cfg
        self.net = WaveNet(cfg, cond_dim, speaker_dim)
        self.first = silence_code(cfg.quantization_channels)

    @property
    def target_rate(self) -> float:
        return float(self.cfg.sample_rate)

    def forward(self, cond: Tensor, speaker: Tensor | None, target: Tensor, target_lengths: Tensor | None = None) -> DecoderOutput:
        """cond (B, N, C), speaker (B, S), target (B, N) waveform in [-1, 1] -> DecoderOutput
        with logits (B, N, Q) and the cross-entropy in nats per valid sample."""
        if target.dim() == 3 and target.shape[-1] == 1:
            target = target.squeeze(-1)
        lengths = as_lengths(target, target_lengths)
        codes = mulaw_encode(target, self.cfg.quantization_channels)
        logits = self.net(shift_right(codes, self.first), cond, speaker)
        ce = F.cross_entropy(logits.transpose(1, 2).float(), codes, reduction="none")  # (B, N)
        loss = masked_mean(ce, length_mask(lengths, codes.shape[1]))
        return DecoderOutput(loss=loss, predictions=logits, lengths=lengths)

    @torch.no_grad()
    def generate(
        self,
        cond: Tensor,
        speaker: Tensor | None,
        lengths: Tensor,
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """cond (B, N, C), speaker (B, S), lengths (B,) -> waveform (B, N), zero past lengths."""
        n = int(lengths.max()) if lengths.numel() else 0
        codes = self.net.generate(n, cond[:, :n], speaker, cond.shape[0], temperature, greedy, generator)
        wav = mulaw_decode(codes, self.cfg.quantization_channels)
        return wav * length_mask(lengths.to(wav.device), n).to(wav.dtype)

