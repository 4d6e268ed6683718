# Issue 22: Redis going away and coming back (finding 4 and "failover
# without refusals"). The pure parts: backoff and log pacing, the hold of
# posts waiting for Redis (order, merging, the time bound, which errors
# mean "the script ran nothing"), the copy of the broker's connections.
chat_unit_test(test_retry chatbridge)
chat_unit_test(test_hold chatbridge)
chat_unit_test(test_conns chatbridge)
# A restart whose loading outlasts the reconnect, a flushed script cache,
# posts held through an outage and refused only past post_hold_s or
# post_hold_max, requests and typing meanwhile, presence rewritten.
chat_pytest(integration_redis_outage test_redis_outage.py)
set_tests_properties(integration_redis_outage PROPERTIES TIMEOUT 600)
# test_failover.py (ha.cmake) gained a stopped primary and load-independent
# accounting: it runs longer.
set_tests_properties(integration_failover PROPERTIES TIMEOUT 900)
