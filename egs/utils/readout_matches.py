"""readout_matches.py EXTRACT_JSON [R.pt]: exit 1 (and say why) unless the extract folder of
EXTRACT_JSON was made through the centroid regression R.pt, or through none when R.pt is empty
or absent. Used by utils/model_stages.sh before it keeps an existing folder as complete."""

import json
import sys


def main() -> int:
    path, want = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    have = (json.load(open(path)).get("readout") or {}).get("id")
    if want:
        from speechunits.units.kmeans.regression import CentroidRegression

        want = CentroidRegression.load(want).model_id()
    if (have or None) == (want or None):
        return 0
    made = f"with the read-out {have}" if have else "without a read-out"
    setting = f"the read-out {want}" if want else "none"
    print(f"{path}: extracted {made}, but this run's setting is {setting}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
