# Store bounds and Redis AUTH (issue 9 sections 2-3, issue 10 finding 13):
# every store call returns within store_timeout_ms whatever the store does,
# and every component authenticates to Redis.
chat_unit_test(test_store_bounds chatstore)
chat_unit_test(test_redis_auth_config chatcore)
chat_pytest(integration_store_bounds test_store_bounds.py)
chat_pytest(integration_redis_auth test_redis_auth.py)
