#!/usr/bin/env bash
# The test command: installs/starts what the tests need (scripts/ensure-services.sh),
# then runs every test target. Extra arguments go to `cargo test`, e.g.
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
exec cargo test "${targets[@]}" "$@"
