# The store (storage/): one conformance suite, run against each backend.
# SQLite here on a temporary file; MongoDB through pytest, against a real
# FerretDB started by the harness.
chat_unit_test(test_store chatstore)
chat_pytest(integration_store_conformance test_store_conformance.py)
chat_unit_test(test_store_sqlite_open chatstore)
