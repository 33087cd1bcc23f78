"""A score.py that does, on request, everything the capture tests look for."""

import json
import logging
import sys
import time
import urllib.request

logger = logging.getLogger("echo_score")


def init():
    logging.basicConfig(level=logging.INFO)
    print("init: model loaded")


class ModelInputError(ValueError):
    pass


def run(raw_data):
    data = json.loads(raw_data)
    print(json.dumps({"input": data, "note": "scored"}))
    if "stderr" in data:
        print(data["stderr"], file=sys.stderr)
    if "write" in data:
        sys.stdout.write(data["write"] + "\n")
    if "log" in data:
        logger.warning("scoring %s", data["log"], extra={"model_version": "7"})
    if "sleep" in data:
        deadline = time.monotonic() + data["sleep"]
        while time.monotonic() < deadline:  # short sleeps, so the scoring timeout can stop it
            time.sleep(0.01)
    if "fail" in data:
        raise ModelInputError(data["fail"])
    if "call" in data:
        return _calls(data["call"])
    if "unreachable" in data:
        import urllib3

        urllib3.PoolManager().request("GET", data["unreachable"], retries=False)
    if "big" in data:
        print(json.dumps({"input": "x" * data["big"]}))
    if "unserializable" in data:
        return {1, 2}
    return [1, 42]


def _calls(url):
    import httpx
    import requests
    import urllib3

    codes = [requests.get(url + "/requests").status_code, httpx.get(url + "/httpx").status_code]
    with urllib.request.urlopen(url + "/urllib") as response:
        codes.append(response.status)
    codes.append(urllib3.PoolManager().request("GET", url + "/urllib3").status)
    return codes
