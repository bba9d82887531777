"""The needs taxonomy: every `Need` with its German and English label, as HSDS taxonomy terms.

The codes are the wire vocabulary (`schemas.vocabulary.Need`); this module adds what people
read. In HSDS each term has one language, so the taxonomy is published twice, in German and in
English, with the same codes; services link to the German terms.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from schemas.vocabulary import Need

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://wegweiser.example.org/hsds")
"""Namespace of the stable ids Wegweiser gives its own HSDS records (UUID v5)."""
LANGUAGES = ("de", "en")
PRIMARY = "de"


@dataclass(frozen=True, slots=True)
class Label:
    de: str
    en: str
    description_de: str
    description_en: str

    def name(self, language: str) -> str:
        return self.de if language == "de" else self.en

    def description(self, language: str) -> str:
        return self.description_de if language == "de" else self.description_en


LABELS: dict[Need, Label] = {
    Need.LEGAL_AID: Label(
        "Rechtsberatung",
        "Legal advice",
        "Rechtliche Beratung und Vertretung, vor allem im Aufenthalts- und Asylrecht.",
        "Legal advice and representation, above all in residence and asylum law.",
    ),
    Need.LEGAL_AID_RESIDENCE: Label(
        "Aufenthaltsrecht",
        "Residence law",
        "Aufenthaltstitel, Verlängerung, Familiennachzug, Einbürgerung.",
        "Residence permits, renewals, family reunification, naturalisation.",
    ),
    Need.LEGAL_AID_ASYLUM: Label(
        "Asylrecht",
        "Asylum law",
        "Asylverfahren, Anhörung, Bescheide, Klagen, Duldung.",
        "Asylum procedure, hearing, decisions, appeals, toleration (Duldung).",
    ),
    Need.RECOGNITION: Label(
        "Anerkennung ausländischer Berufsabschlüsse",
        "Recognition of foreign qualifications",
        "Beratung zur Anerkennung und Anpassungsqualifizierung (IQ-Netzwerk).",
        "Advice on recognition and adaptation training (IQ network).",
    ),
    Need.LANGUAGE_COURSE: Label(
        "Sprachkurse",
        "Language courses",
        "Deutschkurse aller Art.",
        "German courses of every kind.",
    ),
    Need.INTEGRATION_COURSE: Label(
        "Integrationskurs",
        "Integration course",
        "Integrationskurs nach dem Aufenthaltsgesetz (BAMF).",
        "Integration course under the Residence Act (BAMF).",
    ),
    Need.JOB_RELATED_GERMAN: Label(
        "Berufssprachkurs",
        "Job-related German",
        "Berufsbezogene Deutschsprachförderung (DeuFöV).",
        "Job-related German language courses (DeuFöV).",
    ),
    Need.LITERACY_COURSE: Label(
        "Alphabetisierungskurs",
        "Literacy course",
        "Integrationskurs mit Alphabetisierung und Zweitschriftlernende.",
        "Integration course with literacy, and for learners of a second script.",
    ),
    Need.MIGRATION_COUNSELLING: Label(
        "Migrationsberatung",
        "Migration counselling",
        "Beratung zu Ankommen, Behörden, Sprache, Arbeit und Alltag.",
        "Counselling on arriving, authorities, language, work and everyday life.",
    ),
    Need.ADULT_MIGRATION_COUNSELLING: Label(
        "Migrationsberatung für Erwachsene (MBE)",
        "Migration counselling for adults (MBE)",
        "Für Zugewanderte ab 27 Jahren.",
        "For immigrants aged 27 and over.",
    ),
    Need.YOUTH_MIGRATION_COUNSELLING: Label(
        "Jugendmigrationsdienst (JMD)",
        "Youth migration service (JMD)",
        "Für junge Zugewanderte von 12 bis 27 Jahren.",
        "For young immigrants aged 12 to 27.",
    ),
    Need.EMPLOYMENT: Label(
        "Arbeit und Beschäftigung",
        "Employment",
        "Arbeitssuche, Vermittlung, Förderung.",
        "Finding work, placement, support.",
    ),
    Need.JOBCENTER: Label(
        "Jobcenter",
        "Jobcenter",
        "Bürgergeld und Eingliederung in Arbeit (SGB II).",
        "Citizen's income and help into work (SGB II).",
    ),
    Need.EMPLOYMENT_AGENCY: Label(
        "Agentur für Arbeit",
        "Employment agency",
        "Arbeitsvermittlung, Berufsberatung, Arbeitslosengeld (SGB III).",
        "Job placement, careers advice, unemployment benefit (SGB III).",
    ),
    Need.SOCIAL_BENEFITS: Label(
        "Sozialleistungen",
        "Social benefits",
        "Asylbewerberleistungen, Wohngeld, Kindergeld und andere Leistungen.",
        "Asylum seekers' benefits, housing benefit, child benefit and other benefits.",
    ),
    Need.PSYCHOSOCIAL: Label(
        "Psychosoziale Unterstützung",
        "Psychosocial support",
        "Beratung und Begleitung bei seelischer Belastung und Trauma.",
        "Counselling and support for mental strain and trauma.",
    ),
    Need.VIOLENCE_PROTECTION: Label(
        "Schutz vor häuslicher Gewalt",
        "Protection from domestic violence",
        "Frauenhaus, Interventionsstelle, Fachberatung bei Gewalt.",
        "Women's shelter, intervention centre, specialist counselling on violence.",
    ),
    Need.HOUSING: Label(
        "Wohnen",
        "Housing",
        "Wohnungssuche, Mietfragen, drohender Wohnungsverlust.",
        "Finding a home, tenancy questions, threatened loss of housing.",
    ),
    Need.HEALTH: Label(
        "Gesundheit",
        "Health",
        "Zugang zu ärztlicher Versorgung und Gesundheitsberatung.",
        "Access to medical care and health advice.",
    ),
    Need.SCHOOLS_CHILDCARE: Label(
        "Schule und Kinderbetreuung",
        "Schools and childcare",
        "Schulanmeldung, Kita-Platz, Bildung und Teilhabe.",
        "School enrolment, a childcare place, education and participation.",
    ),
    Need.SCHOOL: Label(
        "Schule", "School", "Schulanmeldung und Schulsozialarbeit.", "School enrolment and support."
    ),
    Need.CHILDCARE: Label(
        "Kinderbetreuung",
        "Childcare",
        "Kita- und Tagespflegeplatz.",
        "A place in a day-care centre or with a childminder.",
    ),
    Need.INTERPRETING: Label(
        "Sprachmittlung",
        "Interpreting",
        "Dolmetschen und Sprachmittlung für Termine.",
        "Interpreting and language mediation for appointments.",
    ),
}


def taxonomy_id(language: str = PRIMARY) -> str:
    return str(uuid.uuid5(NAMESPACE, f"taxonomy/needs/{language}"))


def term_id(need: Need, language: str = PRIMARY) -> str:
    return str(uuid.uuid5(NAMESPACE, f"term/{need.value}/{language}"))


def taxonomies() -> list[dict[str, Any]]:
    """The needs taxonomy as HSDS taxonomy records, one per language."""
    names = {"de": "Wegweiser Anliegen", "en": "Wegweiser needs"}
    return [
        {
            "id": taxonomy_id(language),
            "name": names[language],
            "description": {
                "de": "Anliegen, bei denen Fachstellen Zugewanderte unterstützen.",
                "en": "What specialist agencies help immigrants with.",
            }[language],
            "uri": f"https://wegweiser.example.org/taxonomies/needs/{language}",
            "version": "1",
        }
        for language in LANGUAGES
    ]


def terms() -> list[dict[str, Any]]:
    """Every need as an HSDS taxonomy term, in each language."""
    records = []
    for language in LANGUAGES:
        for need in Need:
            label = LABELS[need]
            record = {
                "id": term_id(need, language),
                "code": need.value,
                "name": label.name(language),
                "description": label.description(language),
                "taxonomy": "Wegweiser",
                "taxonomy_id": taxonomy_id(language),
                "language": language,
            }
            if need.parent is not None:
                record["parent_id"] = term_id(need.parent, language)
            records.append(record)
    return records


def need_of_term(term: dict[str, Any]) -> Need | None:
    """The need a taxonomy term stands for, when it is one of this taxonomy's."""
    if term.get("taxonomy_id") not in {taxonomy_id(lang) for lang in LANGUAGES}:
        return None
    try:
        return Need(str(term.get("code")))
    except ValueError:
        return None
