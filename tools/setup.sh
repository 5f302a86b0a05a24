#!/usr/bin/env bash
# Set up speechunits in a virtual environment (.venv at the repository root).
#
#   bash tools/setup.sh            # core + dev extras (tests, kaldi-native-fbank, espeak)
#   EXTRAS=dev,plots bash tools/setup.sh
#
# torch is installed first, pinned, so that pip never resolves an unconstrained
# torch to the multi-GB CUDA build. Set TORCH_SPEC to choose another build
# (e.g. TORCH_SPEC="torch==2.13.0" with --index-url for CUDA machines).
# Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${VENV:-.venv}
python=${PYTHON:-python3}
extras=${EXTRAS:-dev}
torch_spec=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv" >&2
  "$python" -m venv "$venv"
fi

stamp="$venv/.speechunits-setup"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) extras=$extras torch=$torch_spec"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
"$venv/bin/python" -c "import torch" 2>/dev/null || pip install "$torch_spec"
pip install -e ".[$extras]"
# the C ABX kernels (speechunits/eval/abx/native): built now so that the first `speechunits abx`
# starts fast; without a C compiler ABX runs on the numba kernels
"$venv/bin/python" -c "from speechunits.eval.abx import native; native.build()" 2>/dev/null \
  || echo "setup: no C compiler for the ABX kernels; ABX uses its numba kernels" >&2
echo "$want" > "$stamp"
echo "setup: done ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))" >&2
