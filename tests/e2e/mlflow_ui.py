"""The MLflow UI's runs table and charts as a user sees them, in headless Chromium (Debian's chromium and
chromedriver, driven by Selenium with an explicit driver path: nothing downloaded, as analysis/browser.py does).

Selectors are the UI's own names where it has them (data-testid, a named data-component-id, aria labels, ARIA
roles, AG Grid's col-id and row-index); the few generated component ids are matched by their file name only."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from analysis.browser import CHROMEDRIVER, CHROMIUM, FLAGS, find_executable

AGGREGATES = {"Average": "average", "Minimum": "min", "Maximum": "max"}  # menu item: the group row's suffix
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
# Every rendered row of the grouped table, merged over AG Grid's pinned and centre containers by row index:
# a run row has `run` (its name); a group row has `group` (the tag value, or the UI's "Additional runs" for
# runs without the tag) and `count` (the badge); both have `value`, the metric cell's text.
GROUPED_ROWS = """
const metric = arguments[0];
const rows = {};
for (const row of document.querySelectorAll('[role=row][row-index]')) {
  const index = Number(row.getAttribute('row-index'));
  const seen = rows[index] || (rows[index] = {index});
  const name = row.querySelector('[col-id="attributes.`Run Name`"]');
  if (name) {
    const link = name.querySelector('a[href*="/runs/"]');
    const badge = name.querySelector('[role=status]');
    if (link) seen.run = link.textContent.trim();
    else if (badge) {
      const title = name.querySelector('span[title]');
      seen.group = title ? title.title : badge.parentElement.firstChild.textContent.trim();
      seen.count = Number(badge.textContent.trim());
    }
  }
  const value = row.querySelector(`[col-id="metrics.\\`${metric}\\`"]`);
  if (value) seen.value = value.textContent.trim();
}
return Object.values(rows);
"""
# How many data rows the grid holds (AG Grid's aria-rowcount counts the header rows too), rendered or not
ROW_TOTAL = """
const grid = document.querySelector('[role=grid][aria-rowcount], [role=treegrid][aria-rowcount]');
const row = document.querySelector('[role=row][row-index][aria-rowindex]');
if (!grid || !row) return null;
const headers = Number(row.getAttribute('aria-rowindex')) - 1 - Number(row.getAttribute('row-index'));
return Number(grid.getAttribute('aria-rowcount')) - headers;
"""
# Tick `name` under the top-level `section` ("Metrics", "Tags", ...) of the Columns tree; the same name can
# stand under several sections (a tag and a param named alike)
TICK_COLUMN = """
const [section, name] = arguments;
const nodes = Array.from(document.querySelectorAll('.du-bois-light-tree-treenode'));
const depth = node => node.querySelectorAll('.du-bois-light-tree-indent-unit').length;
const title = node => ((node.querySelector('.du-bois-light-tree-title') || {}).textContent || '').trim();
const start = nodes.findIndex(node => depth(node) === 0 && title(node).startsWith(section));
for (const node of start < 0 ? [] : nodes.slice(start + 1)) {
  if (depth(node) === 0) break;
  if (title(node) === name) {
    if (!node.querySelector('.du-bois-light-tree-checkbox-checked')) node.querySelector('.du-bois-light-tree-checkbox').click();
    return true;
  }
}
return false;
"""
# The chart card titled with the metric
CARD = """
return Array.from(document.querySelectorAll('[data-testid="experiment-view-compare-runs-card"]'))
  .find(card => card.querySelector(`h4[title="${arguments[0]}"]`)) || null;
