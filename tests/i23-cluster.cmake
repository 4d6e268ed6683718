# Redis Cluster groundwork (issue 23): the slot-routing client of
# storage/rcluster.h. Its pure half (CRC16, slots and hash tags, CLUSTER
# SLOTS, MOVED/ASK) as a unit test; the async and blocking clients against
# a real 3+3 cluster (slot migration, manual failover, kill -9 of a
# primary) and a standalone redis-server, through tests/rcluster_probe.c.
chat_unit_test(test_rcluster chatrcluster)

add_executable(rcluster_probe rcluster_probe.c)
target_link_libraries(rcluster_probe PRIVATE chatrcluster)

chat_pytest(integration_rcluster test_rcluster.py)
set_tests_properties(integration_rcluster PROPERTIES TIMEOUT 600)
