# Edits and deletions of messages (PROTOCOL.md 1.1 section 5, issue 13):
# msg.edit and msg.delete on two nodes, both stores, refusals, restarts.
chat_pytest(integration_edits test_edits.py)
