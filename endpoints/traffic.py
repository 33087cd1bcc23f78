"""Traffic and mirror shares as users write them: `blue=90,green=10` or Azure's `"blue=90 green=10"`
(or a JSON object), checked against the endpoint's deployments the way Azure checks them."""

from __future__ import annotations

import re

_PAIR = re.compile(r"^([A-Za-z0-9-]{1,32})=(\d{1,3})$")
MAX_MIRROR = 50
"""Azure caps the mirrored share of an endpoint at 50%."""


class TrafficError(ValueError):
    """Unusable shares; the message names the part that is wrong."""


def parse(text: str | dict | None, what: str = "traffic") -> dict[str, int]:
    """{deployment: percent} from 'blue=90,green=10', 'blue=90 green=10' or a dict."""
    if text is None:
        return {}
    if isinstance(text, dict):
        return {str(name): _percent(value, what, str(name)) for name, value in text.items()}
    shares: dict[str, int] = {}
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        match = _PAIR.match(part)
        if match is None:
            raise TrafficError(f"{what}: {part!r} is not NAME=PERCENT (e.g. blue=90,green=10)")
        shares[match.group(1)] = _percent(int(match.group(2)), what, match.group(1))
    return shares


def _percent(value: object, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise TrafficError(f"{what}: {name}={value!r} is not a whole percent from 0 to 100")
    return value


def check(traffic: dict[str, int], mirror: dict[str, int], deployments: set[str]) -> None:
    """Azure's rules: shares name existing deployments, traffic sums to 100 (or 0: nothing served),
    a mirrored deployment takes no live traffic, mirror shares stay within 50%."""
    for what, shares in (("traffic", traffic), ("mirror", mirror)):
        unknown = sorted(set(shares) - deployments)
        if unknown:
            raise TrafficError(f"{what}: no deployment named {', '.join(unknown)} (have: {', '.join(sorted(deployments)) or 'none'})")
    total = sum(traffic.values())
    if traffic and total not in (0, 100):
        raise TrafficError(f"traffic: the shares sum to {total}; they must sum to 100")
    for name, share in mirror.items():
        if share > MAX_MIRROR:
            raise TrafficError(f"mirror: {name}={share} is above the {MAX_MIRROR}% Azure allows")
        if share and traffic.get(name, 0):
            raise TrafficError(f"mirror: {name} takes live traffic ({traffic[name]}%); mirror to a deployment with none")
