"""`stackwatch notify test`: a person's contacts tried in order against a real local gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackwatch.cli import main

from .fake_gateway import FakeGateway

pytestmark = pytest.mark.integration


def test_notify_test_tries_contacts_in_order_and_reports_each_answer(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeGateway() as gateway:
        gateway.respond("/primary", 503, "maintenance")
        gateway.respond("/backup", 200, {"status": "queued"})
        site = {
            "site": {"id": "s", "name": "District Archive"}, "buildings": [{"id": "b"}],
            "notify": {
                "language": "en",
                "people": [{"id": "li", "contacts": [{"channel": "primary", "address": "+8613800000001"},
                                                     {"channel": "backup", "address": "+8613800000001"}]}],
                "channels": [
                    {"type": "sms-http", "id": "primary", "url": f"{gateway.url}/primary", "body": '{"t": "{text}"}'},
                    {"type": "sms-http", "id": "backup", "url": f"{gateway.url}/backup", "body": '{"t": "{text}"}'}],
            },
        }
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(site), encoding="utf-8")
        assert main(["notify", "test", "--config", str(path), "--person", "li"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert "FAILED" in out[0] and "http 503" in out[0] and "ok" in out[1]
        assert [r.path for r in gateway.requests] == ["/primary", "/backup"]
        assert "can reach li" in gateway.requests[1].json()["t"]
        assert main(["notify", "test", "--config", str(path), "--person", "nobody"]) == 2
