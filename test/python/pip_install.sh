#!/usr/bin/env bash
# The pip route, as a user takes it: a fresh venv of Debian's python3 with
# numpy 2 from PyPI, `pip install SOURCE_DIR` (pyproject.toml:
# scikit-build-core and pybind11 >= 2.12 from PyPI), then the module's tests
# in that venv. OLD_MODULE_DIR, when given, holds a module built against a
# pybind11 older than 2.12 (Debian's 2.10): importing it under numpy 2 must
# fail, naming pybind11, rather than compute wrong numbers.
# Usage: pip_install.sh SOURCE_DIR WORK_DIR DATA_DIR [OLD_MODULE_DIR]
set -euo pipefail
src=$1 work=$2 data=$3 old=${4:-}
rm -rf "$work"
/usr/bin/python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check "numpy>=2"
"$py" -m pip install --quiet --disable-pip-version-check "$src"
numpy_version=$("$py" -c "import numpy; print(numpy.__version__)")
case "$numpy_version" in
  2.*) ;;
  *) echo "FAILED: the venv has numpy $numpy_version, not 2.x"; exit 1 ;;
esac
# The installed module, not a build tree's: run from outside the sources.
cd "$work"
"$py" -c "import nmhash, numpy; print('nmhash', nmhash.__version__, 'from', nmhash.__file__, 'with numpy', numpy.__version__)"
"$py" "$src/test/python/test_module.py" "$data"
if [ -n "$old" ]; then
  if out=$(PYTHONPATH="$old" "$py" -c "import nmhash" 2>&1); then
    echo "FAILED: the module of $old (pybind11 < 2.12) imports under numpy $numpy_version"
    exit 1
  fi
  case "$out" in
    *"ImportError: nmhash: this module was built with pybind11"*) echo "refused as expected: ${out##*ImportError: }" ;;
    *) echo "FAILED: importing the module of $old under numpy $numpy_version: $out"; exit 1 ;;
  esac
fi
