# The web front under abuse (issue 10 findings 5-8, 11; issue 9 section 2):
# connection caps and deadlines, the login limiter, the hashing queue,
# Origin, static-file headers, /metrics, and /healthz under hung stores.
chat_pytest(integration_wsfront_limits test_wsfront_limits.py)
chat_pytest(integration_wsfront_health test_wsfront_health.py)
chat_pytest(integration_wsfront_stall test_wsfront_stall.py)
chat_pytest(integration_wsfront_watchdog test_wsfront_watchdog.py)
