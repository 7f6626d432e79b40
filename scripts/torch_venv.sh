# Sourced by the bench scripts: makes results/bench/torch-venv, PyTorch 2.15
# from PyPI (MKL + oneDNN) with ONNX Runtime, onnx and numpy, once; sets
# $venv.
bash scripts/install-deps.sh python3-venv
venv=results/bench/torch-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, onnxruntime, onnx, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.15.0 onnxruntime==1.32.0 onnx==1.23.2 onnxscript==0.7.2 numpy
fi
