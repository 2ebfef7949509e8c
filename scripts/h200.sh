#!/bin/bash
# `tsa bench` on a lent NVIDIA H200 (device tool, kind nvidia-h200), on Dawn's Vulkan and/or OpenGL
# backend, with the PyTorch SDPA peers where python3 has torch (they are timed with the first adapter).
#
# Prepare here (everything under the git-ignored .dev/), then run with carry [".dev", "dist", "build"]:
#   npm run build
#   mkdir -p .dev/gl && (cd .dev/gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
#   xz -T2 -c "$(which node)" > .dev/node.xz
#   tar -cJf .dev/webgpu.tar.xz -C node_modules webgpu/package.json webgpu/index.js webgpu/dist/linux-x64 tinybench
#   git rev-parse HEAD > .dev/commit
# Device:
#   bash scripts/h200.sh                      the sweep: Vulkan, L 8K-128K, H 32, Hkv 8, D 128, structured
#   ADAPTERS=vulkan,opengl bash scripts/h200.sh
#   bash scripts/h200.sh --lengths 16384 --no-cost-rule      (flags replace the sweep's; --adapter comes from ADAPTERS)
# Writes $OUT/bench-<adapter>.{json,svg,log} and $OUT/gpu.txt.
set -u
OUT=${OUT:-/tmp/out}
DEV=${DEV:-.dev}
mkdir -p "$OUT"

# The setup of ../shared/tools/h200-setup.sh: loader packages to /, node to /tmp/node, NVIDIA's ICD and EGL vendor files.
for f in "$DEV"/gl/*.deb; do dpkg -x "$f" /; done
# Dawn dlopens the unversioned GL names, which only the -dev packages ship.
for l in EGL.so.1 GLESv2.so.2 OpenGL.so.0; do ln -sf "lib$l" "/usr/lib/x86_64-linux-gnu/lib${l%.*}"; done
ldconfig
mkdir -p /tmp/node && xz -dc "$DEV/node.xz" > /tmp/node/node && chmod +x /tmp/node/node
export PATH=/tmp/node:$PATH
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
export EGL_PLATFORM=surfaceless
# The packages the bench loads at run time (a worktree's node_modules may be a link that did not travel).
[ -L node_modules ] && rm node_modules
mkdir -p node_modules && tar -xJf "$DEV/webgpu.tar.xz" -C node_modules
[ -f "$DEV/commit" ] && export TSA_COMMIT=$(cat "$DEV/commit")
export PYTHONUNBUFFERED=1

{ echo "node $(node --version); python3: $(python3 -c 'import torch; print("torch", torch.__version__)' 2>&1 | tail -1)"
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used,memory.total --format=csv; } | tee "$OUT/gpu.txt"

if [ $# -eq 0 ]; then set -- --lengths 8192,16384,32768,65536,131072 --heads 32 --kv-heads 8 --head-dim 128 --inputs structured; fi
peers=()
rc=0
IFS=, read -ra adapters <<< "${ADAPTERS:-vulkan}"
for adapter in "${adapters[@]}"; do
  node dist/harness/tools/cli.js bench --backend webgpu --adapter "$adapter" ${peers[@]+"${peers[@]}"} \
    --json "$OUT/bench-$adapter.json" --svg "$OUT/bench-$adapter.svg" "$@" 2>&1 |
    grep -v 'artificially reduced\|^$' | tee "$OUT/bench-$adapter.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  # Peers once: later adapters skip them unless the flags name peers.
  [[ " $* " == *" --peers "* || " $* " == *" --no-peers "* ]] || peers=(--no-peers)
done
exit $rc
