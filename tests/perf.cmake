# Chat-path optimization (issue 11): what the cheaper path must still keep.
chat_pytest(integration_bridge_cursor test_bridge_cursor.py)
