"""The web app in a real browser: Playwright drives Debian's Chromium against the whole system
(six processes and their own nats-server). Screenshots of the main pages go to a temporary
folder, or to docs/screenshots/ with WEGWEISER_SCREENSHOTS (see README, Web app)."""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from schemas.vocabulary import ReferralStatus
from services.audit.ledger import canonical
from services.consent import texts
from services.consent.texts import SCRIPTS, PersonLanguage
from tests.support.system import AGENCY, office_auth, request_body, start_system
from tests.support.waiting import blocking_until
from wegweiser.supervisor import LocalSystem

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery"
USERS = {
    "berater": ("counsellor", "lup-integration-office"),
    "beraterin-oa": ("counsellor", "oa-integration-office"),
    "ombud": ("ombudsperson", None),
    "verwalter": ("administrator", None),
}
pytestmark = [pytest.mark.slow, pytest.mark.browser]


def run_cli(system_dir: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "wegweiser", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "WEGWEISER_DATA_DIR": str(system_dir)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    root = tmp_path_factory.mktemp("web")
    for name, (role, office) in USERS.items():
        extra = ["--office", office] if office else []
        run_cli(
            root / "data",
            "user",
            "add",
            name,
            "--role",
            role,
            *extra,
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
    s = start_system(root)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's Chromium is missing: `python3 go.py test` installs it (apt-get)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def web_url(system: LocalSystem) -> str:
    return system.settings.web_url


def sign_in(browser: Browser, system: LocalSystem, user: str, **context: Any) -> Page:
    page = browser.new_context(base_url=web_url(system), **context).new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Benutzername").fill(user)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_label("Passwort").press("Enter")  # the keyboard is enough
    return page


AXE = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
AUDITED = (PersonLanguage.DE, PersonLanguage.AR, PersonLanguage.UK)
"""The languages each person-facing page is audited in: German, right to left, Cyrillic."""


def serious_violations(page: Page) -> list[str]:
    """What axe-core (npm, installed by `go.py test`) finds serious or critical on the page.
    It is injected inline: the page's context must be opened with `bypass_csp=True`."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: `python3 go.py test` installs it (npm ci)")
    page.add_script_tag(path=str(AXE))
    found: list[str] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))"""
    )
    return found


@functools.cache
def shots() -> Path:
    """Where the pages are photographed: a folder of this run's own, so that a test run leaves
    the checkout as it was; `WEGWEISER_SCREENSHOTS=docs/screenshots` refreshes the README's."""
    chosen = os.environ.get("WEGWEISER_SCREENSHOTS")
    folder = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="wegweiser-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(page: Page, name: str) -> None:
    page.wait_for_load_state("load")
    page.screenshot(path=shots() / f"{name}.png", full_page=True)


def unlabelled_fields(page: Page) -> list[str]:
    """Visible form fields without a label a screen reader would announce."""
    return page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) &&
                     !e.getAttribute('aria-label'))
        .map(e => e.name)"""
    )


def test_a_counsellor_records_consent_refers_and_sees_the_agency_answer(
    system: LocalSystem, browser: Browser
) -> None:
    page = sign_in(browser, system, "berater")
    expect(page.get_by_role("heading", name="Vermittlungen Ihres Büros")).to_be_visible()
    shot(page, "office-referrals-empty")
    page.get_by_role("link", name="Neue Anfrage", exact=True).click()
    assert unlabelled_fields(page) == []
    shot(page, "office-new-request")

    # an incomplete form is refused field by field, keeps what was typed, and saves nothing
    page.get_by_label("Aktenzeichen in Ihrem Büro").fill("web-client-1")
    page.get_by_role("button", name="Anfrage und Einwilligung speichern").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Es wurde nichts gespeichert")
    expect(alert).to_contain_text("Gemeindeschlüssel")
    expect(page.locator("#client_reference")).to_have_value("web-client-1")
    shot(page, "office-new-request-errors")

    page.locator("#client_name").fill("Amal Browser")
    page.get_by_label("Migrationsberatung", exact=True).check()
    page.locator("input[name=languages][value=ar]").check()
    page.locator("#municipality").fill("13076090")
    page.locator("#age").fill("34")
    page.locator("input[name=urgency][value=soon]").check()
    # an objection is due: delivered today (in UTC, never later than the day in Germany)
    page.locator("#deadline_kind").select_option("objection-1m")
    page.locator("#deadline_land").select_option("MV")
    page.locator("#deadline_delivered_on").fill(datetime.now(UTC).date().isoformat())
    page.locator("input[name=recipient_kinds][value=migration-counselling]").check()
    for category in ("client-reference", "name", "needs", "languages", "area", "age"):
        page.locator(f"input[name=data_categories][value={category}]").check()
    page.locator("input[name=method][value=signed-form]").check()
    page.locator("#consent_read").check()
    # the person reads Farsi: the consent text shows in Farsi, right to left, beside the
    # binding German text the counsellor reads
    page.locator("#text_language").select_option("fa")
    farsi = page.locator("[data-consent-language=fa]")
    expect(farsi).to_be_visible()
    expect(farsi).to_have_attribute("dir", "rtl")
    expect(farsi).to_contain_text("رضایت به ارجاع")
    expect(page.locator("[data-consent-language=ar]")).to_be_hidden()
    expect(page.locator(".consent-binding")).to_contain_text(
        "Einwilligung in die Weitervermittlung"
    )
    farsi.scroll_into_view_if_needed()
    shot(page, "office-consent-text-fa")
    page.get_by_role("button", name="Anfrage und Einwilligung speichern").click()

    expect(page.get_by_role("heading", name=re.compile("web-client-1"))).to_be_visible()
    expect(page.get_by_text("Amal Browser")).to_be_visible()
    expect(page.get_by_text("Rechtliche Frist")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Widerspruch: 1 Monat"))).to_be_visible()
    suggestion = page.locator(f"input[name=agency_id][value={AGENCY}]")
    expect(suggestion).to_be_enabled()
    expect(page.locator(".candidate").first).to_contain_text("Bietet diese Hilfe an")
    shot(page, "office-request-suggestions")
    suggestion.check()
    page.get_by_role("button", name="An die ausgewählten Stellen senden").click()
    expect(page.get_by_role("status")).to_contain_text("1 Vermittlung")
    row = page.locator("#request-referrals tr[data-referral]")
    expect(row).to_have_count(1)
    referral_id = row.get_attribute("data-referral")
    assert referral_id and referral_id.startswith("ref-")

    # the receipt for the person: shown for printing, and as a download
    page.get_by_role("link", name="Quittung auf Deutsch").click()
    expect(page.locator("article.receipt-document")).to_contain_text("Ludwigslust-Parchim")
    with page.expect_download() as download:
        page.get_by_role("link", name="Als Text herunterladen").click()
    assert "Ludwigslust-Parchim" in Path(download.value.path()).read_text()
    shot(page, "office-consent-receipt")

    # in the person's language (Arabic, chosen from the request), right to left, marked as a
    # draft translation, and the binding German text after it
    page.go_back()
    page.get_by_label("Quittung in der Sprache der Person").select_option("ar")
    page.get_by_role("button", name="Quittung zeigen").click()
    arabic = page.locator("article.receipt-document[lang=ar]")
    expect(arabic).to_have_attribute("dir", "rtl")
    expect(arabic).to_contain_text("موافقتك – إيصال")
    expect(arabic).to_contain_text("استشارات الهجرة")  # the kind named in words, not a code
    expect(page.locator("article.receipt-document[lang=de]")).to_contain_text(
        "Ihre Einwilligung – Quittung"
    )
    expect(page.get_by_role("note")).to_contain_text("Entwurf")
    shot(page, "office-consent-receipt-ar")

    # the agency answers through its NATS adapter; the open page follows without a reload
    page.goto(f"/office/referrals/{referral_id}")
    expect(page.locator("#referral-status")).to_have_attribute("data-status", "requested")
    run_cli(system.data_dir, "agency", "answer", referral_id, "accept", "--agency", AGENCY)
    expect(page.locator("#referral-status")).to_have_attribute(
        "data-status", "accepted", timeout=30_000
    )
    expect(page.locator("#referral-status")).to_contain_text("Angenommen")
    shot(page, "office-referral-accepted")

    page.get_by_role("link", name="Vermittlungen", exact=True).click()
    expect(page.locator(f"tr[data-referral='{referral_id}'] .state")).to_have_text("Angenommen")
    shot(page, "office-referrals")

    # the agency pauses it with a reason code and a comment sealed to the office: the page
    # names the reason in the counsellor's language and shows the comment, opened for it
    page.goto(f"/office/referrals/{referral_id}")
    run_cli(
        system.data_dir, "agency", "answer", referral_id, "hold", "--agency", AGENCY,
        "--reason", "missing-documents", "--comment", "Bitte das Zeugnis mitbringen",
        "--office", "lup-integration-office",
    )  # fmt: skip
    expect(page.locator("#referral-reason")).to_have_text("Unterlagen fehlen", timeout=30_000)
    expect(page.locator("#referral-comment")).to_have_text("Bitte das Zeugnis mitbringen")
    shot(page, "office-referral-on-hold-with-comment")

    # withdrawing the consent asks first, then the agency's deletion confirmation shows up
    page.get_by_role("link", name="Zurück zur Anfrage").click()
    page.get_by_role("link", name="Einwilligung widerrufen").click()
    expect(page.get_by_role("heading", name="Einwilligung widerrufen?")).to_be_visible()
    page.get_by_role("button", name="Ja, Einwilligung widerrufen").click()
    expect(page.get_by_role("status").first).to_contain_text("widerrufen")
    expect(page.get_by_text("Amal Browser")).to_have_count(0)
    deletion = page.locator(f"tr[data-referral='{referral_id}'] .deletion")
    expect(deletion).to_have_text("Löschung angefordert", timeout=30_000)
    run_cli(
        system.data_dir, "agency", "answer", referral_id, "confirm-deletion", "--agency", AGENCY
    )
    expect(deletion).to_have_text("Löschung bestätigt", timeout=30_000)
    shot(page, "office-withdrawal-confirmed")

    # English on request; the choice sticks
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Request of web-client-1")).to_be_visible()
    page.get_by_role("link", name="Referrals", exact=True).click()
    expect(page.get_by_role("heading", name="Referrals of your office")).to_be_visible()
    shot(page, "office-referrals-en")

    phone = sign_in(browser, system, "berater", viewport={"width": 390, "height": 844})
    expect(phone.locator(f"tr[data-referral='{referral_id}']")).to_be_visible()
    phone.wait_for_load_state("load")  # the stylesheet applied, not a layout without it
    width = phone.evaluate("document.documentElement.scrollWidth")
    wide = phone.evaluate(
        """() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 &&
                     !e.closest('.table-wrap'))
        .map(e => e.tagName + '.' + e.className + ': ' + e.textContent.slice(0, 40))"""
    )
    assert width <= 390, f"the page is {width}px wide on a 390px phone: {wide}"
    shot(phone, "office-referrals-phone")


def offer_one(system: LocalSystem, office: str | None = None, **overrides: Any) -> str:
    """A referral sent through intake's API as `office` (default: the default office)."""
    auth = office_auth(system, office)
    with httpx.Client(base_url=system.settings.intake_url, auth=auth, timeout=15) as http:
        body = request_body(client_name="Canary Person", **overrides)
        created = http.post("/requests", json=body)
        assert created.status_code == 201, created.text
        sent = http.post(
            f"/requests/{created.json()['request_id']}/referrals", json={"agency_id": AGENCY}
        )
        assert sent.status_code == 202, sent.text
        return str(sent.json()["referral_id"])


