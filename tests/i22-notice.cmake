# Issue 22, acknowledged means kept: a publish the broker plugin refuses is
# never acknowledged ahead of its refusal (an MQTT 3.1.1 QoS 1 publish
# becomes its own notice, delivered before its PUBACK).
chat_pytest(integration_refused_before_acknowledged test_refused_before_acknowledged.py)
