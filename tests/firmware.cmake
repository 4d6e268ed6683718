# Tests of the firmware example (firmware-example/): C unit tests of the
# MQTT codec, the envelope scanner and the client state machine (over a
# fake platform), the device against real servers, the Cortex-M4 footprint
# check, and a bounded fuzz run of the decoders.

chat_unit_test(test_fw_mqtt fwcore)
chat_unit_test(test_fw_json fwcore)
chat_unit_test(test_fw_client fwcore)

chat_pytest(integration_firmware_device test_firmware_device.py)

set(FW_DIR ${CMAKE_SOURCE_DIR}/firmware-example)

# Cross build with Debian's gcc-arm-none-eabi: prints .text/.data/.bss and
# fails when the core is over 12 KiB flash or 2 KiB static RAM, or when the
# image links a heap allocator.
add_test(NAME firmware_arm_footprint
  COMMAND ${FW_DIR}/tools/arm-footprint.sh --check ${FW_DIR}
          ${CMAKE_BINARY_DIR}/firmware-example/arm-check)
set_tests_properties(firmware_arm_footprint PROPERTIES TIMEOUT 300)

# libFuzzer over the packet decoder and the envelope scanner; 60 s unless
# CHAT_FUZZ_SECONDS says otherwise (for long runs call tools/fuzz.sh).
if(DEFINED ENV{CHAT_FUZZ_SECONDS})
  math(EXPR FW_FUZZ_TIMEOUT "$ENV{CHAT_FUZZ_SECONDS} + 300")
else()
  set(FW_FUZZ_TIMEOUT 600)
endif()
add_test(NAME firmware_fuzz_decoders
  COMMAND ${FW_DIR}/tools/fuzz.sh ${FW_DIR} ${CMAKE_BINARY_DIR}/firmware-example/fuzz)
set_tests_properties(firmware_fuzz_decoders PROPERTIES TIMEOUT ${FW_FUZZ_TIMEOUT})
