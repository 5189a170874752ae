"""Screenshots of the console's pages for the documentation (``docs/console/``): taken by the
browser test when ``CONSOLE_SCREENSHOTS`` names a directory, so an ordinary run writes nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

VARIABLE = "CONSOLE_SCREENSHOTS"


def shoot(driver: Any, name: str) -> None:
    directory = os.environ.get(VARIABLE)
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    # The whole page, not only the window: as tall as its content.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, max(600, min(int(height) + 140, 2400)))
    driver.save_screenshot(str(Path(directory) / f"{name}.png"))
    driver.set_window_size(width, 1000)
