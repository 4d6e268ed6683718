# Deployment (README "Deploying"): TLS on the broker and the web front with
# stock clients and Chromium, outside Docker; and the compose stack built on
# a local base image, run with host networking behind its load balancer.
chat_pytest(integration_deploy_tls test_deploy_tls.py)

# The image holds its own (normal) build of the sources, so the compose test
# runs once, in the normal build's suite, not again under the sanitizers.
if(NOT CHAT_SANITIZE)
  chat_pytest(integration_deploy_compose test_deploy_compose.py)
  set_tests_properties(integration_deploy_compose PROPERTIES RUN_SERIAL TRUE)
endif()
