"""Unit LMs: incremental decoding equals recomputing; shapes; the loss on padding."""

from __future__ import annotations

import pytest
import torch

from speechunits.lm.models import IGNORE, UnitLMConfig, build_lm


def _model(kind: str, durations: bool = False):
    torch.manual_seed(0)
    cfg = UnitLMConfig(kind=kind, vocab_size=7, dim=16, layers=2, heads=2, ff_dim=32, dropout=0.0, max_len=64,
                       durations=durations, max_duration=4)
    return build_lm(cfg).eval()


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
@pytest.mark.parametrize("durations", [False, True])
def test_cache_equals_recompute(kind, durations):
    model = _model(kind, durations)
    tokens = torch.tensor([[7, 1, 2, 3, 4, 5, 6, 0, 1, 2]])
    classes = torch.tensor([[0, 1, 2, 3, 4, 1, 2, 3, 4, 1]]) if durations else None
    with torch.no_grad():
        full, _ = model.hidden(tokens, classes)
        cache, parts = None, []
        for a, b in ((0, 3), (3, 4), (4, 5), (5, 10)):  # a block, then single tokens, then a block
            h, cache = model.hidden(tokens[:, a:b], None if classes is None else classes[:, a:b], cache=cache)
            parts.append(h)
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_padding_does_not_change_the_loss():
    model = _model("transformer")
    tokens = torch.tensor([[7, 1, 2, 3]])
    targets = torch.tensor([[1, 2, 3, 7]])
    one = model(tokens, targets)
    padded = model(torch.tensor([[7, 1, 2, 3, 7, 7]]), torch.tensor([[1, 2, 3, 7, IGNORE, IGNORE]]))
    assert int(padded.count) == 4
    assert torch.allclose(one.nll_sum, padded.nll_sum, atol=1e-5)


def test_transformer_refuses_past_its_context():
    model = _model("transformer")
    with pytest.raises(ValueError, match="max_len"):
        model.hidden(torch.zeros(1, 65, dtype=torch.long))


def test_scoring_short_and_long_sequences():
    """Whole-sequence scores equal the model's own log-softmax; past the context, sliding
    windows score every token once and agree with the direct scores on the first window."""
    import numpy as np

    from speechunits.lm.data import to_tokens
    from speechunits.lm.scoring import token_logprobs
    from speechunits.units.formats import UnitSequence

    model = _model("transformer")  # max_len 64
    rng = np.random.default_rng(0)
    short = to_tokens(UnitSequence("a", rng.integers(0, 7, 20), np.ones(20, dtype=np.int64)), 7)
    long = to_tokens(UnitSequence("b", rng.integers(0, 7, 150), np.ones(150, dtype=np.int64)), 7)
    (lp_s, _), (lp_l, _) = token_logprobs(model, [short, long], batch_size=2)
    with torch.no_grad():
        h, _ = model.hidden(torch.from_numpy(short.tokens)[None])
        ref = torch.log_softmax(model.unit_logits(h), -1)[0].gather(-1, torch.from_numpy(short.targets)[:, None])[:, 0]
        h, _ = model.hidden(torch.from_numpy(long.tokens[:64])[None])
        ref_long = torch.log_softmax(model.unit_logits(h), -1)[0].gather(-1, torch.from_numpy(long.targets[:64])[:, None])[:, 0]
    assert np.allclose(lp_s, ref.numpy(), atol=1e-5)
    assert lp_l.shape == (151,) and np.allclose(lp_l[:64], ref_long.numpy(), atol=1e-5)
