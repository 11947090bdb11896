#!/usr/bin/env bash
# Set up .venv for Locara Wyoming.
#   scripts/setup.sh server   the server and its embedded default models
#   scripts/setup.sh satellite  a room satellite only, in .venv-satellite: no torch,
#                               llama.cpp, CTranslate2 or Piper
#   scripts/setup.sh test     the server plus everything the test suite needs (the
#                             stock chain the voice benchmark compares with, and a
#                             satellite-only .venv-satellite that the tests run)
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-server}
case "$what" in
  server) extras="server" ;;
  satellite) extras="satellite" ;;
  test) extras="server,bench,satellite,test" ;;
  *) echo "usage: scripts/setup.sh [server|satellite|test]" >&2; exit 2 ;;
esac

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Locara needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; exit 2; }

install_satellite() {
  local venv=$1
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  echo "Installing locara-wyoming[satellite] into $venv…"
  "$venv/bin/python" -m pip install --quiet -e ".[satellite]"
}

if [ "$what" = satellite ]; then
  install_satellite "${VENV:-.venv-satellite}"
  echo "Ready: ${VENV:-.venv-satellite}"
  exit 0
fi
if [ "$what" = test ]; then
  install_satellite .venv-satellite
  # A real audio server for the sound card test (it skips without one).
  if ! command -v pulseaudio >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing PulseAudio and PortAudio for the sound card test…"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        pulseaudio pulseaudio-utils libportaudio2; } >/dev/null \
      || echo "Could not install PulseAudio: the sound card test will skip" >&2
  fi
fi

venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip

# llama-cpp-python ships no binary wheel. Its default build targets the build
# machine's newest instructions (AVX-512, AMX), which some virtual machines
# advertise but trap ("Illegal instruction"). Build a portable AVX2 wheel once,
# keep it in a wheelhouse, and install from there. Set LLAMA_CMAKE_ARGS for a
# GPU build (e.g. -DGGML_CUDA=on) and LOCARA_WHEELHOUSE to keep it elsewhere.
llama_version=$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
wheelhouse=${LOCARA_WHEELHOUSE:-$HOME/.cache/locara-wheels}
mkdir -p "$wheelhouse"
if ! ls "$wheelhouse"/llama_cpp_python-"$llama_version"-*.whl >/dev/null 2>&1; then
  echo "Building llama-cpp-python $llama_version once (about 15 minutes on 2 cores)…"
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
  CMAKE_ARGS=${LLAMA_CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF"} \
    "$venv/bin/python" -m pip wheel --no-deps --no-cache-dir -w "$wheelhouse" "llama-cpp-python==$llama_version"
fi

echo "Installing locara-wyoming[$extras] into $venv…"
"$venv/bin/python" -m pip install --quiet --find-links "$wheelhouse" -e ".[$extras]"
echo "Ready: $venv"
