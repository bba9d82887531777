"""The agency SDK installs and works without the rest of Wegweiser (issue "Partners own
their identities", part 2): its wheel carries only the agency's code and the shared modules it
needs, declares none of the county's dependencies, and imports with them blocked."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from schemas.catalogue import CATALOGUE
from wegweiser.platform import grants

ROOT = Path(__file__).parents[2]
SDK = ROOT / "services" / "agency"
COUNTY_ONLY = {
    "fastapi", "starlette", "uvicorn", "sqlmodel", "sqlalchemy", "alembic", "psycopg",
    "argon2", "babel", "jinja2", "jsonschema", "pymerkle", "standardwebhooks",
    "pydantic_settings", "yaml", "multipart",
}  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sdk")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(SDK)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (found,) = out.glob("wegweiser_agency-*.whl")
    return found


def test_the_wheel_holds_the_agency_code_and_declares_none_of_the_countys_dependencies(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = Parser().parsestr(
            archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
        )
    packages = {n.split("/")[0] for n in names if not n.startswith("wegweiser_agency-")}
    assert packages == {"services", "schemas", "wegweiser", "infra"}
    assert not any(n.startswith(("services/intake", "services/directory", "services/web",
                                 "services/referral", "services/gateway", "services/audit"))
                   for n in names)  # fmt: skip
    assert "wegweiser/platform/db.py" not in names and "wegweiser/cli/__init__.py" not in names
    required = {r.split(">")[0].split("<")[0].split("=")[0].strip().lower()
                for r in metadata.get_all("Requires-Dist") or []}  # fmt: skip
    assert required and not required & {"fastapi", "sqlmodel", "alembic", "argon2-cffi", "babel",
                                        "sqlalchemy", "uvicorn", "jinja2", "psycopg"}  # fmt: skip
    assert metadata["Name"] == "wegweiser-agency"


BLOCKED_IMPORTS = """
import sys
from pathlib import Path
site = sys.argv[1]
# the checkout and its editable install must not be found: only the wheel's files
checkouts = [p for p in sys.path if (Path(p or ".") / "schemas" / "events.py").exists()]
sys.path[:] = [site] + [p for p in sys.path if p and p not in checkouts]
blocked = set(sys.argv[2].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"the agency SDK imported {name}")
        return None

sys.meta_path.insert(0, Block())
for hook in list(sys.meta_path)[1:]:  # editables' finder maps 'services' to the checkout
    if type(hook).__module__.startswith(("_editable_impl", "editables")):
        sys.meta_path.remove(hook)
import services.agency, services.agency.cli, services.agency.enrolment, services.agency.listen
from services.agency.enrolment import AgencyKeys, enrolment_request
import tempfile
with tempfile.TemporaryDirectory() as folder:
    body = enrolment_request(AgencyKeys(Path(folder)).ensure(), "wwe_code-code-code")
    assert set(body) >= {"sealing_key", "signing_key", "nats_user", "proof", "nats_proof"}
import schemas, wegweiser
for module in (services.agency, schemas, wegweiser):
    assert module.__file__.startswith(site), module.__file__
sys.argv = ["wegweiser-agency", "--help"]
services.agency.cli.main()
"""


def test_the_sdk_imports_and_runs_from_its_wheel_with_the_countys_packages_blocked(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    done = subprocess.run(
        [sys.executable, "-I", "-c", BLOCKED_IMPORTS, str(site), ",".join(sorted(COUNTY_ONLY))],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "enrol" in done.stdout and "rotate" in done.stdout


def test_the_partner_readme_names_what_an_integrator_needs():
    readme = (SDK / "README.md").read_text()
    names = grants.agency_connection("your-agency")
    for name in (names["stream"], names["durable"], names["js_api_prefix"], names["inbox_prefix"]):
        assert isinstance(name, str), name
        assert f"`{name}".replace("your-agency", "<your id>") in readme or name in readme, name
    for spec in CATALOGUE:
        if spec.subject.startswith("ww.referral.<agency>.") and "agency" in spec.consumers:
            assert spec.event_type in readme, spec.event_type
    publishes = names["publishes"]
    assert isinstance(publishes, list), publishes
    for action in (p.rsplit(".", 1)[1] for p in publishes if ".answer." in p):
        assert f"`{action}`" in readme, action
    asks = names["asks"]
    assert isinstance(asks, list) and asks, asks
    for asked in asks:
        assert f"`{asked}`".replace("your-agency", "<your id>") in readme, asked
    assert "de.wegweiser.partner.CaseDetails.json" in readme
    assert (ROOT / "schemas" / "json" / "de.wegweiser.partner.CaseDetails.json").exists()
