"""A bare Gradio client over HTTP (the queue protocol the page itself uses), for tests that need several
independent sessions at once: press a button by its elem_id, with some inputs set, and wait for the result."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid


class Page:
    def __init__(self, url: str, opener=None):
        self.url, self.opener = url, opener or urllib.request.build_opener()
        self.config = json.loads(self._open(url + "/config").read())
        self.ids = {c["props"].get("elem_id"): c["id"] for c in self.config["components"] if c["props"].get("elem_id")}
        self.defaults = {c["id"]: c["props"].get("value") for c in self.config["components"]}
        self.session = uuid.uuid4().hex[:10]

    def _open(self, url: str, data: bytes | None = None, timeout: float = 30):
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
        return self.opener.open(req, timeout=timeout)

    def dependency(self, elem_id: str, event: str = "click") -> dict:
        target = self.ids[elem_id]
        return next(d for d in self.config["dependencies"] if [target, event] in d["targets"])

    def submit(self, elem_id: str, values: dict, event: str = "click") -> dict:
        """Join the queue; returns the dependency (for `result`)."""
        dep = self.dependency(elem_id, event)
        given = {self.ids[k]: v for k, v in values.items()}
        data = [given.get(i, self.defaults.get(i)) for i in dep["inputs"]]
        body = json.dumps({"data": data, "fn_index": dep["id"], "trigger_id": self.ids[elem_id],
                           "session_hash": self.session, "event_data": None}).encode()
        self._open(self.url + "/gradio_api/queue/join", body).read()
        return dep

    def result(self, dep: dict, timeout: float) -> dict:
        """{elem_id or component id: value} from the event's final message; raises on timeout."""
        deadline = time.monotonic() + timeout  # heartbeats keep the stream alive: a read timeout is not enough
        stream = self._open(f"{self.url}/gradio_api/queue/data?session_hash={self.session}", timeout=timeout)
        for raw in stream:
            if time.monotonic() > deadline:
                raise AssertionError(f"no result within {timeout} s")
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                assert msg.get("success"), msg
                names = {v: k for k, v in self.ids.items()}
                return {names.get(i, i): v for i, v in zip(dep["outputs"], msg["output"]["data"], strict=False)}
        raise AssertionError("stream ended without a result")