def test_the_person_follows_and_withdraws_on_their_own_page_in_their_language(
    system: LocalSystem, browser: Browser
) -> None:
    auth = office_auth(system)
    with httpx.Client(base_url=system.settings.intake_url, auth=auth, timeout=15) as http:
        body = request_body(client_reference="person-page-1", languages=["uk", "de"])
        ids = http.post("/requests", json=body).json()
        sent = http.post(f"/requests/{ids['request_id']}/referrals", json={"agency_id": AGENCY})
        assert sent.status_code == 202, sent.text

    # the counsellor prints the receipt in Ukrainian with the link and QR code of the page
    office = sign_in(browser, system, "berater", bypass_csp=True)  # for axe, injected inline
    for language in AUDITED:  # the consent form and the receipt, audited in each
        office.goto("/office/requests/new")
        office.locator("#text_language").select_option(language.value)
        assert serious_violations(office) == [], ("consent form", language)
        office.goto(f"/office/consents/{ids['consent_id']}/receipt?language={language.value}")
        assert serious_violations(office) == [], ("receipt", language)
    office.goto(f"/office/consents/{ids['consent_id']}/receipt?language=uk")
    office.get_by_role(
        "button", name="Link und QR-Code zur eigenen Seite der Person hinzufügen"
    ).click()
    expect(office.locator(".own-page svg")).to_have_count(2)  # Ukrainian, then German
    shot(office, "office-consent-receipt-link-uk")
    [token] = set(re.findall(r"/p/([A-Za-z0-9_-]{20,})", office.content()))
    link = f"{web_url(system)}/p/{token}"

    # the person opens it without an account: every language, each in its own direction
    person = browser.new_context(bypass_csp=True).new_page()  # for axe, injected inline
    for language in PersonLanguage:
        person.goto(f"{link}?language={language.value}")
        expect(person.locator("html")).to_have_attribute("lang", language.value)
        direction = "rtl" if SCRIPTS[language].rtl else "ltr"
        expect(person.locator("html")).to_have_attribute("dir", direction)
        t = texts.catalogue(language)
        expect(person.get_by_role("heading", level=1)).to_have_text(t("Your page"))
        shot(person, f"person-page-{language.value}")
        if language in AUDITED:
            assert serious_violations(person) == [], ("person's page", language)

    uk = texts.catalogue(PersonLanguage.UK)
    person.goto(f"{link}?language=uk")
    states = [uk(texts.STATES[s]) for s in ReferralStatus]
    expect(person.locator("tr[data-referral]")).to_contain_text(re.compile("|".join(states)))
    person.get_by_role("link", name=uk("Withdraw my consent")).click()
    expect(person.get_by_role("heading", level=1)).to_have_text(uk("Withdraw my consent"))
    person.get_by_role("button", name=uk("Yes, withdraw my consent")).click()
    withdrawn = (
        "Your consent was withdrawn. No further agency will be asked, and every agency that "
        "received your data is asked to delete it."
    )
    expect(person.get_by_role("status")).to_contain_text(uk(withdrawn))
    shot(person, "person-page-withdrawn-uk")
    person.goto(f"{link}/data?language=ar")
    assert serious_violations(person) == [], "my data, ar"
    shot(person, "person-data-ar")

    # the office sees the withdrawal, and the deletion the referral service asks for
    office.goto(f"/office/requests/{ids['request_id']}")
    deletion = office.locator("#request-referrals td.deletion")
    expect(deletion).to_contain_text(re.compile("Löschung"), timeout=20_000)
    # and the person's page follows the deletion, in their words
    person.goto(f"{link}?language=uk")
    asked = [uk(text) for text in texts.DELETIONS.values()]
    expect(person.locator("tr[data-referral]")).to_contain_text(re.compile("|".join(asked)))


