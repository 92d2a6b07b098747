"""``foresight demo --keep-serving`` serves foresight's API: Prometheus' query API a local
Grafana can use, behind the token the demo made for the run."""

from __future__ import annotations

from pathlib import Path

import httpx

from autoscaler.demo.run import TOKEN, DemoOptions, run_demo, serve_api
from autoscaler.service import Service
from tests.dashboards.test_live import SCENARIO


async def test_the_demo_serves_the_query_api_behind_its_token(tmp_path: Path) -> None:
    scenario = tmp_path / "demo.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    out = tmp_path / "demo"
    seen: dict[str, object] = {}

    async def inspect(service: Service) -> None:
        seen["line"] = await serve_api(service, out)
        token = (out / TOKEN).read_text().strip()
        assert (out / TOKEN).stat().st_mode & 0o777 == 0o600
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.api_port}") as c:
            form = {"query": 'count(foresight_pod_phase{namespace="shop"})'}
            seen["anonymous"] = (await c.post("/api/v1/query", data=form)).status_code
            answer = await c.post(
                "/api/v1/query", data=form, headers={"Authorization": f"Bearer {token}"}
            )
            seen["status"] = answer.status_code
            seen["result"] = answer.json()["data"]["result"]
            metrics = await c.get(f"http://127.0.0.1:{service.port}/metrics")
            seen["metrics"] = metrics.status_code

    options = DemoOptions(
        out=out,
        hours=0.25,
        backfill_days=1,
        scenario=scenario,
        progress=lambda _: None,
        inspect=inspect,
    )
    await run_demo(options)
    assert seen["anonymous"] == 401
    assert seen["status"] == 200
    [row] = seen["result"]  # type: ignore[misc]
    assert float(row["value"][1]) > 0
    assert seen["metrics"] == 200
    assert str(out / TOKEN) in str(seen["line"])
