"""A short chaos run of the whole service: one simulated hour, three kill -9 of foresight at
random moments and one webhook receiver outage; every loss line of the account is zero.

The same run as ``python -m bench.chaos`` (real child processes killed with SIGKILL, the
simulator over HTTP, a receiver that closes its port), only shorter and without the API
faults and the full disk.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.chaos import ChaosConfig, run_chaos
from bench.chaos_plan import HOUR


async def test_one_hour_three_kills_one_outage_loses_nothing(tmp_path: Path) -> None:
    config = ChaosConfig(
        seed=3,
        duration_s=HOUR,
        speed=200,
        kills=3,
        full=False,
        disk=False,
        settle_s=300,
        work=tmp_path,
    )
    account, plan, facts = await run_chaos(config)
    lines = account.lines
    assert [mode for _, mode in plan.receiver] == ["down"]
    assert lines["kills (kill -9)"] == 3
    assert lines["unplanned exits of foresight"] == 0
    assert facts["exit_code_at_stop"] == 0
    # The run saw something to lose: notifications and collection cycles across the kills.
    assert lines["notifications expected"] >= 6
    assert lines["collection cycles checked"] >= 40
    assert account.losses() == dict.fromkeys(account.loss_lines, 0), json.dumps(
        account.details, indent=1
    )
