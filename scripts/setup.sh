#!/usr/bin/env bash
# Set up .venv for Locara Wyoming.
#   scripts/setup.sh server   the server and its embedded default models
#   scripts/setup.sh satellite  a room satellite only, in .venv-satellite: no torch,
#                               llama.cpp, CTranslate2 or Piper
#   scripts/setup.sh moshi    the server plus PyTorch and Kyutai's moshi, for moshi-… backends
#   scripts/setup.sh mlx      .venv-mlx: moshi_mlx for moshi-mlx-… backends' helper process
#                             (Apple silicon; on Linux it runs on the CPU through mlx[cpu])
#   scripts/setup.sh ha       .venv-ha: Home Assistant 2026.2.3 with its test plugin and
#                             wyoming 1.7.2, on Python >= 3.13.2 (built once by
#                             scripts/build-python.sh, or PYTHON_HA=/path/to/python3.13),
#                             for the tests in tests/home_assistant
#   scripts/setup.sh ha-oldest  .venv-ha-oldest: the same for the oldest Home Assistant
#                             the integration supports (hacs.json), 2025.8.0
#   scripts/setup.sh test     the server plus everything the test suite needs (the
#                             stock chain the voice benchmark compares with, Moshi, and
#                             .venv-satellite, .venv-mlx, .venv-ha and .venv-ha-oldest,
#                             which the tests run)
#   scripts/setup.sh fast     the base install and the test runner, no model (under a
#                             minute), for `make test-fast`; a .venv that `test` set up
#                             already holds it and is used as it is
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-server}
case "$what" in
  server) extras="server" ;;
  satellite|mlx|ha|ha-oldest) extras="" ;;
  moshi) extras="server,moshi" ;;
  test) extras="server,moshi,bench,satellite,test,test-models,lint" ;;
  fast) extras="test" ;;
  *) echo "usage: scripts/setup.sh [server|satellite|moshi|mlx|ha|ha-oldest|test|fast]" >&2; exit 2 ;;
esac

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Locara needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; exit 2; }

# pyproject.toml as it was when the `test` extra last went into a venv (by `fast` or
# `test`): while it is the same, `fast` has nothing to install, whichever of the two made
# the venv.
TEST_STAMP=.locara-test-extra
pyproject_hash() {
  "$python" -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())'
}

# The fast tier's install: the base dependencies and the `test` extra, no model runtime.
install_fast() {
  local venv=$1
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/$TEST_STAMP" 2>/dev/null)" = "$(pyproject_hash)" ]; then
    return 0
  fi
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  echo "Installing locara-wyoming[test] into $venv…"
  "$venv/bin/python" -m pip install --quiet -e ".[test]"
  pyproject_hash > "$venv/$TEST_STAMP"
}

install_satellite() {
  local venv=$1
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  echo "Installing locara-wyoming[satellite] into $venv…"
  "$venv/bin/python" -m pip install --quiet -e ".[satellite]"
}

# moshi_mlx pins its own numpy, huggingface-hub and mlx: it gets an environment of its own,
# with this package's base (the helper protocol) and no extras. Linux needs mlx's cpu extra.
install_mlx() {
  local venv=$1
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  echo "Installing moshi_mlx into $venv…"
  "$venv/bin/python" -m pip install --quiet "mlx[cpu]>=0.26,<0.27" "moshi_mlx==0.3.0"
  "$venv/bin/python" -m pip install --quiet -e .
}

# Home Assistant's tests run on its own Python (2025.8 and later need >= 3.13.2), twice:
# in .venv-ha on the newest Home Assistant the registry serves, and in .venv-ha-oldest on
# the oldest the integration supports (hacs.json's "homeassistant"; docs/home-assistant.md
# says why that one). Each gets the test plugin release made for it, which pins it. Home
# Assistant's own package_constraints.txt (from its wheel) keeps pip from backtracking
# through its hundreds of pins; the wyoming version comes from the same wheel, as its
# built-in Wyoming integration's manifest requires it. Besides those: the requirements of
# the components that integration loads (phcc skips Home Assistant's own pip installs).
HA_NEWEST=2026.2.3
HA_NEWEST_PLUGIN=0.13.316
HA_OLDEST=$("$python" -c 'import json; print(json.load(open("hacs.json"))["homeassistant"])')
HA_OLDEST_PLUGIN=0.13.269  # the release that pins $HA_OLDEST: bump the two together
# What newer releases broke in the oldest one's unpinned dependencies: aiodns 3.5.0 (its
# pin) allows pycares 5, which dropped names it uses, so aiohttp fails to import.
HA_OLDEST_PINS=("pycares<5")
HA_EXTRA_PACKAGES=(
  # what wyoming's dependencies (assist_pipeline, assist_satellite, conversation, ffmpeg,
  # tts) require, at the versions the constraints file pins, which are their manifests'
  pymicro-vad pyspeex-noise hassil home-assistant-intents ha-ffmpeg mutagen
  # type-checks custom_components/locara against Home Assistant itself (make lint-ha)
  "mypy>=1.11"
)
# install_ha VENV HA_VERSION PLUGIN_VERSION [PIN…]
install_ha() {
  local venv=$1 version=$2 plugin=$3
  local pins=("${@:4}")
  if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 13, 2))' 2>/dev/null; then
    local py=${PYTHON_HA:-}
    if [ -z "$py" ]; then
      echo "Finding or building Python 3.13 for Home Assistant (once, about 5 minutes)…"
      py=$(scripts/build-python.sh | tail -n 1)
    fi
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 13, 2))' || {
      echo "Home Assistant $version needs Python 3.13.2 or newer; $py is older" >&2; exit 2; }
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
  fi
  local constraints=$venv/homeassistant-$version-constraints.txt
  local wyoming=$venv/homeassistant-$version-wyoming.txt
  if [ ! -s "$constraints" ] || [ ! -s "$wyoming" ]; then
    local work
    work=$(mktemp -d)
    "$venv/bin/python" -m pip download --quiet --no-deps -d "$work" "homeassistant==$version"
    "$venv/bin/python" - "$work"/homeassistant-*.whl "$constraints" "$wyoming" <<'PY'
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    constraints = wheel.read("homeassistant/package_constraints.txt")
    manifest = json.loads(wheel.read("homeassistant/components/wyoming/manifest.json"))
