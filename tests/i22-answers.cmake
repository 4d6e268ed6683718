# Issue 22, the answers part: every answer bounded, and conversations
# counted in what they cost. unread is paged (finding 7); history pages
# fit a packet, over MQTT and HTTP (finding 8); a DM goes only to a user
# who exists (finding 13); the rooms and DM conversations of a user are
# capped; a request refused for NUL, or whose answer is over the packet
# limit, gets an error with its id.
chat_unit_test(test_history_fit chatstore)
chat_pytest(integration_unread_pages test_unread_pages.py)
chat_pytest(integration_history_size test_history_size.py)
chat_pytest(integration_dm_targets test_dm_targets.py)
chat_pytest(integration_conversation_caps test_conversation_caps.py)
chat_pytest(integration_rpc_replies test_rpc_replies.py)
