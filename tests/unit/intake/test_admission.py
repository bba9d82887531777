"""What intake refuses or warns about, given the directory's answers: every refusal at once,
each naming its field; warnings only when nothing is refused."""

from __future__ import annotations

import pytest

from schemas.queries import CheckPlace, PlaceCheck
from services.directory.gazetteer import SAMPLE
from services.directory.handlers import check_place
from services.intake.admission import Inadmissible, admit


def place(municipality: str | None, postcode: str | None) -> PlaceCheck:
    return check_place(SAMPLE, CheckPlace(municipality=municipality, postcode=postcode))


def test_an_unknown_municipality_and_unknown_recipients_are_refused_together():
    with pytest.raises(Inadmissible) as refused:
        admit("13099999", "19288", place("13099999", "19288"), [(1, "nope"), (3, "neither")])
    assert [(p.loc, p.code) for p in refused.value.problems] == [
        (("municipality",), "place.unknown-municipality"),
        (("consent", "recipients", 1, "agency_id"), "consent.unknown-recipient"),
        (("consent", "recipients", 3, "agency_id"), "consent.unknown-recipient"),
    ]
    assert "municipality: the directory's gazetteer knows no municipality 13099999" in str(
        refused.value
    )


@pytest.mark.parametrize(
    ("municipality", "postcode", "codes"),
    [
        ("13076090", "19288", []),
        ("13076090", None, []),
        (None, "19288", []),
        (None, "19999", ["place.unknown-postcode"]),
        ("13076090", "19999", ["place.unknown-postcode"]),
        ("13076090", "19370", ["place.postcode-elsewhere"]),  # Parchim's, not Ludwigslust's
    ],
)
def test_a_known_place_passes_and_a_doubtful_postcode_is_a_warning(municipality, postcode, codes):
    warnings = admit(municipality, postcode, place(municipality, postcode), [])
    assert [w.code for w in warnings] == codes
    assert all(w.loc == ("postcode",) for w in warnings)
