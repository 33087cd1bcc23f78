"""Online endpoints with several deployments: a router that splits and mirrors traffic, deployment
state as the managed online endpoints report it, per-deployment telemetry and a rollout comparison
(see README.md, "Online endpoints")."""

from endpoints.extension import EndpointExtension

__all__ = ["EndpointExtension"]
