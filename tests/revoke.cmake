# Token revocation (issue 13): user.revoke, POST /api/logout, every broker
# refusing and cutting revoked tokens, state across restarts.
chat_unit_test(test_revoked chatacl)
chat_pytest(integration_revoke test_revoke.py)
