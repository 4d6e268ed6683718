# Limits on every input and rights that end with their token (issue 10):
# rate limits, paged rooms.list, the role stamp, NUL refusal, room events.
chat_unit_test(test_limit chatbridge)
chat_pytest(integration_limits test_limits.py)
