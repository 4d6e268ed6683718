# Faults: processes killed, stopped or cut off under traffic, and what the
# contract promises through them (issue 9).
chat_pytest(integration_bridge_acl_converge test_bridge_acl_converge.py)
chat_pytest(integration_faults test_faults.py)
chat_unit_test(test_journal chatbridge)
chat_pytest(integration_bridge_journal test_bridge_journal.py)
