# Deployment (README "Deploying"): TLS on the broker and the web front with
# stock clients and Chromium, outside Docker; and the compose stack built on
# a local base image, run with host networking behind its load balancer.
chat_pytest(integration_deploy_tls test_deploy_tls.py)
