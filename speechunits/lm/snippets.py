"""Listen to a unit: short audio snippets of where the most used units occur.

    index = unit_snippets(read_units("exp/small/units_test"), open_audio_source("data/test"), "exp/small/lm/snippets",
                          top=20, per_unit=3)

For each of the `top` units with the most occurrences (merged runs), `per_unit`
occurrences drawn with a seeded generator among its 4 x per_unit longest ones, each
cut from its utterance's audio with `context` seconds on both sides, are written
as OUT/unit<k>-<i>.wav (16-bit, the audio's rate). OUT/snippets.json lists them:
{"units": [{"unit", "count", "frames", "snippets": [{"file", "utt", "start", "end"}]}]}
with the unit's own interval in seconds (the file holds the context as well).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from speechunits.errors import SpeechUnitsError
from speechunits.units.formats import UnitSequence

__all__ = ["unit_snippets"]


def unit_snippets(seqs: Mapping[str, UnitSequence], source, out: str | os.PathLike, top: int = 20, per_unit: int = 3,
                  context: float = 0.05, seed: int = 0) -> dict:
    from speechunits.corpora.synthetic import write_wav
    from speechunits.fileio import write_json

    occurrences: dict[int, list[tuple[str, float, float, int]]] = {}
    for utt in sorted(seqs):
        s = seqs[utt]
        if s.shift is None:
            raise SpeechUnitsError(f"utterance {utt}: the unit file gives no frame shift (unit times unknown)")
        for u, start, d in zip(s.units.tolist(), s.starts.tolist(), s.durations.tolist()):
            occurrences.setdefault(u, []).append((utt, start, start + d * s.shift, d))
    ranked = sorted(occurrences, key=lambda u: (-len(occurrences[u]), u))[:top]
    rng = np.random.default_rng(seed)
    out = Path(out)
    audio_cache: dict[str, tuple[np.ndarray, int]] = {}
    index = []
    for u in ranked:
        occ = sorted(occurrences[u], key=lambda o: (-o[3], o[0], o[1]))
        pool = occ[: 4 * per_unit]  # long occurrences are easier to hear
        picks = sorted(rng.choice(len(pool), size=min(per_unit, len(pool)), replace=False).tolist())
        entry = {"unit": int(u), "count": len(occ), "frames": int(sum(o[3] for o in occ)), "snippets": []}
        for i, k in enumerate(picks):
            utt, a, b, _ = pool[k]
            if utt not in audio_cache:
                audio = source.load(utt)
                audio_cache[utt] = (audio.samples, audio.sample_rate)
            samples, sr = audio_cache[utt]
            lo, hi = max(0, int((a - context) * sr)), min(len(samples), int(np.ceil((b + context) * sr)))
            pcm = np.clip(np.round(samples[lo:hi] * 32768.0), -32768, 32767).astype(np.int16)
            name = f"unit{u}-{i}.wav"
            write_wav(out / name, pcm, sr)
            entry["snippets"].append({"file": name, "utt": utt, "start": round(a, 4), "end": round(b, 4)})
        index.append(entry)
    result = {"kind": "unit-snippets", "context": context, "units": index}
    write_json(out / "snippets.json", result)
    return result
