# Issue 22, acknowledged means kept: a publish the broker plugin refuses is
# never acknowledged ahead of its refusal (an MQTT 3.1.1 QoS 1 publish
# becomes its own notice, delivered before its PUBACK).
chat_pytest(integration_refused_before_acknowledged test_refused_before_acknowledged.py)
chat_unit_test(test_refusal chatacl PkgConfig::MOSQ)
target_sources(test_refusal PRIVATE ${CMAKE_SOURCE_DIR}/authplugin/refusal.c)
target_include_directories(test_refusal PRIVATE ${CMAKE_SOURCE_DIR}/authplugin ${MOSQ_BROKER_INCLUDE})
