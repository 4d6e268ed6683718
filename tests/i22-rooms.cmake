# Issue 22, finding 2 and the invitation half of 13: private-room state of
# any size reaches every broker in bounded pieces, changes travel as deltas,
# nothing unknown is open, rooms have a size limit and invitations name
# users who exist.
chat_unit_test(test_acl_batch chatbridge)
chat_pytest(integration_private_rooms_large test_private_rooms_large.py)
