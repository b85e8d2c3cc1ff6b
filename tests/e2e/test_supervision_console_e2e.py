"""以罚代刑 supervision in the console (headless Chromium, as tests/e2e/test_console_e2e.py):
the procuratorate imports a CSV on the import page (progress bar, bad rows listed by
line), finds a candidate in its list, opens an inquiry; the agency head finds the inquiry
under 以罚代刑监督 and answers it; an enforcement unit has no such menu. Desktop and a
390 px phone width; screenshots in var/artifacts/."""
from __future__ import annotations

import uuid

import pytest

from services.supervision import samples
from tests.conftest import wait_for
from tests.e2e.test_console_e2e import Console, _up, browser  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def console(browser, stack):  # noqa: F811 - the fixture imported above
    wait_for(lambda: _up(stack.base_url), message="gateway HTTP")
    return Console(browser, stack.base_url, stack.backend)


@pytest.mark.parametrize("width", [1440, 390])
def test_import_candidate_inquiry_answer(console, tmp_path, width):
    c = console
    c.d.set_window_size(width, 1000)
    prefix = f"温鹿〔{uuid.uuid4().hex[:6]}〕"
    rows, over, bad_lines = samples.decisions(rows=40, bad=2, over=3, prefix=prefix,
                                              counties=["lucheng"])
    path = tmp_path / "decisions.csv"
    path.write_bytes(samples.to_csv(rows))

    c.sign_in("procuratorate-lucheng")
    c.css("#nav a[data-nav=supervision]").click()
    c.click("#go-import")
    c.visible("#import-file").send_keys(str(path))
    c.css("#import-submit").click()
    c.wait(lambda d: c.all("#rejected-count") and c.css("#rejected-count").text == "2",
           "the import report")
    assert c.css("#import-progress").get_attribute("value") == "100"
    assert c.css("#suspect-count").text == "3"
    lines = {int(r.find_elements("css selector", "td")[0].text)
             for r in c.all("#import-errors tbody tr")}
    assert lines == set(bad_lines)
    c.screenshot(f"supervision-import-{width}")

    c.open("#/supervision")
    c.wait(lambda d: next((a for a in c.all("#candidates a.case") if a.text == over[0]),
                          False), "the candidate in the list")
    assert {a.text for a in c.all("#candidates a.case")} >= set(over)
    c.click("#candidates a.case", text=over[0])
    c.visible("#open-inquiry")
    assert c.all("#matches li")
    c.screenshot(f"supervision-decision-{width}")
    c.css('#open-inquiry button[type="submit"]').click()
    c.wait(lambda d: c.all(".handoff") and
           c.css(".handoff").get_attribute("data-state") == "awaiting_answer",
           "the inquiry's page")

    c.sign_in("lucheng-head")
    c.css("#nav a[data-nav=supervision]").click()
    c.click("#inquiries a.case", text=over[0])     # the inquiry addressed to the head
    form = c.action_form("reply")
    c.choose(c.field(form, "outcome", "select"), "决定移送")
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all(".handoff") and
           c.css(".handoff").get_attribute("data-state") == "transfer_pending",
           "the answered inquiry")
    c.screenshot(f"supervision-answered-{width}")

    c.sign_in("lucheng-team1")
    assert not c.all("#nav a[data-nav=supervision]")
    assert c.js_errors() == []
    c.d.set_window_size(1440, 1000)
