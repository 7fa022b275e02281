"""The async-jobs module on one machine: moto server + Terraform + API Gateway and SQS played locally.

``python -m async_jobs_local up`` serves the API on http://127.0.0.1:8080; ``demo`` runs a job end
to end. From Python::

    from async_jobs_local import LocalStack

    with LocalStack("examples/local", port=0) as stack:
        print(stack.url, stack.outputs["state_bucket_name"])
"""

from __future__ import annotations

from .client import JobsClient, Response
from .stack import LocalStack, StackError

__all__ = ["JobsClient", "LocalStack", "Response", "StackError"]
