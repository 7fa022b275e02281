"""The async-jobs module on one machine: moto server + Terraform + API Gateway and SQS played locally.

``python -m async_jobs_local up`` serves the API on http://127.0.0.1:8080; ``demo`` runs a job end
to end. From Python::

    from async_jobs_local import LocalDeployment

    with LocalDeployment("examples/local", port=0) as deployment:
        print(deployment.url, deployment.outputs["state_bucket_name"])
"""

from __future__ import annotations

from .client import JobsClient, Response
from .deployment import DeploymentError, LocalDeployment

__all__ = ["DeploymentError", "JobsClient", "LocalDeployment", "Response"]
