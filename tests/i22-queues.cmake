# Issue 22, finding 6: what the broker keeps for a client that never
# acknowledges, and the bridge's share of the same limits (posts refused
# with a notice before its queue could drop one the broker acknowledged).
chat_unit_test(test_backlog chatacl)
chat_pytest(integration_broker_queues test_broker_queues.py)
