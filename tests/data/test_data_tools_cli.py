"""split-data / combine-data / utt2dur through the CLI: splitting then combining gives
back the original data dir; utt2dur equals the audio lengths written."""

import numpy as np
import soundfile as sf

from speechunits.cli import main
from speechunits.data.datadir import DataDir


def make_dir(root, n_spk=3, n_utt=2):
    root.mkdir()
    wav, u2s = [], []
    for s in range(n_spk):
        for u in range(n_utt):
            utt = f"s{s}-u{u}"
            n = 1600 * (s + u + 1)
            sf.write(root / f"{utt}.wav", np.zeros(n, dtype=np.float32), 16000)
            wav.append(f"{utt} {root / utt}.wav")
            u2s.append(f"{utt} s{s}")
    (root / "wav.scp").write_text("\n".join(wav) + "\n")
    (root / "utt2spk").write_text("\n".join(u2s) + "\n")
    return root


def test_split_then_combine_is_identity(tmp_path, capsys):
    data = make_dir(tmp_path / "data")
    assert main(["split-data", str(data), "2"]) == 0
    parts = [data / "split2" / "1", data / "split2" / "2"]
    speakers = [set(DataDir.read(p).speakers) for p in parts]
    assert not speakers[0] & speakers[1]  # speakers stay whole
    assert main(["combine-data", str(tmp_path / "comb"), *map(str, parts)]) == 0
    assert DataDir.read(tmp_path / "comb") == DataDir.read(data)


def test_utt2dur_reads_audio_lengths(tmp_path):
    data = make_dir(tmp_path / "data")
    assert main(["utt2dur", str(data)]) == 0
    durations = DataDir.read(data).utt2dur
    assert durations["s2-u1"] == 1600 * 4 / 16000
    (data / "s0-u0.wav").write_bytes(b"garbage")
    (data / "utt2dur").unlink()
    assert main(["utt2dur", str(data)]) == 1
    assert not (data / "utt2dur").exists()
