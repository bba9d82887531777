"""Generate the committed contract files: JSON Schema per event, AsyncAPI per service."""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path

import yaml

from schemas.catalogue import json_schemas

HERE = Path(__file__).parent
JSON_DIR = HERE / "json"
ASYNCAPI_DIR = HERE / "asyncapi"


def asyncapi_documents() -> dict[str, str]:
    """Service name -> AsyncAPI 3.0 YAML, from the service's FastStream broker."""
    from faststream.specification import AsyncAPI

    from wegweiser.settings import SERVICES, Settings

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(nats_url="nats://127.0.0.1:4222", data_dir=Path(tmp))
        for name in SERVICES:
            runtime = importlib.import_module(f"services.{name}.bootstrap").build(settings)
            spec = AsyncAPI(runtime.broker, title=f"Wegweiser {name}", version="1")
            # FastStream keeps publishers in a set: sort keys so the document is reproducible
            document = yaml.safe_load(spec.to_specification().to_yaml())
            out[name] = yaml.safe_dump(document, sort_keys=True, allow_unicode=True)
            runtime.db.dispose()
    return out


def expected_files() -> dict[Path, str]:
    files = {
        JSON_DIR / name: json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, schema in json_schemas().items()
    }
    files |= {ASYNCAPI_DIR / f"{name}.yaml": doc for name, doc in asyncapi_documents().items()}
    return files


def write_all() -> list[Path]:
    """Rewrite every generated file; remove stale ones."""
    files = expected_files()
    for folder in (JSON_DIR, ASYNCAPI_DIR):
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            if old not in files:
                old.unlink()
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return sorted(files)


def drift() -> list[Path]:
    """Generated files that are missing, changed or no longer generated."""
    files = expected_files()
    stale = [p for p, text in files.items() if not p.exists() or p.read_text("utf-8") != text]
    for folder in (JSON_DIR, ASYNCAPI_DIR):
        if folder.exists():
            stale += [p for p in folder.iterdir() if p not in files]
    return sorted(stale)
