#!/usr/bin/env bash
# Packs the library, installs the tarball into an empty folder and runs the CLI from there,
# so a broken `bin`, `files` or `exports` field fails here rather than for users.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build first: the repository's .npmrc turns lifecycle scripts off (no dependency compiles anything
# at install), which also skips `prepack` here.
(cd "$root" && npm run --silent build > "$work/build.log")
tgz="$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -1)"
# A tarball without the build would install and then fail: check before installing.
# (Listed to a file first: grep -q closing the pipe early would fail tar under pipefail.)
tar -tzf "$work/$tgz" > "$work/files.txt"
grep -qx 'package/dist/cli.js' "$work/files.txt" || { echo "the tarball has no dist/cli.js" >&2; exit 1; }
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent "./$tgz"

npx --no-install lightconv --version
npx --no-install lightconv info "$root/examples/digits.onnx"
npx --no-install lightconv run "$root/examples/digits.onnx" --image "$root/examples/digit-3.png" --resize 32 --crop 32 --mean 0.5 --std 0.5 --labels "$root/examples/digits-labels.txt"
npx --no-install lightconv conformance "$root/tests/fixtures/models"
node --input-type=module -e "import { loadOnnx, Tensor } from 'lightconv'; import * as o from 'lightconv/onnx'; if (typeof loadOnnx !== 'function' || typeof o.loadOnnx !== 'function' || typeof Tensor !== 'function') process.exit(1); console.log('ESM import ok');"
node -e "const l = require('lightconv'); if (typeof l.loadOnnx !== 'function') process.exit(1); console.log('CJS require ok');"
cp "$root"/scripts/consumer/* .
node one-class.cjs "$root/examples/digits.onnx" 10
# The published declarations as consumers compile them (skipLibCheck: false), with the repository's
# TypeScript: node16 and nodenext (ESM and CommonJS files), bundler with no Node types and an
# ES2022 lib (a browser project), node10 (through typesVersions; with esModuleInterop, as
# `tsc --init` sets, because the ndarray and protobuf typings are `export =` modules).
npm install --no-audit --no-fund --silent --no-save "typescript@$(node -p "require('$root/node_modules/typescript/package.json').version")" "@types/node@$(node -p "require('$root/node_modules/@types/node/package.json').version")"
npx --no-install tsc -p tsconfig.json --module node16 --moduleResolution node16
npx --no-install tsc -p tsconfig.json --module nodenext --moduleResolution nodenext
npx --no-install tsc -p tsconfig.browser.json
npx --no-install tsc -p tsconfig.node10.json
echo "types check under node16, nodenext, bundler and node10"
# lightconv/gpu imports without gpu.js (an optional peer, not installed here) and says what is missing when used.
node --input-type=module -e "import { gpu } from 'lightconv/gpu'; try { await gpu(); process.exit(1); } catch (e) { if (!/gpu\.js/.test(e.message)) throw e; console.log('lightconv/gpu without gpu.js: ' + e.message); }"
# The workflow from the tarball: decoding worker, fonts and the rasteriser's WebAssembly must be found in dist/.
data="$work/data"
mkdir -p "$data"
for c in dab_negative dab_positive; do mkdir -p "$data/$c"; ls "$root/datasets/ihc_patches/$c" | head -12 | while read -r f; do cp "$root/datasets/ihc_patches/$c/$f" "$data/$c/"; done; done
npx --no-install lightconv train --data "$data" --arch light_cnn --input-size 16 --epochs 1 --batch 8 --folds 2 --out "$work/run" > "$work/train.log"
tail -3 "$work/train.log"
test -s "$work/run/report.md" && test -s "$work/run/plots/roc.png" && test -s "$work/run/best.onnx"
npx --no-install lightconv predict --model "$work/run/best.onnx" "$data/dab_positive" | head -3
# Explanations from the tarball: the overlay's fonts and rasteriser, the activation grids.
img="$(ls "$data/dab_positive"/*.png | head -1)"
npx --no-install lightconv gradcam --model "$work/run/best.onnx" --image "$img" --out "$work/cam.png"
npx --no-install lightconv activations --model "$work/run/best.onnx" --image "$img" --out "$work/maps" | tail -1
npx --no-install lightconv explore "$work/run/best.onnx" --image "$img" --out "$work/explore" | tail -1
npx --no-install lightconv app --model "$work/run/best.onnx" --out "$work/app" | tail -1
test -s "$work/cam.png" && test -s "$work/maps/index.md" && test -s "$work/explore/explorer.js" && test -s "$work/app/app.js"
npx --no-install lightconv demo --help > /dev/null
