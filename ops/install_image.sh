#!/bin/sh
# The container image's install steps, in one place: the Dockerfile's build stage runs this script,
# and tests/integration/test_image_install.py runs it on a fresh copy of the same files (the build stage's COPY
# lines) and starts the worker from the result.
#
#   sh ops/install_image.sh APP_DIR      (UV=/path/to/uv to use a uv that is not on PATH)
#
# 1. the locked dependencies (requirements/image.txt: the otel extra but no dev extras, every hash checked) into
#    APP_DIR/.venv, the project itself
#    installed as a wheel, bytecode compiled at build time (the image's root filesystem is read-only);
# 2. the BlazeFace models from the pinned mediapipe wheel into APP_DIR/models, sha256-verified;
# 3. a check that exactly one OpenCV, the headless one, is installed.
set -eu
app=${1:?usage: install_image.sh APP_DIR}
uv=${UV:-uv}
cd "$app"
export UV_PYTHON_DOWNLOADS=never
"$uv" venv --quiet .venv
"$uv" pip sync --quiet --python .venv/bin/python --require-hashes --compile-bytecode requirements/image.txt
"$uv" pip install --quiet --python .venv/bin/python --no-deps --compile-bytecode .
.venv/bin/python ops/fetch_models.py --dest models
.venv/bin/python ops/check_opencv.py
