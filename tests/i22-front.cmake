# Issue 22, the web front's part and what it shares: sign-out's own limit
# (#10), amended text gone from the store's and Redis's files (#11), sign
# out everywhere against the leeway (#12), zxcvbn passwords and chat:users
# (#14, #13), the static folder holding only the app (#15).
chat_pytest(integration_amend_wiped test_amend_wiped.py)
chat_pytest(integration_wsfront_static_only test_wsfront_static_only.py)
chat_pytest(integration_wsfront_logout_limit test_wsfront_logout_limit.py)
chat_pytest(integration_wsfront_passwords test_wsfront_passwords.py)
chat_pytest(integration_revoke_leeway test_revoke_leeway.py)
chat_unit_test(test_revoke_iat chatstore)
