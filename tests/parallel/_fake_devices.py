"""Run a snippet in a fresh Python with N simulated CPU devices (the test process itself has
already initialised JAX with one device)."""

import os
import subprocess
import sys
import textwrap


def run_on_fake_devices(code: str, n: int = 8, timeout: int = 240) -> str:
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout
