"""The MLflow UI's runs table as a user sees it, in headless Chromium (Debian's chromium and chromedriver,
driven by Selenium with an explicit driver path: nothing downloaded, as analysis/browser.py does)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from analysis.browser import CHROMEDRIVER, CHROMIUM, FLAGS, find_executable

LOAD_LIMIT_S = 120  # a bound on the UI's first render on a loaded machine, not a measurement
# (row index, run name, whether the row has the expander of a parent run), for every rendered row
ROWS = """
return Array.from(document.querySelectorAll('[role=row]')).map(row => {
  const cell = row.querySelector('[col-id="attributes.`Run Name`"]');
  const name = cell && cell.querySelector('a[href*="/runs/"]');
  if (!name) return null;
  const expander = cell.querySelector('button[data-component-id*="runnamecellrenderer"]');
  return [Number(row.getAttribute('row-index')), name.textContent.trim(), Boolean(expander)];
}).filter(Boolean);
"""


@dataclass
class RunsTable:
    """What the runs table showed: run names in table order, collapsed and after expanding one parent."""

    collapsed: list[str]
    expanded: list[str]
    parent_rows: int  # rows named like the parent
    children: list[str]  # the rows that appeared right under the expanded parent


def _rows(driver) -> list[tuple[int, str, bool]]:
    return sorted({tuple(row) for row in driver.execute_script(ROWS)})


def runs_table(url: str, parent_name: str, screenshot: Path) -> RunsTable:
    """Open `url` (an experiment's page), wait for its runs table, expand the first row named `parent_name`
    that has child runs, and save a screenshot of the page there."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    binary, driver_path = (
        find_executable(CHROMIUM, "REPORT_CHROMIUM"),
        find_executable(CHROMEDRIVER, "REPORT_CHROMEDRIVER"),
    )
    assert binary and driver_path, "no chromium/chromedriver found (Debian: apt-get install chromium chromium-driver)"
    profile = tempfile.mkdtemp(prefix="mlflow-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1400,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.set_page_load_timeout(LOAD_LIMIT_S)
        driver.get(url)
        wait = WebDriverWait(driver, LOAD_LIMIT_S, poll_frequency=0.5)
        wait.until(lambda d: any(name == parent_name and parent for _, name, parent in _rows(d)))
        collapsed = _rows(driver)
        index = next(i for i, name, parent in collapsed if name == parent_name and parent)
        row = driver.find_element(
            By.CSS_SELECTOR, f'[role=row][row-index="{index}"] button[data-component-id*="runnamecellrenderer"]'
        )
        row.click()
        wait.until(lambda d: len(_rows(d)) > len(collapsed))
        expanded = _rows(driver)
        for close in driver.find_elements(By.CSS_SELECTOR, 'button[aria-label="Close"]'):  # the assistant's panel
            if close.is_displayed():
                close.click()
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    names = [name for _, name, _ in expanded]
    position = next(p for p, (i, _, _) in enumerate(expanded) if i == index)
    added = len(expanded) - len(collapsed)
    return RunsTable(
        collapsed=[name for _, name, _ in collapsed],
        expanded=names,
        parent_rows=sum(name == parent_name for _, name, _ in collapsed),
        children=names[position + 1 : position + 1 + added],
    )
