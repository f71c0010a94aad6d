"""The server evaluates alert rules on a cadence: gauges in /metrics, GET /v1/alerts by role, a named
thread stopped on shutdown."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from fastapi.testclient import TestClient

from inferlog.apikeys import create_key
from inferlog.monitor.alerts import ALERT_FIRED, ALERT_RESOLVED
from inferlog.privacy.policy import parse_policy
from inferlog.privacy.protect import Protection
from inferlog.server import create_app
from inferlog.store import open_store
from tests.helpers import wait_for
from tests.monitor.alerting import EventSource

POLICY = """
[[monitoring.alerts]]
name = "credit errors"
metric = "error_rate"
system = "credit"
above = 0.05
window = "15m"

[[monitoring.alerts]]
name = "fraud volume"
metric = "volume"
system = "fraud"
below = 1
window = "1h"
"""


def gauge(text: str, name: str, rule: str) -> float | None:
    found = re.search(rf'^{name}\{{rule="{re.escape(rule)}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_the_server_evaluates_rules_and_shows_them(tmp_path: Path) -> None:
    """Fire, then resolve: the gauges follow, /v1/alerts lists them for covering readers, the thread stops."""
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    keys = {
        "reader": create_key(store, "reader", ["credit"], "credit analyst")[0],
        "reader_fraud": create_key(store, "reader", ["fraud"], "fraud analyst")[0],
        "ingest": create_key(store, "ingest", ["*"], "gateway")[0],
    }
    source = EventSource(fixed={"error_rate": 0.2, "volume": None})
    protection = Protection(parse_policy(POLICY, "inferlog.toml"))
    app = create_app(store, protection=protection, metric_source=source, monitor_every=0.05)

    def get(path: str, who: str) -> dict[str, list[dict[str, object]]]:
        response = client.get(path, headers={"Authorization": f"Bearer {keys[who]}"})
        assert response.status_code == 200, response.text
        body: dict[str, list[dict[str, object]]] = response.json()
        return body

    with TestClient(app) as client:
        assert any(t.name == "inferlog-alerts" for t in threading.enumerate())

        def fired() -> str:
            text = client.get("/metrics").text
            return text if gauge(text, "inferlog_alert_firing", "credit errors") == 1.0 else ""

        text = wait_for(fired, "the credit rule to fire")
        assert gauge(text, "inferlog_alert_value", "credit errors") == 0.2
        assert gauge(text, "inferlog_alert_firing", "fraud volume") == 0.0
        value = gauge(text, "inferlog_alert_value", "fraud volume")
        assert value is not None
        assert value != value  # NaN: the source had no data
        assert re.search(r"^inferlog_alert_evaluations_total [1-9]", text, re.MULTILINE)

        alerts = get("/v1/alerts", "reader")
        assert [a["rule"] for a in alerts["firing"]] == ["credit errors"]
        assert alerts["firing"][0]["value"] == 0.2
        assert alerts["firing"][0]["scope"] == {"system": "credit"}
        assert [a["action"] for a in alerts["recent"]] == [ALERT_FIRED]
        assert get("/v1/alerts", "reader_fraud") == {"firing": [], "recent": []}  # not its system
        refused = client.get("/v1/alerts", headers={"Authorization": f"Bearer {keys['ingest']}"})
        assert refused.status_code == 403

        source.fixed["error_rate"] = 0.01
        wait_for(
            lambda: gauge(client.get("/metrics").text, "inferlog_alert_firing", "credit errors") == 0.0,
            "the credit rule to resolve",
        )
        alerts = get("/v1/alerts", "reader")
        assert alerts["firing"] == []
        assert [a["action"] for a in alerts["recent"]] == [ALERT_RESOLVED, ALERT_FIRED]
        assert len(get("/v1/alerts?limit=1", "reader")["recent"]) == 1
    assert not any(t.name == "inferlog-alerts" for t in threading.enumerate())
    store.close()


def test_no_rules_no_schedule(tmp_path: Path) -> None:
    """Without alert rules the server starts no alert thread and /v1/alerts answers empty lists."""
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    source = EventSource(fixed={"error_rate": 0.9})
    app = create_app(
        store, auth=False, protection=Protection(parse_policy("", "inferlog.toml")), metric_source=source,
        monitor_every=0.05,
    )  # fmt: skip
    with TestClient(app) as client:
        assert not any(t.name == "inferlog-alerts" for t in threading.enumerate())
        assert client.get("/v1/alerts").json() == {"firing": [], "recent": []}
    assert source.calls == []
    store.close()