(pin,) = [r for r in manifest["requirements"] if r.startswith("wyoming==")]
open(sys.argv[2], "wb").write(constraints)
open(sys.argv[3], "w").write(pin + "\n")
PY
    rm -rf "$work"
  fi
  local packages=(
    "homeassistant==$version" "pytest-homeassistant-custom-component==$plugin"
    "$(cat "$wyoming")" "${HA_EXTRA_PACKAGES[@]}" "${pins[@]}"
  )
  # pip takes half a minute to re-resolve Home Assistant's tree: skip it when this exact
  # list is already installed.
  local stamp=$venv/.locara-ha-packages
  if [ "$(cat "$stamp" 2>/dev/null)" = "${packages[*]}" ] \
    && "$venv/bin/python" -c 'import homeassistant, pytest_homeassistant_custom_component, wyoming' 2>/dev/null; then
    return 0
  fi
  echo "Installing Home Assistant $version and its test plugin into $venv (a few minutes the first time)…"
  "$venv/bin/python" -m pip install --quiet -c "$constraints" "${packages[@]}"
  echo "${packages[*]}" > "$stamp"
}

if [ "$what" = ha ]; then
  install_ha "${VENV:-.venv-ha}" "$HA_NEWEST" "$HA_NEWEST_PLUGIN"
  echo "Ready: ${VENV:-.venv-ha}"
  exit 0
fi
if [ "$what" = ha-oldest ]; then
  install_ha "${VENV:-.venv-ha-oldest}" "$HA_OLDEST" "$HA_OLDEST_PLUGIN" "${HA_OLDEST_PINS[@]}"
  echo "Ready: ${VENV:-.venv-ha-oldest}"
  exit 0
fi
if [ "$what" = fast ]; then
  install_fast "${VENV:-.venv}"
  echo "Ready: ${VENV:-.venv}"
  exit 0
fi
if [ "$what" = satellite ]; then
  install_satellite "${VENV:-.venv-satellite}"
  echo "Ready: ${VENV:-.venv-satellite}"
  exit 0
fi
if [ "$what" = mlx ]; then
  install_mlx "${VENV:-.venv-mlx}"
  echo "Ready: ${VENV:-.venv-mlx}"
  exit 0
fi
if [ "$what" = test ]; then
  install_satellite .venv-satellite
  install_mlx .venv-mlx
  install_ha .venv-ha "$HA_NEWEST" "$HA_NEWEST_PLUGIN"
  install_ha .venv-ha-oldest "$HA_OLDEST" "$HA_OLDEST_PLUGIN" "${HA_OLDEST_PINS[@]}"
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

if [[ ",$extras," == *",moshi,"* ]]; then
  # PyTorch first (on our CPU machines 2.13.0 is a local CPU build; set TORCH_SPEC for
  # another, e.g. a CUDA build), then moshi without its torch<2.10 pin.
  echo "Installing PyTorch and moshi into $venv…"
  "$venv/bin/python" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
  "$venv/bin/python" -m pip install --quiet --no-deps "moshi==0.2.13"
fi

echo "Installing locara-wyoming[$extras] into $venv…"
"$venv/bin/python" -m pip install --quiet --find-links "$wheelhouse" -e ".[$extras]"
# The end-of-turn model (Smart Turn v3.2) ships inside pipecat-ai's wheel; only that file
# is read, so the wheel goes in without pipecat's own (heavy) dependencies.
if [[ ",$extras," == *",server,"* ]]; then
  "$venv/bin/python" -m pip install --quiet --no-deps "pipecat-ai==1.14.0"
fi
if [[ ",$extras," == *",test,"* ]]; then
  pyproject_hash > "$venv/$TEST_STAMP"
fi
echo "Ready: $venv"
