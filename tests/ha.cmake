# Redis high availability (issue 14, README "Redis high availability"):
# a primary, two replicas and three sentinels, two chat nodes under
# traffic; the primary killed twice (the old one back as a replica in
# between), a planned switchover with the old primary alive, posts no
# replica has (replicas stopped) neither delivered nor lost, and a refused
# sentinel password stopping the bridge. Nothing accepted is lost, no seq
# is issued twice, posting works again within 5 s.
chat_pytest(integration_failover test_failover.py)
set_tests_properties(integration_failover PROPERTIES TIMEOUT 300)

# The Sentinel settings and the lookup's error line.
chat_unit_test(test_sentinel_config chatstore)
