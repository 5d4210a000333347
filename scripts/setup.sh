#!/usr/bin/env bash
# Set up normgen on a fresh Debian machine (idempotent; fast when everything is present).
#   bash scripts/setup.sh            npm dependencies (enough to serve the bundled models)
#   bash scripts/setup.sh --trainer  also Debian's PyTorch, ONNX, pytest, the sample-photo libraries, Chromium (browser tests)
#                                    the wallpaper and OpenCV sample-photo packages (trainer, its tests, evaluation)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_TRAINER=(python3-torch python3-onnx python3-pytest python3-numpy python3-pil python3-skimage python3-requests
  python3-sklearn python3-matplotlib python3-scipy python3-opencv
  lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds plasma-workspace-wallpapers opencv-doc
  endless-sky-high-dpi gcompris-qt-data tuxpaint-data tuxpaint-stamps-default tuxtype-data lxqt-themes palapeli-data
  dataset-fashion-mnist python3-venv python3-pip python3-setuptools python3-wheel
  python3-fastapi python3-uvicorn python3-multipart python3-psutil  # the PyTorch peer server of npm run bench:peer
  chromium)  # the browser tests (test/browser.test.ts) drive Debian's Chromium with playwright-core

if [[ "${1:-}" == "--trainer" ]]; then
  missing=()
  for p in "${APT_TRAINER[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    echo "[setup] apt-get install ${missing[*]}"
    SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# npm ci when node_modules is missing or older than the lockfile. onnxruntime-node's install script
# would download CUDA binaries; skip it (the CPU binaries ship inside the npm package).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[setup] npm ci"
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
fi
echo "[setup] ok"
