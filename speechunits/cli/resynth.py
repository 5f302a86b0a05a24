"""`speechunits resynth`: decode units back to audio (placeholder while being written)."""

from __future__ import annotations

from speechunits.cli import COMMANDS


@COMMANDS.register("resynth")
class Resynth:
    """Resynthesise audio from units (voice conversion with --speaker)."""

    def add_arguments(self, p):
        p.add_argument("model")
        p.add_argument("units")
        p.add_argument("out")

    def run(self, args) -> int:
        from speechunits.errors import SpeechUnitsError

        raise SpeechUnitsError("resynth is not implemented yet")
