# Deployment (README "Deploying"): TLS on the broker and the web front with
# stock clients and Chromium, outside Docker; and the compose stack built on
# a local base image, run with host networking behind its load balancer.
chat_unit_test(test_config_tls chatcore)
chat_pytest(integration_deploy_tls test_deploy_tls.py)

# The image holds its own (normal) build of the sources, so the compose test
# runs once, in the normal build's suite, not again under the sanitizers.
if(NOT CHAT_SANITIZE)
  chat_pytest(integration_deploy_compose test_deploy_compose.py)
  set_tests_properties(integration_deploy_compose PROPERTIES RUN_SERIAL TRUE)
endif()

# The TLS connect benchmark (make bench-tls) runs end to end, briefly.
if(NOT CHAT_SANITIZE)
  add_test(NAME deploy_bench_tls_smoke COMMAND ${CMAKE_SOURCE_DIR}/scripts/bench-tls.sh)
  set_tests_properties(deploy_bench_tls_smoke PROPERTIES TIMEOUT 120
    ENVIRONMENT "BUILD=${CMAKE_BINARY_DIR};SECONDS_PER_RUN=1;REPEAT=1"
    PASS_REGULAR_EXPRESSION "handshake cost per connect")
endif()
