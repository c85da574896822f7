#!/usr/bin/env bash
# Runs every fuzz target, one after another, for SECONDS each (default 600).
#   fuzz/run.sh [seconds] [target...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain RUSTC_BOOTSTRAP=1 lets
# rustc accept the nightly flags cargo-fuzz passes. Seeds from fuzz/seeds/<target>/ are copied
# into fuzz/corpus/<target>/ (git-ignored) first; crashes land in fuzz/artifacts/<target>/.
# Logs: fuzz/artifacts/<target>.log. One fuzzing process per target (libFuzzer default; -jobs=1
# would fork a child whose log goes to fuzz-0.log instead).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(hdf5_open keras_archive keras_config legacy_h5 marshal npy doctor model_build model_file compile_config)
fi
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
    case "$t" in
        keras_config|compile_config) max_len=65536 ;;
        model_build) max_len=4096 ;;
        *) max_len=262144 ;;
    esac
    mkdir -p "corpus/$t" "artifacts/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    echo "== $t: ${secs}s, -max_len=$max_len"
    cargo fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" 2>&1 | tee "artifacts/$t.log"
done
