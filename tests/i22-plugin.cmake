# Issue 22, the broker plugin's part: Wills may only be posts of a valid,
# unrevoked token (findings 1, 9); MQTT 5 properties count toward the
# publish limits and the role stamp is linear (3); a CONNECT budget per user
# and coalesced presence (5); requests refused by the plugin answered with
# their id.
chat_unit_test(test_will chatacl)
chat_unit_test(test_rpc_refusal chatcore)
chat_unit_test(test_stamp chatacl PkgConfig::MOSQ)
target_sources(test_stamp PRIVATE ${CMAKE_SOURCE_DIR}/authplugin/stamp.c)
target_include_directories(test_stamp PRIVATE ${CMAKE_SOURCE_DIR}/authplugin ${MOSQ_BROKER_INCLUDE})
chat_pytest(integration_wills test_wills.py)
chat_pytest(integration_publish_properties test_publish_properties.py)
chat_pytest(integration_connect_churn test_connect_churn.py)
chat_pytest(integration_plugin_request_refusals test_plugin_request_refusals.py)
