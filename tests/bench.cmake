# The benchmarks' own smoke runs: each script runs end to end in a tiny
# configuration and prints its table; the figures are not asserted (a loaded
# machine would make that flaky), that they are there for every system is.
chat_pytest(integration_bench_peer test_bench_peer.py)
chat_pytest(integration_bench_ha test_bench_ha.py)
