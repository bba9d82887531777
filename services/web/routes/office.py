"""The counsellor's pages (/office): every call goes to intake as the counsellor's office."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from schemas.vocabulary import CLOSED_STATES, REASONS_FOR
from services.consent import texts
from services.consent.texts import PersonLanguage
from services.web import forms, labels
from services.web.accounts import SignedIn
from services.web.clients import Refused
from services.web.pages import (
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
    request: Request, web: WebDep, user: Counsellor, overdue: bool = False, rows: bool = False
) -> Response:
    found = await web.intake.get(_office(user), "/referrals", overdue=overdue or None, limit=200)
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
    request: Request, web: WebDep, user: Counsellor, form: CheckedForm
) -> Response:
    parsed = forms.parse(form, web.now())
    if parsed.body is None:
        return _request_form(request, user, parsed, 422)
    try:
        created = await web.intake.post(_office(user), "/requests", parsed.body)
    except Refused as exc:
        if exc.status >= 500:
            raise
        parsed.errors["form"] = exc.detail
        return _request_form(request, user, parsed, 422)
    target = f"/office/requests/{created['request_id']}"
    warned = [w["code"] for w in created.get("warnings", []) if w["code"] in labels.WARNINGS]
    if warned:
        target += "?" + urlencode({"warned": ",".join(warned)})
    return RedirectResponse(target, status_code=303)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def show_request(
    request: Request,
    web: WebDep,
    user: Counsellor,
    request_id: str,
    sent: int = 0,
    warned: str = "",
    plan_reason_missing: str = "",
) -> Response:
    office = _office(user)
    detail = await web.intake.get(office, f"/requests/{request_id}")
    consent, sent_to, plans = await asyncio.gather(
        web.intake.get(office, f"/consents/{detail['consent_id']}/receipt", format="json"),
        web.intake.get(office, f"/requests/{request_id}/referrals"),
        web.intake.get(office, f"/requests/{request_id}/plans"),
    )
    found: dict[str, Any] = {"suggestions": [], "excluded": [], "next_to_try": []}
    if not detail["erased"] and not detail["consent_withdrawn_at"]:
        found = await web.intake.get(office, f"/requests/{request_id}/suggestions")
    names = {s["candidate"]["agency"]["agency_id"]: s["candidate"]["agency"]["name"]
             for s in found["suggestions"]}  # fmt: skip
    already = {r["agency_id"] for r in sent_to if r["status"] not in CLOSED_STATES}
    return render(
        request,
        "office/request.html",
        user,
        request_=detail,
        consent=consent,
        suggestions=found["suggestions"],
        excluded=found["excluded"],
        next_to_try=[(a, names[a]) for a in found.get("next_to_try", []) if a in names],
        bridges=[(b, bridge_choice(b, already)) for b in found.get("bridges", [])],
        referrals=sent_to,
        plans=plans,
        plan_reason_missing=plan_reason_missing,
        already=already,
        sent=sent,
        warnings=[labels.WARNINGS[code] for code in warned.split(",") if code in labels.WARNINGS],
    )


def bridge_choice(bridge: dict[str, Any], already: set[str]) -> str:
    """What one tick on an agency with its interpreter sends: both, "agency+interpreter";
    the agency alone where the interpreter cannot be sent (shown with its reason) or already
    was."""
    agency = bridge["candidate"]["agency"]["agency_id"]
    interpreter = bridge["interpreter"]
    other = interpreter["candidate"]["agency"]["agency_id"]
    return f"{agency}+{other}" if interpreter["sendable"] and other not in already else agency


@router.post("/requests/{request_id}/referrals", response_class=HTMLResponse)
async def send_referrals(
    web: WebDep, user: Counsellor, request_id: str, form: CheckedForm
) -> Response:
    # an agency with its interpreter is one choice, "agency+interpreter": both are sent
    chosen = [
        agency
        for choice in form.getlist("agency_id")
        if isinstance(choice, str)
        for agency in choice.split("+")
        if agency
    ]
    agencies = list(dict.fromkeys(chosen))
    if not agencies:
        return RedirectResponse(f"/office/requests/{request_id}?sent=0", status_code=303)
    if len(agencies) == 1:
        one = {"agency_id": agencies[0]}
        await web.intake.post(_office(user), f"/requests/{request_id}/referrals", one)
    else:  # sent together: one plan, to all of them or to none
        together = {"agency_ids": agencies}
        await web.intake.post(_office(user), f"/requests/{request_id}/plans", together)
    return RedirectResponse(f"/office/requests/{request_id}?sent={len(agencies)}", status_code=303)


@router.post("/plans/{plan_id}/cancel", response_class=HTMLResponse)
async def cancel_plan(web: WebDep, user: Counsellor, plan_id: str, form: CheckedForm) -> Response:
    reason = str(form.get("reason") or "").strip()
    if reason not in REASONS_FOR["cancel"]:  # asked for at its field, on the request's page
        plan = await web.intake.get(_office(user), f"/plans/{plan_id}")
        target = f"/office/requests/{plan['request_id']}?plan_reason_missing={plan_id}"
        return RedirectResponse(target, status_code=303)
    plan = await web.intake.post(_office(user), f"/plans/{plan_id}/cancel", {"reason": reason})
    return RedirectResponse(f"/office/requests/{plan['request_id']}", status_code=303)


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
async def show_referral(
    request: Request, web: WebDep, user: Counsellor, referral_id: str, part: str = ""
) -> Response:
    referral = await web.intake.get(_office(user), f"/referrals/{referral_id}")
    template = "office/_referral_state.html" if part == "state" else "office/referral.html"
    return render(request, template, user, referral=referral)


@router.post("/referrals/{referral_id}/cancel", response_class=HTMLResponse)
async def cancel_referral(
    request: Request, web: WebDep, user: Counsellor, referral_id: str, form: CheckedForm
) -> Response:
    reason = str(form.get("reason") or "").strip()
    if reason not in REASONS_FOR["cancel"]:
        referral = await web.intake.get(_office(user), f"/referrals/{referral_id}")
        return render(
            request, "office/referral.html", user, 422, referral=referral, reason_missing=True
        )
    comment = str(form.get("comment") or "").strip() or None
    await web.intake.post(
        _office(user),
        f"/referrals/{referral_id}/cancel",
        {"reason": reason, **({"comment": comment} if comment else {})},
    )
    return RedirectResponse(f"/office/referrals/{referral_id}", status_code=303)


@router.get("/consents/{consent_id}/receipt", response_class=HTMLResponse)
async def receipt(
    request: Request,
    web: WebDep,
    user: Counsellor,
    consent_id: str,
    language: str = "de",
    download: bool = False,
) -> Response:
    chosen = person_language(language)  # 422 for a language there is no text in
    path = f"/consents/{consent_id}/receipt"
    if download:
        text = await web.intake.text(_office(user), path, language=chosen.value)
        name = f"consent-{consent_id}-{chosen.value}.txt"
        return PlainTextResponse(
            text, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )
    return await _receipt_page(request, web, user, consent_id, chosen, with_link=False)


@router.post("/consents/{consent_id}/receipt", response_class=HTMLResponse)
async def receipt_with_link(
    request: Request, web: WebDep, user: Counsellor, consent_id: str, form: CheckedForm
) -> Response:
    """The receipt with a new link to the person's own page and its QR code (an earlier
    link of the consent stops working). The link is on this page only: intake keeps its hash."""
    chosen = person_language(str(form.get("language", texts.BINDING)))
    return await _receipt_page(request, web, user, consent_id, chosen, with_link=True)


async def _receipt_page(
    request: Request,
    web: Any,
    user: SignedIn,
    consent_id: str,
    chosen: PersonLanguage,
    with_link: bool,
) -> Response:
    office = _office(user)
    document = await web.intake.get(
        office, f"/consents/{consent_id}/receipt", language=chosen.value, format="document"
    )
    own_page = None
    if with_link:  # only once the document is there: a link is never lost to a failed page
        issued = await web.intake.post(
            office, f"/consents/{consent_id}/person-link", {"language": chosen.value}
        )
        link = f"{web.public_url or str(request.base_url).rstrip('/')}/p/{issued['token']}"
        own_page = {
            "link": link,
            "qr": segno.make(link, error="m").svg_inline(scale=4, omitsize=True),
            "words": {
                part["language"]: _own_page_words(PersonLanguage(part["language"]), link)
                for part in document["parts"]
            },
        }
    return render(
        request,
        "office/receipt.html",
        user,
        document=document,
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
    request: Request, web: WebDep, user: Counsellor, consent_id: str
) -> Response:
    consent = await web.intake.get(_office(user), f"/consents/{consent_id}/receipt", format="json")
    return render(request, "office/withdraw.html", user, consent=consent, consent_id=consent_id)


@router.post("/consents/{consent_id}/withdraw", response_class=HTMLResponse)
async def withdraw(web: WebDep, user: Counsellor, consent_id: str, _form: CheckedForm) -> Response:
    done = await web.intake.post(_office(user), f"/consents/{consent_id}/withdraw")
    return RedirectResponse(f"/office/requests/{done['request_id']}", status_code=303)


def _office(user: SignedIn) -> str:
    assert user.office_id is not None  # a counsellor always has an office (accounts.add_user)
    return user.office_id
