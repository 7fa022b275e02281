"""Cold-start wiring, one module per side: `api` for submit and status, `worker` for the worker.

Each handler imports only its own side, so its package needs only what that side uses: the
API functions never import the record checks (fastjsonschema), the sinks or redshift-connector.
"""
