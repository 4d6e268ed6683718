# Edits and deletions of messages and rooms (PROTOCOL.md 1.1, issue 13):
# msg.edit and msg.delete, and room.delete, on two nodes, both stores,
# refusals, restarts.
chat_pytest(integration_edits test_edits.py)
chat_pytest(integration_room_delete test_room_delete.py)
chat_pytest(integration_wsfront_edits test_wsfront_edits.py)
