# The broker plugin's limits and its part in reliability: posts refused
# with a notice while the bridge cannot take them, size and session bounds,
# Wills judged by their token.
chat_unit_test(test_sessions chatacl)
chat_pytest(integration_broker_restart test_broker_restart.py)
chat_pytest(integration_broker_limits test_broker_limits.py)
