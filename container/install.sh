#!/bin/sh
# Install srprep into /opt/venv inside a container build (Apptainer %post or Docker RUN).
# Uses the wheels in /opt/srprep/wheels when present (offline builds, CI emulation),
# otherwise PyPI, with the CUDA build of PyTorch from $TORCH_INDEX_URL.  Every dependency
# is held to the version in the lock file (srprep/data/requirements.lock), as in CI.
set -eu
src=/opt/srprep/src
wheels=/opt/srprep/wheels
lock=$src/srprep/data/requirements.lock
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m venv /opt/venv
if ls "$wheels"/*.whl >/dev/null 2>&1; then
    /opt/venv/bin/pip install --no-index --find-links "$wheels" -c "$lock" "$src"
else
    /opt/venv/bin/pip install --upgrade pip
    /opt/venv/bin/pip install torch==2.13.0 \
        --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cu128}"
    /opt/venv/bin/pip install -c "$lock" "$src"
fi
rm -rf "$wheels"
mkdir -p /opt/srprep/weights /opt/srprep/torch
chmod -R a+rX /opt/venv /opt/srprep
