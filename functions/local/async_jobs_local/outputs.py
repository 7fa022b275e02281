"""What the runtime needs to know about a deployment, from Terraform outputs and the live resources.

examples/local outputs everything; a root module such as examples/complete outputs only
``api_routes``, ``jobs_url`` and ``queue_url``: the rest is read from the deployed resources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_REGION = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z]{2}(?:-[a-z]+)+-\d):")
_EXECUTE_API = re.compile(r"^https://(?P<api_id>[a-z0-9]+)\.execute-api\.[^/]+(?:/(?P<stage>[^/]+))?")


def region_of(outputs: dict[str, Any], default: str) -> str:
    found = _REGION.search(json.dumps(outputs))
    return found.group(1) if found else default


def complete_outputs(outputs: dict[str, Any], client: Callable[[str], Any]) -> None:
    """Fill, in place, what the runtime needs and the root module does not output."""
    queue_url = outputs.get("queue_url")
    if queue_url and not outputs.get("queue_arn"):
        outputs["queue_arn"] = client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
    if outputs.get("queue_arn") and not outputs.get("worker_event_source_mapping"):
        mappings = client("lambda").list_event_source_mappings(EventSourceArn=outputs["queue_arn"])
        for mapping in mappings.get("EventSourceMappings", []):
            outputs.setdefault("worker_function_name", mapping["FunctionArn"].split(":")[-1])
            outputs["worker_event_source_mapping"] = {
                "batch_size": mapping.get("BatchSize", 10),
                "maximum_batching_window_in_seconds": mapping.get("MaximumBatchingWindowInSeconds", 0),
                "maximum_concurrency": (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency", 2),
                "function_response_types": mapping.get("FunctionResponseTypes", []),
                "enabled": mapping.get("State") == "Enabled",
            }
            break
    match = _EXECUTE_API.match(str(outputs.get("jobs_url") or outputs.get("api_url") or ""))
    if match and not outputs.get("api_type"):
        api_id, stage = match.group("api_id"), match.group("stage") or "$default"
        outputs.setdefault("api_id", api_id)
        outputs.setdefault("api_stage_name", stage)
        try:
            client("apigateway").get_rest_api(restApiId=api_id)
            outputs["api_type"] = "rest"
        except Exception:  # noqa: BLE001 - not a REST API: an HTTP API
            outputs["api_type"] = "http"
    if not outputs.get("api_authorization") and outputs.get("api_id"):
        outputs["api_authorization"] = deployed_authorization(outputs, client)


def deployed_authorization(outputs: dict[str, Any], client: Callable[[str], Any]) -> str:
    api_id = str(outputs["api_id"])
    if outputs.get("api_type") == "http":
        routes = client("apigatewayv2").get_routes(ApiId=api_id).get("Items", [])
        kinds = {route.get("AuthorizationType", "NONE") for route in routes}
        return next((kind for kind in ("AWS_IAM", "JWT") if kind in kinds), "NONE")
    apigw = client("apigateway")
    for resource in apigw.get_resources(restApiId=api_id, embed=["methods"]).get("items", []):
        for method in (resource.get("resourceMethods") or {}).values():
            kind = method.get("authorizationType", "NONE")
            if kind == "COGNITO_USER_POOLS":
                return "COGNITO"
            if kind in ("AWS_IAM", "CUSTOM"):
                return "AWS_IAM" if kind == "AWS_IAM" else "JWT"
            if method.get("apiKeyRequired"):
                return "API_KEY"
    return "NONE"
