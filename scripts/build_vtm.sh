#!/usr/bin/env bash
# Build VTM (the VVC reference software) for nicspec's `vtm` codec from a VTM source tree.
#
# Usage: scripts/build_vtm.sh SRC_DIR [BUILD_DIR]
#   SRC_DIR    a VTM checkout (https://vcgit.hhi.fraunhofer.de/jvet/VVCSoftware_VTM, tag VTM-9.1
#              is the paper's version); it is only read
#   BUILD_DIR  where the build goes (default: SRC_DIR-build beside it); at the end it holds
#              bin/EncoderAppStatic, bin/DecoderAppStatic and cfg/ (the encoder configs)
#
# The source is copied into BUILD_DIR/src and built there, because VTM's CMake writes its
# executables into the source tree (bin/) and adds -Werror, which GCC 12 turns into failures on
# VTM 9.x: the copy's CMake files have their warnings-as-errors switches removed; the user's
# tree is never touched. Configured in Release, EncoderApp and DecoderApp built with
# -j$(nproc) (NICSPEC_BUILD_JOBS overrides it), checked with the `vtm` codec's own discovery
# (PYTHON, default python3, must import nicspec_utils), then the line to export is printed.
# Errors are one line on stderr with a non-zero exit: 2 for a wrong command line or folder,
# 3 for a missing tool, 4 for a failed configure or build, 5 for a failed check.
set -uo pipefail

die() {  # die CODE MESSAGE
  echo "build_vtm.sh: error: $2" >&2
  exit "$1"
}

[ $# -ge 1 ] && [ $# -le 2 ] || die 2 "usage: scripts/build_vtm.sh SRC_DIR [BUILD_DIR]"
src=${1%/}
[ -d "$src" ] || die 2 "no such folder: $src"
src=$(cd "$src" && pwd)
[ -f "$src/CMakeLists.txt" ] || die 2 "$src has no CMakeLists.txt: not a VTM source tree"
[ -d "$src/source/App/EncoderApp" ] && [ -d "$src/source/App/DecoderApp" ] \
  || die 2 "$src has no source/App/EncoderApp and source/App/DecoderApp: not a VTM source tree"
version=$(grep -rhos 'define[[:space:]]\+VTM_VERSION[[:space:]]\+"[^"]*"' \
  "$src/source/Lib/CommonLib" | head -n 1 | sed 's/.*"\(.*\)"/\1/')
[ -n "$version" ] || die 2 "$src/source/Lib/CommonLib defines no VTM_VERSION: not a VTM source tree"
[ -f "$src/cfg/encoder_intra_vtm.cfg" ] || die 2 "$src/cfg/encoder_intra_vtm.cfg is missing"

for tool in cmake make; do
  command -v "$tool" > /dev/null || die 3 "$tool is not installed (Debian: apt-get install cmake build-essential)"
done
cxx=${CXX:-g++}
command -v "$cxx" > /dev/null || die 3 "$cxx is not installed (Debian: apt-get install g++; or set CXX)"
cmake_version=$(cmake --version | head -n 1 | awk '{print $3}')
[ "$(printf '%s\n3.13\n' "$cmake_version" | sort -V | head -n 1)" = 3.13 ] \
  || die 3 "cmake $cmake_version is too old: this script needs cmake 3.13 or newer"

build=${2:-$src-build}
build=${build%/}
mkdir -p "$build" 2> /dev/null || die 2 "cannot create $build"
build=$(cd "$build" && pwd)
case "$build/" in
  "$src"/*) die 2 "BUILD_DIR $build lies inside SRC_DIR $src; choose a folder outside it" ;;
esac
for part in src cmake bin cfg; do  # the folders this script replaces must not hold the sources
  case "$src/" in
    "$build/$part"/*) die 2 "SRC_DIR $src lies inside $build/$part, which the build replaces" ;;
  esac
done
# every usable core (GNU nproc would honour OMP_NUM_THREADS, which this project sets to 1)
jobs=${NICSPEC_BUILD_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2> /dev/null || echo 1)}
python=${PYTHON:-python3}
echo "VTM $version from $src -> $build ($jobs jobs, $($cxx --version | head -n 1))"

# 1. a copy of the sources without their build outputs, -Werror removed from its CMake files
rm -rf "$build/src"
mkdir -p "$build/src"
tar -C "$src" --exclude=./.git --exclude=./bin --exclude=./lib --exclude=./build -cf - . \
  | tar -C "$build/src" -xf - || die 4 "cannot copy $src into $build/src"
find "$build/src" \( -name CMakeLists.txt -o -name '*.cmake' \) -type f -print0 \
  | xargs -0 -r sed -i -e 's/[[:space:]]warnings-as-errors\b//g' -e 's/[[:space:]]-Werror\b//g'

# 2. configure and build
log=$build/build.log
: > "$log"
cmake -S "$build/src" -B "$build/cmake" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$(command -v "$cxx")" >> "$log" 2>&1 \
  || die 4 "cmake configure failed: $(grep -m1 -i 'error' "$log" || tail -n 1 "$log") (log: $log)"
cmake --build "$build/cmake" --target EncoderApp DecoderApp -j "$jobs" >> "$log" 2>&1
status=$?
if [ $status -ne 0 ]; then
  first=$( (grep -m1 'error:' "$log" || grep -m1 'Error' "$log") | cut -c1-240)
  die 4 "build failed: ${first:-cmake --build exited with status $status} (log: $log)"
fi

# 3. the executables (VTM copies them to <source>/bin/*Static; else take the plain ones)
mkdir -p "$build/bin"
for app in EncoderApp DecoderApp; do
  found=""
  for name in "${app}Static" "$app"; do
    found=$(find "$build/src/bin" "$build/cmake" -type f -name "$name" -perm -u+x 2> /dev/null \
      | head -n 1)
    [ -n "$found" ] && break
  done
  [ -n "$found" ] || die 4 "the build made no $app executable (log: $log)"
  cp -f "$found" "$build/bin/${app}Static" || die 4 "cannot copy $found to $build/bin"
done
rm -rf "$build/cfg"
cp -r "$build/src/cfg" "$build/cfg" || die 4 "cannot copy the configs to $build/cfg"

# 4. the vtm codec finds and runs them
check=$("$python" - "$build" 2>&1 << 'PY'
import sys
try:
    from nicspec_utils.codecs.classic import VtmCodec
    from nicspec_utils.errors import DataError, UsageError
except ImportError as exc:
    sys.exit(f"{sys.executable} cannot import nicspec_utils ({exc}): activate .venv or set PYTHON")
try:
    codec = VtmCodec(vtm_dir=sys.argv[1])
except (UsageError, DataError) as exc:
    sys.exit(f"the vtm codec rejects the build: {exc}")
print(f"{codec.version}: {codec.encoder}, {codec.decoder}, {codec.cfg}")
PY
) || die 5 "$(echo "$check" | tail -n 1)"
echo "$check"
echo "export NICSPEC_VTM_DIR=$build"
