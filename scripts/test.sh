#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the Keras oracle when missing
# (tools/oracle/setup.sh, idempotent), then runs every Rust test with the oracle required,
# so interop tests against real Keras cannot silently skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/oracle/setup.sh
export STRATA_REQUIRE_ORACLE=1
cargo test --workspace --locked --no-fail-fast "$@"