"""
# The bars of a chart card: each bar's element, printed label and box (to tell when the chart has settled)
BARS = """
return Array.from(arguments[0].querySelectorAll('.trace.bars .point')).map(bar => {
  const box = bar.getBoundingClientRect();
  const label = bar.querySelector('.bartext');
  return [bar, label ? label.textContent : '', [box.x, box.y, box.width, box.height].map(Math.round).join(',')];
});
"""


@dataclass
class RunsTable:
    """What the runs table showed: run names in table order, collapsed and after expanding one parent."""

    collapsed: list[str]
    expanded: list[str]
    parent_rows: int  # rows named like the parent
    children: list[str]  # the rows that appeared right under the expanded parent


@dataclass
class GroupView:
    """One group of the runs table grouped by a tag, as the UI printed it."""

    label: str  # the tag's value ("Additional runs" for the runs without the tag)
    runs: int  # the group row's run count badge
    run_names: list[str] = field(default_factory=list)  # the run rows under the group row (expanded groups)
    table_value: str = ""  # the group row's metric cell without its " (average)" suffix: every digit
    bar_label: str = ""  # the label on the group's bar in the chart view: two decimals
    tooltip_value: str = ""  # the value in the bar's hover tooltip: every digit


@contextmanager
def chromium(width: int = 1400, height: int = 800):
    """A headless Chromium with a fresh profile, so no UI state (grouping, columns) is remembered."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = find_executable(CHROMIUM, "REPORT_CHROMIUM")
    driver_path = find_executable(CHROMEDRIVER, "REPORT_CHROMEDRIVER")
    assert binary and driver_path, "no chromium/chromedriver found (Debian: apt-get install chromium chromium-driver)"
    profile = tempfile.mkdtemp(prefix="mlflow-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.set_page_load_timeout(LOAD_LIMIT_S)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, LOAD_LIMIT_S, poll_frequency=0.5)


def _close_assistant(driver) -> None:
    """The MLflow Assistant's side panel opens on a browser's first visit and narrows the table."""
    from selenium.webdriver.common.by import By

    for close in driver.find_elements(By.CSS_SELECTOR, 'button[aria-label="Close"]'):
        if close.is_displayed():
            close.click()


def _rows(driver) -> list[tuple[int, str, bool]]:
    return sorted({tuple(row) for row in driver.execute_script(ROWS)})


def runs_table(url: str, parent_name: str, screenshot: Path) -> RunsTable:
    """Open `url` (an experiment's page), wait for its runs table, expand the first row named `parent_name`
    that has child runs, and save a screenshot of the page there."""
    from selenium.webdriver.common.by import By

    with chromium() as driver:
        driver.get(url)
        wait = _wait(driver)
        wait.until(lambda d: any(name == parent_name and parent for _, name, parent in _rows(d)))
        collapsed = _rows(driver)
        index = next(i for i, name, parent in collapsed if name == parent_name and parent)
        row = driver.find_element(
            By.CSS_SELECTOR, f'[role=row][row-index="{index}"] button[data-component-id*="runnamecellrenderer"]'
        )
        row.click()
        wait.until(lambda d: len(_rows(d)) > len(collapsed))
        expanded = _rows(driver)
        _close_assistant(driver)
        driver.save_screenshot(str(screenshot))
    names = [name for _, name, _ in expanded]
    position = next(p for p, (i, _, _) in enumerate(expanded) if i == index)
    added = len(expanded) - len(collapsed)
    return RunsTable(
        collapsed=[name for _, name, _ in collapsed],
        expanded=names,
        parent_rows=sum(name == parent_name for _, name, _ in collapsed),
        children=names[position + 1 : position + 1 + added],
    )


def _find(driver, css: str):
    from selenium.webdriver.common.by import By

    return _wait(driver).until(lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, css)), None))


def _click_text(driver, xpath: str) -> None:
    from selenium.webdriver.common.by import By

    element = _wait(driver).until(
        lambda d: next((e for e in d.find_elements(By.XPATH, xpath) if e.is_displayed()), None)
    )
    element.click()  # a real click: the UI's menus open on pointer events, which a script's click() lacks


RENDERED = "return Array.from(document.querySelectorAll('[role=row][row-index]')).map(r => Number(r.getAttribute('row-index')))"


def _scroll_rows(driver, script: str, *args) -> list[dict]:
    """Run `script` over every row of the table, merging its answers by row index: AG Grid renders only the
    rows near the viewport, so the body is scrolled down one rendered stretch at a time."""
    from selenium.webdriver.common.by import By

    wait = _wait(driver)
    total = wait.until(lambda d: d.execute_script(ROW_TOTAL))
    seen: dict[int, dict] = {}
    while True:
        for row in driver.execute_script(script, *args):
            seen.setdefault(row["index"], {}).update(row)
        if len(seen) >= total:
            break
        last = max(seen)
        driver.execute_script(
            "arguments[0].scrollIntoView({block: 'start'})",
            driver.find_element(By.CSS_SELECTOR, f'[role=row][row-index="{last}"]'),
        )
        wait.until(lambda d, last=last: max(d.execute_script(RENDERED)) > last)
    driver.execute_script("document.querySelector('.ag-body-viewport').scrollTop = 0")
    return [seen[i] for i in sorted(seen)]


