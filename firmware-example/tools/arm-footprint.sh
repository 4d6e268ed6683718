#!/bin/sh
# Cross-compiles the firmware client core for a Cortex-M4 (Debian's
# gcc-arm-none-eabi, -Os, newlib-nano), links the smallest complete image
# around it (arm/footprint_main.c), and prints the flash and RAM figures.
#
#   tools/arm-footprint.sh --report SRC_DIR OUT_DIR   print; no toolchain is not an error
#   tools/arm-footprint.sh --check  SRC_DIR OUT_DIR   print, fail without a toolchain or
#                                                     when over the targets
# Targets (the issue): core <= 12 KiB flash, <= 2 KiB static RAM besides
# the buffers the application chooses.
set -eu
mode=$1 src=$2 out=$3
FLASH_MAX=12288
RAM_MAX=2048

CC=${ARM_CC:-arm-none-eabi-gcc}
if ! command -v "$CC" >/dev/null 2>&1 || ! command -v arm-none-eabi-size >/dev/null 2>&1; then
	echo "firmware footprint: $CC not found (scripts/install-deps.sh --test installs gcc-arm-none-eabi)"
	[ "$mode" = --report ] && exit 0
	exit 1
fi
mkdir -p "$out"
flags="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os -std=c11
 -ffunction-sections -fdata-sections -Wall -Wextra -Werror -Wshadow --specs=nano.specs"
objs=""
for f in fw_err fw_mqtt fw_json fw_env fw_client; do
	# shellcheck disable=SC2086
	"$CC" $flags -I"$src/src" -c "$src/src/$f.c" -o "$out/$f.o"
	objs="$objs $out/$f.o"
done
# shellcheck disable=SC2086
"$CC" $flags -I"$src/src" -c "$src/arm/footprint_main.c" -o "$out/footprint_main.o"
# shellcheck disable=SC2086
"$CC" $flags --specs=nosys.specs -Wl,--gc-sections -Wl,-Map="$out/fw-image.map" \
	"$out/footprint_main.o" $objs -o "$out/fw-image.elf"

# The core's own objects, every function counted (an upper bound: the
# linker drops what an application does not call).
# shellcheck disable=SC2086
totals=$(arm-none-eabi-size -t $objs | tail -1)
text=$(echo "$totals" | awk '{print $1}')
data=$(echo "$totals" | awk '{print $2}')
bss=$(echo "$totals" | awk '{print $3}')
flash=$((text + data))
ram=$((data + bss))
image=$(arm-none-eabi-size "$out/fw-image.elf" | tail -1)
sym_size() {
	hex=$(arm-none-eabi-nm -S "$out/fw-image.elf" | awk -v s="$1" '$4 == s {print $2}')
	printf '%d' "0x${hex:-0}"
}
client=$(sym_size fw_footprint_client)
convs=$(sym_size fw_footprint_convs)
heap=$(arm-none-eabi-nm "$out/fw-image.elf" | awk '$3 ~ /^_?(malloc|_malloc_r|free|_free_r|calloc|realloc)$/' | wc -l)

{
	echo "firmware core, Cortex-M4 (thumb, -Os, newlib-nano), $("$CC" -dumpversion):"
	printf '  core .text %6d  .data %4d  .bss %4d   -> flash %6d B (target <= %d), static RAM %4d B\n' \
		"$text" "$data" "$bss" "$flash" "$FLASH_MAX" "$ram"
	printf '  client state: struct fw_client %d B + %d conversations %d B (each %d B)\n' \
		"$client" 2 "$convs" $((convs / 2))
	printf '  core static RAM + client state = %d B (target <= %d), plus buffers rx >= 256 B, tx >= 256 B\n' \
		$((ram + client + convs)) "$RAM_MAX"
	echo "  whole minimal image (core + libc parts + crt0 + stub port):"
	echo "    text data bss: $(echo "$image" | awk '{print $1, $2, $3}')   heap functions linked: $heap"
} | tee "$out/footprint.txt"

[ "$mode" = --check ] || exit 0
fail=0
if [ "$flash" -gt "$FLASH_MAX" ]; then echo "FAIL: core flash $flash > $FLASH_MAX"; fail=1; fi
if [ $((ram + client + convs)) -gt "$RAM_MAX" ]; then
	echo "FAIL: core static RAM + client state $((ram + client + convs)) > $RAM_MAX"; fail=1
fi
if [ "$heap" -ne 0 ]; then echo "FAIL: the image links a heap allocator"; fail=1; fi
[ "$fail" -eq 0 ] && echo "firmware footprint: within targets"
exit $fail