def test_the_ombudsperson_sees_metadata_verifies_the_log_and_catches_tampering(
    system: LocalSystem, browser: Browser
) -> None:
    referral_id = offer_one(system, client_reference="canary-ref-77")
    page = sign_in(browser, system, "ombud")
    expect(page.get_by_role("heading", name="Vermittlungen im Prüfprotokoll")).to_be_visible()
    link = page.get_by_role("link", name=referral_id)

    def listed() -> bool:  # the page shows the log as it was when loaded: the audit takes the
        if link.count():  # referral's events in a moment after intake answered
            return True
        page.reload()
        return False

    blocking_until(listed, 30.0, "the audit log lists the referral", every=0.5)
    expect(link).to_be_visible()
    shot(page, "audit-overview")
    link.click()
    expect(page.locator("tbody tr")).not_to_have_count(0)
    shot(page, "audit-trail")
    figures = {
        "answer-times": "Ablehnungen und Abbrüche nach Grund",
        "overdue": "Erinnerungen und Eskalationen nach Stelle",
        "withdrawals": "Ungedeckte Bedarfe nach Bedarf und Ort",
    }  # the monitoring report's tables, this year so far, protected as in the report
    for view in ("answer-times", "overdue", "withdrawals", "anomalies"):
        page.goto(f"/audit/{view}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if view in figures:
            expect(page.get_by_role("heading", name=figures[view])).to_be_visible()
        body = page.content()
        assert "Canary Person" not in body and "canary-ref-77" not in body
        shot(page, f"audit-{view}")

    page.goto("/audit/integrity")
    page.get_by_role("button", name="Protokoll jetzt prüfen").click()
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-ok", "true")
    shot(page, "audit-integrity")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export herunterladen").first.click()
    exported = Path(download.value.path())
    assert "Canary Person" not in exported.read_text()
    assert run_cli(system.data_dir, "audit", "verify", str(exported)).startswith("OK")

    # the operator deletes the newest entries and the heads that cover them, and restarts the
    # audit service: the log verifies by itself, but it is not the one this page checked
    db = sqlite3.connect(system.data_dir / "audit.db")
    (size,) = db.execute("SELECT count(*) FROM audit_entries").fetchone()
    db.execute('DELETE FROM audit_entries WHERE "index" > ?', (size - 3,))
    db.execute("DELETE FROM audit_tree_heads WHERE size > ?", (size - 3,))
    db.commit()
    db.close()
    system.restart("audit")
    assert system.wait_ready(60)
    page.get_by_role("button", name="Protokoll jetzt prüfen").click()
    expect(verdict).to_have_attribute("data-ok", "false")
    # shorter, or (once the restarted service recorded more) rewritten: not the log seen
    expect(verdict).to_contain_text("nicht das zuvor geprüfte")

    # someone edits an entry in the audit database: the page names the entry
    db = sqlite3.connect(system.data_dir / "audit.db")
    index, entry = db.execute(
        'SELECT "index", entry FROM audit_entries ORDER BY "index" LIMIT 1 OFFSET 2'
    ).fetchone()
    doc = json.loads(entry)
    doc["time"] = "2020-01-01T00:00:00+00:00"
    db.execute(
        'UPDATE audit_entries SET entry = ? WHERE "index" = ?',
        (canonical(doc), index),  # a careful forger keeps the canonical form
    )
    db.commit()
    db.close()
    page.get_by_role("button", name="Protokoll jetzt prüfen").click()
    expect(verdict).to_have_attribute("data-ok", "false")
    # the next entry committed to the root before the change: the page names the edited one
    expect(verdict).to_contain_text(f"Der erste Eintrag, der nicht stimmt, ist Eintrag {index}")
    shot(page, "audit-integrity-tampered")


def test_offices_and_the_ombudsperson_read_the_monitoring_report_and_nobody_else(
    system: LocalSystem, browser: Browser
) -> None:
    for n in range(6):  # five or more of one kind: not hidden
        offer_one(system, client_reference=f"report-{n}")
    this_year = datetime.now(UTC).year
    counsellor = sign_in(browser, system, "berater", bypass_csp=True)  # for axe, inline
    counsellor.get_by_role("link", name="Monitoringbericht").click()
    expect(counsellor.get_by_role("heading", level=1)).to_have_text("Monitoringbericht")
    assert unlabelled_fields(counsellor) == []
    counsellor.get_by_label("Von").fill(f"{this_year}-01-01")
    counsellor.get_by_label("Bis").fill(f"{this_year}-12-31")
    counsellor.get_by_role("button", name="Bericht erstellen").click()
    expect(counsellor.get_by_role("heading", level=1)).to_have_text(
        "Monitoringbericht des Wegweiser-Netzwerks"
    )
    table = counsellor.locator("section", has_text="Vermittlungen nach Art der Stelle")

    def counted() -> bool:  # the report is made from the audit log, which takes the referrals
        if table.locator("tbody tr", has_text="Migrationsberatung").count():  # a moment after
            return True  # intake answered; below five of a kind they are hidden
        counsellor.reload()
        return False

    blocking_until(counted, 30.0, "the report counts the referrals", every=0.5)
    expect(table.locator("tbody tr").first).to_contain_text("Migrationsberatung")
    assert counsellor.locator("figure svg").count() >= 1  # the chart of referrals by kind
    body = counsellor.content()
    assert "Canary Person" not in body and "report-1" not in body
    assert serious_violations(counsellor) == []
    shot(counsellor, "monitoring-report")

    ombud = sign_in(browser, system, "ombud")
    ombud.goto(f"/report/view?first={this_year}-01-01&last={this_year}-12-31&language=en")
    expect(ombud.get_by_role("heading", level=1)).to_have_text(
        "Monitoring report of the Wegweiser network"
    )
    admin = sign_in(browser, system, "verwalter")
    response = admin.goto("/report")
    assert response is not None and response.status == 403
    anonymous = browser.new_context(base_url=web_url(system)).new_page()
    anonymous.goto("/report/view?first=2026-01-01&last=2026-12-31")
    expect(anonymous).to_have_url(re.compile(r"/login\?next="))


def test_an_administrator_invites_an_agency_from_the_page(
    system: LocalSystem, browser: Browser
) -> None:
    page = sign_in(browser, system, "verwalter")
    expect(page.get_by_role("heading", name="Partnerstellen")).to_be_visible()
    assert unlabelled_fields(page) == []
    row = page.locator("tr[data-agency='lup-jmd-hagenow']")
    row.get_by_label("Einladung für lup-jmd-hagenow gültig für").select_option("3")
    row.get_by_role("button", name="Einladen").click()
    expect(page.get_by_role("heading", name="Einladung für lup-jmd-hagenow")).to_be_visible()
    code = page.get_by_label("Registrierungscode").input_value()
    assert code.startswith("wwe_")
    shot(page, "admin-invitation")
    page.get_by_role("link", name="Zurück zu den Fachstellen").click()
    expect(page.locator("tr[data-agency='lup-jmd-hagenow'] .enrolment")).to_contain_text(
        "Eingeladen"
    )
    assert code not in page.content()
    shot(page, "admin-agencies")


def test_each_role_reaches_only_its_own_pages_and_office(
    system: LocalSystem, browser: Browser
) -> None:
    mine = offer_one(system, client_reference="lup-only-1")
    theirs = offer_one(
        system,
        office="oa-integration-office",
        client_reference="oa-only-1",
        municipality="09780139",
    )
    anonymous = browser.new_context(base_url=web_url(system)).new_page()
    for path in ("/office/referrals", "/audit", "/audit/integrity", f"/office/referrals/{mine}"):
        anonymous.goto(path)
        expect(anonymous).to_have_url(re.compile(r"/login\?next="))

    counsellor = sign_in(browser, system, "berater")
    for path in ("/audit", "/audit/integrity", "/audit/export", f"/audit/referrals/{mine}"):
        response = counsellor.goto(path)
        assert response is not None and response.status == 403, path
        expect(counsellor.get_by_role("alert")).to_contain_text("nur für die Ombudsperson")
    shot(counsellor, "forbidden-counsellor")
    counsellor.goto("/office/referrals")
    expect(counsellor.locator(f"tr[data-referral='{mine}']")).to_have_count(1)
    expect(counsellor.locator(f"tr[data-referral='{theirs}']")).to_have_count(0)
    response = counsellor.goto(f"/office/referrals/{theirs}")
    assert response is not None and response.status == 403  # another office's: intake refuses it

    other = sign_in(browser, system, "beraterin-oa")
    expect(other.locator(f"tr[data-referral='{theirs}']")).to_have_count(1)
    expect(other.locator(f"tr[data-referral='{mine}']")).to_have_count(0)

    for path in ("/admin/agencies", "/admin/agencies/lup-jmd-hagenow/revoke"):
        response = counsellor.goto(path)
        assert response is not None and response.status == 403, path
        expect(counsellor.get_by_role("alert")).to_contain_text("nur für die Verwaltung")

    ombud = sign_in(browser, system, "ombud")
    for path in ("/office/referrals", "/office/requests/new", f"/office/referrals/{mine}"):
        response = ombud.goto(path)
        assert response is not None and response.status == 403, path
        expect(ombud.get_by_role("alert")).to_contain_text("nur für Beratende")

    # a form posted without the session's CSRF token changes nothing
    cookies = {c["name"]: c["value"] for c in counsellor.context.cookies()}
    with httpx.Client(base_url=web_url(system), cookies=cookies) as http:
        forged = http.post(
            f"/office/referrals/{mine}/cancel", data={"reason": "forged", "csrf": "x"}
        )
        assert forged.status_code == 403
        view = httpx.get(
            f"{system.settings.intake_url}/referrals/{mine}", auth=office_auth(system)
        ).json()
        assert view["status"] != "cancelled" and not any(
            t["kind"] == "cancelled" for t in view["trail"]
        )
    # signing out ends the session on the server, not only in the browser
    counsellor.get_by_role("button", name="Abmelden").click()
    with httpx.Client(base_url=web_url(system), cookies=cookies) as http:
        assert http.get("/office/referrals").status_code == 303
