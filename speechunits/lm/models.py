"""Unit language models: a causal transformer (with a KV cache) and an LSTM baseline.

    model = build_lm(UnitLMConfig(kind="transformer", vocab_size=64))
    out = model(tokens, targets)                     # LMOutput: loss, nll_sum, count, stats
    h, cache = model.hidden(tokens)                  # (B, T, D), the state after the last token
    h2, cache = model.hidden(next_tokens, cache=cache)   # incremental: equals recomputing

Tokens: unit ids 0..V-1 and one boundary token `bos = V` that starts every sequence
and, as a prediction target, ends it (EOS). The output layer predicts V + 1
outcomes (the units and the end). With `durations=True` each input token also
carries a duration class (0 for the boundary, else min(d, max_duration) - 1) and a
second head predicts the duration class of the next unit from the hidden state and
that unit's embedding: p(u_t, d_t | past) = p(u_t | past) p(d_t | past, u_t).

Targets equal to IGNORE (-100) are padding. Every model keeps `mean_durations`
(V,) (latent frames per unit in the training data), which sampling uses to give
units a length when the model has no duration channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.registry import Registry
from speechunits.errors import ConfigError

__all__ = ["UnitLMConfig", "UNIT_LMS", "UnitLM", "TransformerLM", "LSTMLM", "LMOutput", "build_lm", "IGNORE"]

UNIT_LMS = Registry("unit LM")
IGNORE = -100


@dataclass
class UnitLMConfig:
    """kind: a UNIT_LMS name (transformer | lstm). vocab_size: unit ids 0..V-1 (0: the
    trainer fills it from the training units, max id + 1). heads, ff_dim, max_len:
    transformer only (max_len bounds the context; longer sequences are scored with
    sliding windows). durations: the optional duration channel (classes 1..max_duration)."""

    kind: str = "transformer"
    vocab_size: int = 0
    dim: int = 256
    layers: int = 4
    heads: int = 4
    ff_dim: int = 1024
    dropout: float = 0.1
    max_len: int = 1024
    durations: bool = False
    max_duration: int = 16
    tie_embeddings: bool = True

    def __post_init__(self):
        if self.dim < 1 or self.layers < 1:
            raise ConfigError("model.dim and model.layers must be >= 1")
        if self.kind == "transformer" and self.dim % self.heads:
            raise ConfigError(f"model.dim ({self.dim}) must be a multiple of model.heads ({self.heads})")
        if self.max_duration < 1:
            raise ConfigError("model.max_duration must be >= 1")


@dataclass
class LMOutput:
    """loss: mean NLL per target (units, plus durations when modelled), nats.
    nll_sum, dur_nll_sum: summed over the targets; count: number of unit targets.
    stats: detached scalars for the training log (nll, dur_nll, accuracy)."""

    loss: Tensor
    nll_sum: Tensor
    dur_nll_sum: Tensor
    count: Tensor
    stats: dict = field(default_factory=dict)


class UnitLM(nn.Module):
    """What every unit LM shares: embeddings, output heads, the loss, scoring helpers.
    Subclasses implement `_body(x, cache) -> (h, cache)` and `max_context`."""

    def __init__(self, cfg: UnitLMConfig):
        super().__init__()
        if cfg.vocab_size < 1:
            raise ConfigError("model.vocab_size must be set (>= 1) before the model is built")
        self.cfg = cfg
        self.vocab_size = cfg.vocab_size
        self.bos = cfg.vocab_size
        self.embed = nn.Embedding(cfg.vocab_size + 1, cfg.dim)
        self.dur_embed = nn.Embedding(cfg.max_duration + 1, cfg.dim) if cfg.durations else None
        self.norm_out = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab_size + 1, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        if cfg.durations:
            self.dur_head = nn.Sequential(nn.Linear(2 * cfg.dim, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.max_duration))
        else:
            self.dur_head = None
        self.drop = nn.Dropout(cfg.dropout)
        self.register_buffer("mean_durations", torch.ones(cfg.vocab_size))

    # -- pieces ---------------------------------------------------------------------
    @property
    def max_context(self) -> int | None:
        """The longest sequence one forward pass may see (None: unbounded)."""
        return None

    def new_cache(self):
        return None

    def _body(self, x: Tensor, cache):
        raise NotImplementedError

    def embed_tokens(self, tokens: Tensor, dur_classes: Tensor | None) -> Tensor:
        """tokens (B, T) long, dur_classes (B, T) long or None -> (B, T, D)."""
        x = self.embed(tokens)
        if self.dur_embed is not None:
            if dur_classes is None:
                dur_classes = torch.zeros_like(tokens)
            x = x + self.dur_embed(dur_classes)
        return x

    def hidden(self, tokens: Tensor, dur_classes: Tensor | None = None, cache=None):
        """tokens (B, T) -> (h (B, T, D) after the final norm, cache holding the state after
        the last token). With a cache from an earlier call, continues that sequence."""
        h, cache = self._body(self.drop(self.embed_tokens(tokens, dur_classes)), cache)
        return self.norm_out(h), cache

    def unit_logits(self, h: Tensor) -> Tensor:
        """h (B, T, D) -> (B, T, V + 1) logits of the next token (units, then the end)."""
        return self.head(h)

    def duration_logits(self, h: Tensor, next_units: Tensor) -> Tensor:
        """h (B, T, D), next_units (B, T) -> (B, T, max_duration) logits of the next unit's
        duration class (index c = duration c + 1 frames). Needs the duration channel."""
        if self.dur_head is None:
            raise RuntimeError("this unit LM has no duration channel (model.durations=false)")
        e = self.embed(next_units.clamp(min=0, max=self.vocab_size))
        return self.dur_head(torch.cat([h, e], dim=-1))

    # -- training -------------------------------------------------------------------
    def forward(
        self,
        tokens: Tensor,
        targets: Tensor,
        dur_classes: Tensor | None = None,
        dur_targets: Tensor | None = None,
    ) -> LMOutput:
        """tokens (B, T) inputs, targets (B, T) the next tokens (IGNORE = padding);
        dur_classes (B, T) input duration classes, dur_targets (B, T) the next unit's
        duration class (IGNORE for the end token and padding). -> LMOutput."""
        h, _ = self.hidden(tokens, dur_classes)
        logits = self.unit_logits(h).float()
        nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
        valid = targets != IGNORE
        count = valid.sum()
        nll_sum = nll.sum()
        dur_nll_sum = torch.zeros((), device=tokens.device)
        if self.dur_head is not None and dur_targets is not None:
            dlog = self.duration_logits(h, targets).float()
            dnll = F.cross_entropy(dlog.transpose(1, 2), dur_targets, ignore_index=IGNORE, reduction="none")
            dur_nll_sum = dnll.sum()
        n = count.clamp(min=1).float()
        loss = (nll_sum + dur_nll_sum) / n
        with torch.no_grad():
            correct = ((logits.argmax(-1) == targets) & valid).sum().float()
        stats = {"nll": (nll_sum / n).detach(), "accuracy": (correct / n).detach()}
        if self.dur_head is not None:
            stats["dur_nll"] = (dur_nll_sum / n).detach()
        return LMOutput(loss=loss, nll_sum=nll_sum.detach(), dur_nll_sum=dur_nll_sum.detach(), count=count, stats=stats)

    # the training engine's code-usage hooks: an LM has no codebook
    def usage_stats(self) -> dict:
        return {}

    def reset_usage(self) -> None:
        pass


# ----------------------------------------------------------------------------- transformer
class _Block(nn.Module):
    """Pre-norm transformer block: causal self-attention + MLP."""

    def __init__(self, cfg: UnitLMConfig):
        super().__init__()
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.ff_dim), nn.GELU(), nn.Linear(cfg.ff_dim, cfg.dim))
        self.drop = nn.Dropout(cfg.dropout)
        self.attn_dropout = cfg.dropout

    def forward(self, x: Tensor, past: tuple[Tensor, Tensor] | None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (B, T, D); past: keys and values (B, H, P, D/H) of earlier tokens or None ->
        (B, T, D), the keys and values (B, H, P + T, D/H)."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        p = k.shape[2] - t
        drop = self.attn_dropout if self.training else 0.0
        if t == 1:
            a = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        elif p == 0:
            a = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        else:  # a block after cached tokens: query i sees keys 0 .. p + i
            mask = torch.ones(t, p + t, dtype=torch.bool, device=x.device).tril(diagonal=p)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        x = x + self.drop(self.mlp(self.norm2(x)))
        return x, (k, v)


@UNIT_LMS.register("transformer")
class TransformerLM(UnitLM):
    """A GPT-style causal transformer: learned positions (max_len), pre-norm blocks.
    The cache is a list of per-layer (keys, values) plus the number of tokens seen."""

    def __init__(self, cfg: UnitLMConfig):
        super().__init__(cfg)
        self.pos = nn.Embedding(cfg.max_len, cfg.dim)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.layers))
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    @property
    def max_context(self) -> int:
        return self.cfg.max_len

    def new_cache(self) -> dict:
        return {"layers": [None] * len(self.blocks), "length": 0}

    def _body(self, x: Tensor, cache):
        """x (B, T, D) embedded tokens -> (B, T, D), cache."""
        cache = cache if cache is not None else self.new_cache()
        start, t = cache["length"], x.shape[1]
        if start + t > self.cfg.max_len:
            raise ConfigError(f"sequence of {start + t} tokens is longer than model.max_len={self.cfg.max_len}")
        x = x + self.pos(torch.arange(start, start + t, device=x.device))
        layers = []
        for block, past in zip(self.blocks, cache["layers"]):
            x, kv = block(x, past)
            layers.append(kv)
        return x, {"layers": layers, "length": start + t}


# ----------------------------------------------------------------------------- LSTM
@UNIT_LMS.register("lstm")
class LSTMLM(UnitLM):
    """A stacked LSTM; the cache is its (h, c) state. Unbounded context."""

    def __init__(self, cfg: UnitLMConfig):
        super().__init__(cfg)
        self.rnn = nn.LSTM(cfg.dim, cfg.dim, num_layers=cfg.layers, batch_first=True,
                           dropout=cfg.dropout if cfg.layers > 1 else 0.0)

    def _body(self, x: Tensor, cache):
        """x (B, T, D) -> (B, T, D), (h, c) each (layers, B, D)."""
        return self.rnn(x, cache)


def build_lm(cfg: UnitLMConfig) -> UnitLM:
    return UNIT_LMS.get(cfg.kind)(cfg)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