def _load_every_run(driver) -> None:
    """The table loads runs a hundred at a time and groups only what it has loaded: press its "Load more"
    row until it is gone."""
    from selenium.webdriver.common.by import By

    wait = _wait(driver)
    while True:
        total = wait.until(lambda d: d.execute_script(ROW_TOTAL))
        driver.execute_script("const v = document.querySelector('.ag-body-viewport'); v.scrollTop = v.scrollHeight")
        wait.until(lambda d, total=total: max(d.execute_script(RENDERED)) == total - 1)
        more = driver.find_elements(By.CSS_SELECTOR, 'button[data-component-id*="loadmorerowrenderer"]')
        if not more:
            break
        driver.execute_script("arguments[0].click()", more[0])
        wait.until(lambda d, total=total: d.execute_script(ROW_TOTAL) != total)
    driver.execute_script("document.querySelector('.ag-body-viewport').scrollTop = 0")


def _patient_wait(driver):
    """A wait whose condition may click: elements the UI re-renders meanwhile are looked up again."""
    from selenium.common import exceptions as e
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = [e.StaleElementReferenceException, e.ElementClickInterceptedException, e.ElementNotInteractableException]
    return WebDriverWait(driver, LOAD_LIMIT_S, poll_frequency=0.5, ignored_exceptions=ignored)


def _group_by_tag(driver, tag: str, aggregate: str) -> None:
    """Group by: the tag among the menu's Tags, then the aggregation function (the gear in the same menu,
    enabled once the table is grouped). The page may still apply its URL's state and drop a choice made
    meanwhile: the choice is made again until the table shows group rows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    menu_button = '//button[@aria-haspopup="menu"][contains(., "Group by")]'
    item = (
        f'//*[@role="menu"]//*[@role="group"][*[1][normalize-space()="Tags"]]'
        f'//*[@role="menuitemcheckbox"][normalize-space()="{tag}"]'
    )

    def grouped(d) -> bool:
        if any("group" in row for row in d.execute_script(GROUPED_ROWS, "")):
            return True
        if not d.find_elements(By.CSS_SELECTOR, "[role=menu]"):
            button = d.find_element(By.XPATH, menu_button)
            if ":" in button.text:  # chosen ("Group by: experiment"), the table is regrouping
                return False
            button.click()
            d.find_element(By.CSS_SELECTOR, "[role=menu] input").send_keys(tag)
        d.find_element(By.XPATH, item).click()
        return False

    _patient_wait(driver).until(grouped)
    if not driver.find_elements(By.CSS_SELECTOR, "[role=menu]"):
        _click_text(driver, menu_button)
    _click_text(driver, '//button[@aria-label="Change aggregation function"]')
    _click_text(driver, f'//*[@role="menuitemradio"][not(@aria-disabled="true")][normalize-space()="{aggregate}"]')
    for _ in range(2):  # the submenu, then the menu
        if driver.find_elements(By.CSS_SELECTOR, "[role=menu]"):
            driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    _wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "[role=menu]"))


def _show_metric_column(driver, metric: str) -> None:
    """Columns: tick the metric (the table shows no metric until asked), then scroll the table to the far
    right, where the new column is; the run names stay pinned on the left."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _click_text(driver, '//button[@data-testid="column-selection-dropdown"][contains(., "Columns")]')
    search = _find(driver, 'input[placeholder="Search columns"]')
    search.send_keys(metric)
    _wait(driver).until(lambda d: d.execute_script(TICK_COLUMN, "Metrics", metric))
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    header = f'.ag-header-cell[col-id="metrics.`{metric}`"]'
    _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, header))
    driver.execute_script(
        "const v = document.querySelector('.ag-body-horizontal-scroll-viewport'); v.scrollLeft = v.scrollWidth"
    )
    # a double click on the column's resize handle fits its width to the values: the screenshot then shows
    # every digit (what is read does not depend on it: the cells hold the whole text)
    handle = driver.find_element(By.CSS_SELECTOR, f"{header} .ag-header-cell-resize")
    ActionChains(driver).double_click(handle).perform()


