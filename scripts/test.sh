#!/usr/bin/env bash
# The test command: installs/starts what the tests need (scripts/ensure-services.sh),
# then runs every test target, then the TypeScript reader's tests
# (clients/typescript: npm ci && npm test, against the cachedeck binary that
# `cargo test` built). Extra arguments go to `cargo test` and then only the
# cargo tests run, e.g.
#   scripts/test.sh                      # everything
#   scripts/test.sh --test it foundation:: # one area of the integration tests
#   scripts/test.sh -- --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-services.sh

# `--all-targets` unless the caller picked targets themselves.
targets=(--all-targets)
for arg in "$@"; do
    case "$arg" in
    --) break ;;
    --lib | --bins | --bin | --bin=* | --tests | --test | --test=* | --benches | --bench | --bench=* | \
        --examples | --example | --example=* | --doc | --all-targets)
        targets=()
        break
        ;;
    esac
done

export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
cargo test "${targets[@]}" "$@"

[ $# -eq 0 ] || exit 0

# The TypeScript reader, end to end against the binary `cargo test` just
# built for the integration tests (it leaves it at <target>/debug/cachedeck).
# A plain `cargo build` would rebuild dependencies with other features, so it
# runs only if the binary is somehow missing.
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export CACHEDECK_BIN="$target_dir/debug/cachedeck"
[ -x "$CACHEDECK_BIN" ] || cargo build --bin cachedeck
printf '\n==> clients/typescript: npm ci && npm test (CACHEDECK_BIN=%s)\n' "$CACHEDECK_BIN"
cd clients/typescript
npm ci --no-audit --no-fund
npm test
