"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a served store.

Needs /usr/bin/chromium (scripts/test.sh installs it). Without it these tests FAIL, like the PNG
export's, so CI cannot silently stop checking the pages; FLEETMEDIC_SKIP_CHROMIUM=1 opts out.
Screenshots of every page go to $FLEETMEDIC_SCREENSHOTS (docs/screenshots is made that way) or a
temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from web_server import running_server
from web_store import EVIL_JOB, OPERATOR, TOKENS, VIEWER, build_control

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.state import ControlStore

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("FLEETMEDIC_SKIP_CHROMIUM") == "1", reason="FLEETMEDIC_SKIP_CHROMIUM=1"
    ),
]

CHROMIUM = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# page, path, charts it must draw (None: a server-rendered page without a loading script)
PAGES: tuple[tuple[str, str, int | None], ...] = (
    ("overview", "/?period=30d", 5),
    ("failures", "/failures?period=all", 2),
    ("priorities", "/priorities?period=all", 0),
    ("jobs", "/jobs", None),
    ("job", f"/jobs/{quote(EVIL_JOB, safe='')}", 1),
    ("nodes", "/nodes", 1),
    ("actions", "/actions", None),
    ("tickets", "/tickets", None),
)


@pytest.fixture(scope="module")
def control_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "heal.sqlite"
    build_control(path)
    return path


@pytest.fixture(scope="module")
def server(web_db: Path, control_path: Path) -> Iterator[str]:
    with running_server(web_db, control_path, TOKENS) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run scripts/test.sh (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


class Console:
    """Console errors, uncaught exceptions and dialogs (an alert() would mean injected script)."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))


def logged_in(browser: Any, server: str, token: str) -> tuple[Any, Console]:
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    console = Console(page)
    page.goto(f"{server}/")
    assert "/login" in page.url
    page.fill("input[name=token]", token)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{server}/")
    return page, console


def shots() -> Path:
    folder = Path(os.environ.get("FLEETMEDIC_SCREENSHOTS") or "/tmp/fleetmedic-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_every_page_loads_cleanly_and_draws_its_charts(browser: Any, server: str) -> None:
    page, console = logged_in(browser, server, OPERATOR)
    for name, path, charts in PAGES:
        page.goto(server + path)
        if charts is not None:
            page.wait_for_selector("body[data-ready]", timeout=30_000)
            assert page.get_attribute("body", "data-ready") == "1", name
            assert page.locator("[data-chart][data-rendered] .main-svg").count() >= charts, name
            assert page.locator("[data-chart][data-rendered]").count() == charts, name
        page.screenshot(path=str(shots() / f"{name}.png"), full_page=True)
        assert console.problems == [], f"{name}: {console.problems}"
    page.context.close()


def test_hostile_text_is_shown_not_run(browser: Any, server: str) -> None:
    page, console = logged_in(browser, server, VIEWER)
    page.goto(f"{server}/jobs/{quote(EVIL_JOB, safe='')}")
    page.wait_for_selector("body[data-ready]")

    assert page.inner_text("#job-id") == EVIL_JOB
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("ol.evidence mark").count() >= 1  # highlighted, still as text
    assert console.problems == []
    page.context.close()


def test_drill_down_from_a_cause_to_a_job(browser: Any, server: str) -> None:
    page, console = logged_in(browser, server, VIEWER)
    page.goto(f"{server}/failures?period=all")
    page.wait_for_selector("body[data-ready='1']")
    page.locator("#causes button.drill").first.click()
    page.wait_for_selector("#drill-jobs tbody a")
    link = page.locator("#drill-jobs tbody a").first
    job_id = link.inner_text()
    link.click()

    page.wait_for_selector("body[data-ready]")
    assert page.inner_text("#job-id") == job_id
    assert page.locator(".attempt .diagnosis").count() >= 1
    assert page.locator("#chart-timeline[data-rendered] .main-svg").count() >= 1
    assert console.problems == []
    page.context.close()


def _state(control: Path, kind: str) -> tuple[str, str | None]:
    with ControlStore(control) as store:
        action = next(a for a in AuditLog(store).all() if a.kind == kind)
    return action.state, action.result


def test_an_operator_approval_flips_the_state_and_is_audited(
    browser: Any, server: str, control_path: Path
) -> None:
    assert _state(control_path, "cordon_and_drain")[0] == "proposed"
    page, console = logged_in(browser, server, OPERATOR)
    page.goto(f"{server}/actions")
    row = page.locator("#queue tr", has_text="cordon_and_drain")
    row.locator("button.approve").click()

    page.wait_for_url("**/actions?done=*")
    assert "approved cordon_and_drain" in page.inner_text(".note")
    assert page.locator("#queue tr", has_text="cordon_and_drain").count() == 0
    assert "approved" in page.inner_text("#trail tr:has-text('cordon_and_drain')")
    assert _state(control_path, "cordon_and_drain") == ("approved", "approved by otto")
    assert console.problems == []
    page.context.close()


def test_a_viewer_cannot_approve(browser: Any, server: str, control_path: Path) -> None:
    page, _ = logged_in(browser, server, VIEWER)
    page.goto(f"{server}/actions")
    assert page.locator("button.approve").count() == 0
    assert "needs the operator role" in page.inner_text("main")

    action_id = page.locator("#queue tr[data-action]").first.get_attribute("data-action")
    status = page.evaluate(
        """async (id) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/api/v1/actions/' + id + '/approve',
                                  {method: 'POST', headers: {'X-CSRF-Token': csrf}});
            return r.status;
        }""",
        action_id,
    )
    assert status == 403
    with ControlStore(control_path) as store:
        found = AuditLog(store).get(str(action_id))
    assert found is not None and found.state == "proposed"
    page.context.close()