def _groups(rows: list[dict], aggregate: str) -> dict[str, GroupView]:
    groups: dict[str, GroupView] = {}
    current = None
    suffix = f" ({AGGREGATES[aggregate]})"
    for row in rows:
        if "group" in row:
            value = row.get("value", "")
            assert value.endswith(suffix), f"group {row['group']}: {value!r} does not end in {suffix!r}"
            current = groups[row["group"]] = GroupView(row["group"], row["count"], table_value=value[: -len(suffix)])
        elif "run" in row and current is not None:
            current.run_names.append(row["run"])
    return groups


def _settled(driver, read):
    """Wait until `read(driver)` gives the same answer twice in a row (a chart that has stopped re-laying out)."""
    last: list = [None]

    def same(d):
        now, previous = read(d), last[0]
        last[0] = now
        return now if now and now == previous else None

    return _wait(driver).until(same)


def _read_bars(driver, metric: str, groups: dict[str, GroupView]) -> None:
    """Chart view: the metric's bar chart has one bar per group, labelled with its value; hovering a bar
    shows a tooltip with the group's name and the value with every digit. The mouse leaves the plot (for
    the card's title) before each bar, so each hover is a fresh one."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _click_text(driver, '//input[@name="runs-view-mode"][@value="CHART"]/ancestor::label')
    search = _find(driver, 'input[placeholder="Search metric charts"]')
    search.send_keys(metric)
    card = _wait(driver).until(lambda d: d.execute_script(CARD, metric))
    bars = _settled(driver, lambda d: [(label, box) for _, label, box in d.execute_script(BARS, card)])
    title = card.find_element(By.CSS_SELECTOR, f'h4[title="{metric}"]')
    read: set[str] = set()

    def tooltip(d, index):
        bar = d.execute_script(BARS, card)[index][0]
        ActionChains(d).move_to_element(title).move_to_element(bar).perform()
        for shown in d.find_elements(By.CSS_SELECTOR, '[data-testid="tooltip-container"]'):
            lines = shown.text.splitlines()
            if len(lines) >= 2 and lines[0].endswith(f" ({metric})") and lines[0] not in read:
                return lines
        return None

    wait = _patient_wait(driver)
    for index, (label, _) in enumerate(bars):
        head, line = wait.until(lambda d, index=index: tooltip(d, index))[:2]
        read.add(head)
        name, value = head.removesuffix(f" ({metric})"), line.removeprefix(f"{metric}:").strip()
        # runs without the tag but with the metric: the table's "Additional runs", the chart's "Unassigned"
        group = groups.setdefault(name, GroupView(name, 0))
        group.bar_label, group.tooltip_value = label, value
    ActionChains(driver).move_to_element(title).perform()  # the tooltip goes, for the screenshot
    wait.until(lambda d: not any(t.text for t in d.find_elements(By.CSS_SELECTOR, '[data-testid="tooltip-container"]')))


def grouped_runs(
    url: str, group_by_tag: str, metric: str, screenshot_table: Path, screenshot_chart: Path, aggregate: str = "Average"
) -> dict[str, GroupView]:
    """Open `url` (an experiment's page, with `?workflowType=machine_learning`), load every run, group the
    runs table by the tag `group_by_tag` with `aggregate` ("Average", "Minimum" or "Maximum") and show the
    metric's column; read each group's row, save the table's screenshot; then the chart view's bar chart of
    the metric: each group's bar label and tooltip, and save that screenshot. Keys: the groups' labels."""
    from selenium.webdriver.common.by import By

    with chromium(1600, 1150) as driver:  # tall enough for five groups of three runs
        driver.get(url)
        _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, '[role=row] a[href*="/runs/"]'))
        _close_assistant(driver)
        _load_every_run(driver)
        _group_by_tag(driver, group_by_tag, aggregate)
        _show_metric_column(driver, metric)
        groups = _groups(_scroll_rows(driver, GROUPED_ROWS, metric), aggregate)
        _close_assistant(driver)
        driver.save_screenshot(str(screenshot_table))
        driver.set_window_size(1600, 900)
        _read_bars(driver, metric, groups)
        _close_assistant(driver)
        driver.save_screenshot(str(screenshot_chart))
    return groups
