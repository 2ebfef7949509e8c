#!/bin/bash
# The WebGPU backend on a lent NVIDIA H200 (device tool, kind nvidia-h200), in one call:
# adapter info and limits, correctness on a mid shape, tile variants, dense vs token-sparse
# timings (scripts/webgpu-bench.mjs), and the PyTorch SDPA peer (harness/tools/peers/torch_sdpa.py).
#
# Prepare here (all git-ignored), then run with carry [".node", ".gl", "dist"]:
#   npx tsc -p .
#   mkdir -p .node && xz -T2 -c "$(which node)" > .node/node.xz
#   tar -cJf .node/webgpu.tar.xz -C node_modules webgpu/package.json webgpu/index.js webgpu/dist/linux-x64
#   mkdir -p .gl && (cd .gl && apt-get download libegl1 libglvnd0 libgles2 libopengl0)
#   device: bash scripts/h200.sh [webgpu-bench.mjs flags]   (TORCH_LENGTHS=... for the peer; empty skips it)
#   device: bash scripts/h200.sh lab [attend-lab.mjs flags]  (kernel lab only: attend variants, matmul ceiling)
#
# Dawn's Vulkan backend finds no adapter there; its OpenGL backend runs through NVIDIA's EGL
# (glvnd from .gl, the driver's libraries from /usr/local/nvidia/lib64).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/node /tmp/gl
xz -dc .node/node.xz > /tmp/node/node && chmod +x /tmp/node/node
export PATH=/tmp/node:$PATH
mkdir -p node_modules && tar -xJf .node/webgpu.tar.xz -C node_modules
for f in .gl/*.deb; do dpkg -x "$f" /tmp/gl; done
# Dawn dlopens the unversioned names (shipped only by the -dev packages).
for l in EGL.so.1 GLESv2.so.2 OpenGL.so.0; do ln -sf "lib$l" "/tmp/gl/usr/lib/x86_64-linux-gnu/lib${l%.*}"; done
export LD_LIBRARY_PATH=/tmp/gl/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
for j in /usr/share/glvnd/egl_vendor.d/10_nvidia.json /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; do
  if [ -f "$j" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$j; break; fi
done
export EGL_PLATFORM=surfaceless
echo "node $(node --version); EGL vendor file ${__EGL_VENDOR_LIBRARY_FILENAMES:-none}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used,memory.total --format=csv

set -o pipefail
if [ "${1:-}" = lab ]; then
  shift
  node scripts/attend-lab.mjs --out "$OUT/lab.json" "$@" 2>&1 | grep -v 'BackendVk\|libvulkan\|artificially reduced\|unreachable\|^ *\^\|^ *let \|^$\|Compilation log\|warning' | tee -a "$OUT/lab.log"
  exit
fi
bench() { node scripts/webgpu-bench.mjs "$@" 2>&1 | grep -v 'BackendVk\|libvulkan\|artificially reduced\|^$'; }
# SM/memory clocks and P-state every 250 ms, to see what the GPU runs at under OpenGL compute.
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,pstate,power.draw,utilization.gpu --format=csv,noheader -lms 250 > "$OUT/smi.csv" &
smi=$!
# Adapter, limits, correctness and tile variants first; the PyTorch peer; then the sweep with the
# fastest variant's tiles (SWEEP2: a second sweep with its own flags, e.g. other shapes).
bench --out "$OUT/webgpu-check.json" --phases check,variants "$@" | tee "$OUT/webgpu-check.log"
rc=$?
if [ -n "${TORCH_LENGTHS-8192,16384,32768,65536,131072}" ]; then
  PYTHONUNBUFFERED=1 python3 harness/tools/peers/torch_sdpa.py --lengths "${TORCH_LENGTHS-8192,16384,32768,65536,131072}" --out "$OUT/torch.json" 2>&1 | tee "$OUT/torch.log"
fi
bench --out "$OUT/webgpu.json" --phases sweep --tiles-from "$OUT/webgpu-check.json" "$@" | tee "$OUT/webgpu.log" || rc=$?
if [ -n "${SWEEP2:-}" ]; then
  bench --out "$OUT/webgpu2.json" --phases sweep --tiles-from "$OUT/webgpu-check.json" $SWEEP2 | tee -a "$OUT/webgpu.log" || rc=$?
fi
kill "$smi"
exit $rc
