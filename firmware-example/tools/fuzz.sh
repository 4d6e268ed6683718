#!/bin/sh
# Builds the decoder fuzz target with clang's libFuzzer (+ ASan, UBSan) and
# runs it for a bounded time. Any crash, sanitizer report or leak fails.
#
#   tools/fuzz.sh SRC_DIR OUT_DIR        CHAT_FUZZ_SECONDS (default 60) sets the time
#
# The working corpus lives in OUT_DIR/corpus and grows across runs; the
# seeds in fuzz/corpus are read, never written.
set -eu
src=$(cd "$1" && pwd) out=$2
secs=${CHAT_FUZZ_SECONDS:-60}
CLANG=${FUZZ_CC:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "fuzz: $CLANG not found (scripts/install-deps.sh --test installs clang)" >&2
	exit 1
fi
mkdir -p "$out/corpus"
out=$(cd "$out" && pwd)
"$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I"$src/src" "$src/fuzz/fuzz_decoders.c" "$src/src/fw_mqtt.c" "$src/src/fw_json.c" \
	"$src/src/fw_env.c" "$src/src/fw_err.c" -o "$out/fw_fuzz_decoders"
echo "fuzz: running fw_fuzz_decoders for ${secs}s"
cd "$out"
# -jobs/-workers stay at 1: the machine has two cores and other tests run
exec ./fw_fuzz_decoders -max_total_time="$secs" -max_len=4096 -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 -dict="$src/fuzz/decoders.dict" \
	corpus "$src/fuzz/corpus"
