# The web front: unit tests of its pure parts, integration tests against
# real servers (HTTP, WebSocket, the browser app, the benchmark's smoke run).
chat_unit_test(test_wsfront chatwsfront)

chat_pytest(integration_wsfront_http test_wsfront_http.py)
chat_pytest(integration_wsfront_ws test_wsfront_ws.py)
chat_pytest(integration_wsfront_browser test_wsfront_browser.py)
chat_pytest(integration_wsfront_bench test_wsfront_bench.py)
