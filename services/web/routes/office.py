"""The counsellor's pages (/office): every call goes to intake as the counsellor's office."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from schemas.vocabulary import REASONS_FOR
from services.consent import texts
from services.consent.texts import PersonLanguage
from services.web import forms, labels
from services.web.accounts import SignedIn
from services.web.application import Receipt
from services.web.clients import Refused
from services.web.pages import (
    App,
    CheckedForm,
    Counsellor,
    WebDep,
    language_of,
    person_language,
    render,
)

router = APIRouter(prefix="/office")


@router.get("", response_class=HTMLResponse)
async def office_home(_user: Counsellor) -> Response:
    return RedirectResponse("/office/referrals", status_code=303)


@router.get("/referrals", response_class=HTMLResponse)
async def office_referrals(
    request: Request, app: App, user: Counsellor, overdue: bool = False, rows: bool = False
) -> Response:
    found = await app.referrals(_office(user), overdue)
    return render(
        request,
        "office/_rows.html" if rows else "office/referrals.html",
        user,
        referrals=found,
        overdue_only=overdue,
    )


@router.get("/requests/new", response_class=HTMLResponse)
async def new_request(request: Request, user: Counsellor) -> Response:
    blank = forms.Parsed(
        {"urgency": "routine", "purposes": ["referral"], "text_language": language_of(request)}
    )
    return _request_form(request, user, blank)


def _request_form(
    request: Request, user: SignedIn, parsed: forms.Parsed, status: int = 200
) -> Response:
    return render(
        request,
        "office/new_request.html",
        user,
        status,
        form=parsed.values,
        errors=parsed.errors,
        consent_version=texts.CONSENT_TEXT_VERSION,
        consent_texts={language.value: texts.consent_text(language) for language in PersonLanguage},
    )


@router.post("/requests", response_class=HTMLResponse)
async def record_request(
    request: Request, app: App, user: Counsellor, form: CheckedForm
) -> Response:
    parsed = forms.parse(form, app.now())
    if parsed.body is None:
        return _request_form(request, user, parsed, 422)
    try:
        recorded = await app.record_request(_office(user), parsed.body)
    except Refused as exc:
        if exc.status >= 500:
            raise
        parsed.errors["form"] = exc.detail
        return _request_form(request, user, parsed, 422)
    target = f"/office/requests/{recorded.request_id}"
    warned = [code for code in recorded.warnings if code in labels.WARNINGS]  # those with words
    if warned:
        target += "?" + urlencode({"warned": ",".join(warned)})
    return RedirectResponse(target, status_code=303)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def show_request(
    request: Request,
    app: App,
    user: Counsellor,
    request_id: str,
    sent: int = 0,
    warned: str = "",
    plan_reason_missing: str = "",
) -> Response:
    page = await app.request_page(_office(user), request_id)
    return render(
        request,
        "office/request.html",
        user,
        request_=page.detail,
        consent=page.consent,
        suggestions=page.suggestions,
        excluded=page.excluded,
        next_to_try=page.next_to_try,
        bridges=page.bridges,
        referrals=page.referrals,
        plans=page.plans,
        plan_reason_missing=plan_reason_missing,
        already=page.already,
        sent=sent,
        warnings=[labels.WARNINGS[code] for code in warned.split(",") if code in labels.WARNINGS],
    )


@router.post("/requests/{request_id}/referrals", response_class=HTMLResponse)
async def send_referrals(
    app: App, user: Counsellor, request_id: str, form: CheckedForm
) -> Response:
    # an agency with its interpreter is one choice, "agency+interpreter": both are sent
    chosen = [
        agency
        for choice in form.getlist("agency_id")
        if isinstance(choice, str)
        for agency in choice.split("+")
        if agency
    ]
    sent = await app.send(_office(user), request_id, list(dict.fromkeys(chosen)))
    return RedirectResponse(f"/office/requests/{request_id}?sent={sent}", status_code=303)


@router.post("/plans/{plan_id}/cancel", response_class=HTMLResponse)
async def cancel_plan(app: App, user: Counsellor, plan_id: str, form: CheckedForm) -> Response:
    done = await app.cancel_plan(_office(user), plan_id, _reason(form))
    target = f"/office/requests/{done.request_id}"
    if not done.cancelled:  # asked for at its field, on the request's page
        target += f"?plan_reason_missing={plan_id}"
    return RedirectResponse(target, status_code=303)


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
async def show_referral(
    request: Request, app: App, user: Counsellor, referral_id: str, part: str = ""
) -> Response:
    referral = await app.referral(_office(user), referral_id)
    template = "office/_referral_state.html" if part == "state" else "office/referral.html"
    return render(request, template, user, referral=referral)


@router.post("/referrals/{referral_id}/cancel", response_class=HTMLResponse)
async def cancel_referral(
    request: Request, app: App, user: Counsellor, referral_id: str, form: CheckedForm
) -> Response:
    comment = str(form.get("comment") or "").strip() or None
    missing = await app.cancel_referral(_office(user), referral_id, _reason(form), comment)
    if missing is not None:
        return render(
            request,
            "office/referral.html",
            user,
            422,
            referral=missing.referral,
            reason_missing=True,
        )
    return RedirectResponse(f"/office/referrals/{referral_id}", status_code=303)


def _reason(form: Any) -> str | None:
    """The reason a cancellation gives, if it is one a cancellation may give."""
    reason = str(form.get("reason") or "").strip()
    return reason if reason in REASONS_FOR["cancel"] else None


@router.get("/consents/{consent_id}/receipt", response_class=HTMLResponse)
async def receipt(
    request: Request,
    app: App,
    user: Counsellor,
    consent_id: str,
    language: str = "de",
    download: bool = False,
) -> Response:
    chosen = person_language(language)  # 422 for a language there is no text in
    if download:
        text = await app.receipt_text(_office(user), consent_id, chosen.value)
        name = f"consent-{consent_id}-{chosen.value}.txt"
        return PlainTextResponse(
            text, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )
    found = await app.receipt(_office(user), consent_id, chosen.value)
    return _receipt_page(request, user, consent_id, chosen, found)


@router.post("/consents/{consent_id}/receipt", response_class=HTMLResponse)
async def receipt_with_link(
    request: Request, web: WebDep, app: App, user: Counsellor, consent_id: str, form: CheckedForm
) -> Response:
    """The receipt with a new link to the person's own page and its QR code (an earlier
    link of the consent stops working). The link is on this page only: intake keeps its hash."""
    chosen = person_language(str(form.get("language", texts.BINDING)))
    base = web.public_url or str(request.base_url).rstrip("/")
    found = await app.receipt(_office(user), consent_id, chosen.value, link_base=base)
    return _receipt_page(request, user, consent_id, chosen, found)


def _receipt_page(
    request: Request, user: SignedIn, consent_id: str, chosen: PersonLanguage, found: Receipt
) -> Response:
    own_page = None
    if found.link is not None:
        link = found.link
        own_page = {
            "link": link,
            "qr": segno.make(link, error="m").svg_inline(scale=4, omitsize=True),
            "words": {
                part["language"]: _own_page_words(PersonLanguage(part["language"]), link)
                for part in found.document["parts"]
            },
        }
    return render(
        request,
        "office/receipt.html",
        user,
        document=found.document,
        own_page=own_page,
        draft=texts.catalogue(chosen).review.draft,
        consent_id=consent_id,
        receipt_language=chosen.value,
    )


def _own_page_words(language: PersonLanguage, link: str) -> dict[str, str]:
    """What the receipt says about the person's own page, in one of its languages."""
    t = texts.catalogue(language)
    return {
        "heading": t("Your own page"),
        "what": t(
            "On your own page you can see who received your data and what happened, "
            "download your data and withdraw your consent: {link}",
            link=texts.left_to_right(link, language),
        ),
        "scan": t("Scan the code with the camera of your phone to open your page."),
    }


@router.get("/consents/{consent_id}/withdraw", response_class=HTMLResponse)
async def confirm_withdrawal(
    request: Request, app: App, user: Counsellor, consent_id: str
) -> Response:
    consent = await app.consent(_office(user), consent_id)
    return render(request, "office/withdraw.html", user, consent=consent, consent_id=consent_id)


@router.post("/consents/{consent_id}/withdraw", response_class=HTMLResponse)
async def withdraw(app: App, user: Counsellor, consent_id: str, _form: CheckedForm) -> Response:
    request_id = await app.withdraw_consent(_office(user), consent_id)
    return RedirectResponse(f"/office/requests/{request_id}", status_code=303)


def _office(user: SignedIn) -> str:
    assert user.office_id is not None  # a counsellor always has an office (accounts.add_user)
    return user.office_id
