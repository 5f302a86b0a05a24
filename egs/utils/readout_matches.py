"""readout_matches.py EXTRACT_JSON R.pt KM.pt [DELTAS]: exit 1 (and say why) unless the extract
folder of EXTRACT_JSON was made through the centroid regression R.pt (none when R.pt is ""), the
k-means model KM.pt (none when KM.pt is "") and dense deltas of balance DELTAS (extract --deltas;
none when 0, the default). Used by utils/model_stages.sh before it keeps an existing folder as
complete."""

import json
import sys
from pathlib import Path


def _id(path: str, kind: str):
    """The id of the model file `path` (None for ""), or exit 1 when it is missing."""
    if not path:
        return None
    if not Path(path).is_file():
        print(f"{path}: the {kind} is missing (stage 3 makes it)", file=sys.stderr)
        sys.exit(1)
    if kind == "read-out":
        from speechunits.units.kmeans.regression import CentroidRegression

        return CentroidRegression.load(path).model_id()
    from speechunits.units.kmeans import KMeans

    return KMeans.load(path).model_id()


def main() -> int:
    path, readout, kmeans = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(path, encoding="utf-8") as f:
        made = json.load(f)
    problems = []
    for key, file, kind in (("readout", readout, "read-out"), ("kmeans", kmeans, "k-means model")):
        have, want = (made.get(key) or {}).get("id"), _id(file, kind)
        if have != want:
            problems.append(f"{'with the ' + kind + ' ' + have if have else 'without a ' + kind}, but this run's "
                            f"setting is {file + ' (' + want + ')' if want else 'none'}")
    want = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    have = float((made.get("dense_deltas") or {}).get("balance", 0.0))
    if have != want:
        problems.append(f"with dense deltas of balance {have:g}, but this run's setting is {want:g} (--dense-deltas)")
    for problem in problems:
        print(f"{path}: extracted {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
