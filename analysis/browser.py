"""Opening the written report in a real headless browser: every image decoded, no console error,
where the first table lies (the verdicts must be on the first screen), and a full-page screenshot.

Debian's chromium and chromedriver, driven by Selenium with an explicit driver path, so nothing is
downloaded (no Selenium Manager) and it works offline. Without them the check is skipped and the
caller says why.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
WIDTH = 1400
MAX_HEIGHT = 30000  # Chromium's screenshots stop somewhere above this


@dataclass
class BrowserCheck:
    """What the browser saw: images and their decoded widths, console errors, the screenshot."""

    skipped: str = ""  # why no browser check ran (empty when it ran)
    images: int = 0
    undecoded: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    first_table: dict | None = None  # the page's first <table>: its id and class, top and bottom in CSS pixels

    @property
    def passed(self) -> bool:
        return not self.skipped and not self.undecoded and not self.console_errors

    def summary(self) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        if self.passed:
            return f"passed: {self.images} images decoded, no console errors"
        problems = [f"{len(self.undecoded)} of {self.images} images not decoded ({'; '.join(self.undecoded)[:300]})"]
        problems += [f"console: {message[:300]}" for message in self.console_errors]
        return "failed: " + "; ".join(p for p in problems if not p.startswith("0 of"))


def find_executable(candidates: tuple[str, ...], variable: str) -> str | None:
    chosen = os.environ.get(variable)
    if chosen:
        return chosen if Path(chosen).is_file() else None
    for candidate in candidates:
        found = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if found:
            return found
    return None


FIRST_TABLE = """
const table = document.querySelector('table');
if (!table) return null;
const box = table.getBoundingClientRect();
return {id: table.id, class: table.className, top: box.top + window.scrollY, bottom: box.bottom + window.scrollY};
"""
IMAGE_STATE = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
Promise.all(images.map(img => img.decode().catch(() => null))).then(() => done(
  images.map(img => ({src: img.getAttribute('src').slice(0, 60), complete: img.complete, width: img.naturalWidth}))));
"""


def check(html: Path) -> BrowserCheck:
    """Load `html` from disk in headless Chromium and report what it saw (see BrowserCheck)."""
    binary = find_executable(CHROMIUM, "REPORT_CHROMIUM")
    driver_path = find_executable(CHROMEDRIVER, "REPORT_CHROMEDRIVER")
    if binary is None or driver_path is None:
        return BrowserCheck(skipped="no chromium/chromedriver found (Debian: apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return BrowserCheck(skipped="the selenium package is not installed (pip install -e '.[browser]')")

    profile = tempfile.mkdtemp(prefix="report-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = None
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        driver.set_page_load_timeout(120)
        driver.set_script_timeout(60)
        driver.get(html.resolve().as_uri())
        images = driver.execute_async_script(IMAGE_STATE)
        first_table = driver.execute_script(FIRST_TABLE)
        errors = [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
        metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = min(int(size["height"]) + 1, MAX_HEIGHT)
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": max(int(size["width"]), 1), "height": height, "scale": 1},
            },
        )
        return BrowserCheck(
            images=len(images),
            undecoded=[
                f"{i['src']}… (naturalWidth {i['width']})" for i in images if not i["complete"] or not i["width"]
            ],
            console_errors=errors,
            screenshot=base64.b64decode(shot["data"]),
            first_table=first_table,
        )
    except Exception as error:  # the browser could not start or load the page: the check fails, loudly
        return BrowserCheck(console_errors=[f"browser error: {type(error).__name__}: {str(error)[:500]}"])
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
