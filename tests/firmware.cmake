# Tests of the firmware example (firmware-example/): C unit tests of the
# codec, the envelope scanner and the client state machine (with a fake
# platform), the device against real servers, the Cortex-M4 footprint
# check and a bounded fuzz run of the decoders.

chat_pytest(integration_firmware_device test_firmware_device.py)
