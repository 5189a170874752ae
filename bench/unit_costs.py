"""What one Redis round trip costs on this machine, measured from a Python client on the
run's private Redis: a script call alone, the same calls five to a pipeline, and the SCRIPT
EXISTS that redis-py adds to every pipeline holding a registered script. It prices each
round trip a change to the product could save."""

from __future__ import annotations

import time
from typing import Any

import redis

_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], 'id', ARGV[1]) end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
return 1
"""


def _timed(fn: Any, calls: int) -> tuple[float, float]:
    """(wall, CPU of this process) microseconds per call."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return (
        round(1e6 * (time.perf_counter() - wall) / calls, 1),
        round(1e6 * (time.process_time() - cpu) / calls, 1),
    )


def measure(url: str, calls: int = 3000) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    script = client.register_script(_SCRIPT)
    script(keys=["bench:unit:0"], args=["0", "warm"])

    def alone() -> None:
        for i in range(calls):
            script(keys=[f"bench:unit:{i}"], args=[str(i), "processing"])

    def pipelined_evalsha() -> None:
        for start in range(0, calls, 5):
            pipe = client.pipeline(transaction=False)
            for i in range(start, start + 5):
                pipe.evalsha(script.sha, 1, f"bench:unit:{i}", str(i), "succeeded")
            pipe.execute()

    def pipelined_script() -> None:
        for start in range(0, calls, 5):
            pipe = client.pipeline(transaction=False)
            for i in range(start, start + 5):
                script(keys=[f"bench:unit:{i}"], args=[str(i), "succeeded"], client=pipe)
            pipe.execute()

    try:
        alone_wall, alone_cpu = _timed(alone, calls)
        evalsha_wall, evalsha_cpu = _timed(pipelined_evalsha, calls)
        script_wall, script_cpu = _timed(pipelined_script, calls)
    finally:
        client.delete(*[f"bench:unit:{i}" for i in range(calls)])
        client.close()
    return {
        "script_call_alone_us": {"wall": alone_wall, "client_cpu": alone_cpu},
        "script_call_5_to_a_pipeline_evalsha_us": {"wall": evalsha_wall, "client_cpu": evalsha_cpu},
        "script_call_5_to_a_pipeline_via_Script_us": {"wall": script_wall, "client_cpu": script_cpu},
        "note": (
            "per script call; 'via Script' passes redis-py Script objects to the pipeline, which "
            "then sends SCRIPT EXISTS before every execute (one more round trip)"
        ),
    }
