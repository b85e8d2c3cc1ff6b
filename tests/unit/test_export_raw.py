"""A producer's event history for a rebuild (``shared.messaging.export``): the raw form
(each envelope as the JSON text the outbox holds, passed on unparsed to the tracker's
``ingest``) carries exactly the envelopes of the parsed form, page by page, in order."""
from __future__ import annotations

import json

from sqlalchemy import MetaData, create_engine

from services.police_handoff.store import SOURCE
from shared import envelope as env
from shared.db import Store
from shared.messaging import export, messaging_tables, stage_many


def test_raw_pages_are_the_parsed_pages_as_stored_text(tmp_path):
    metadata = MetaData()
    messaging_tables(metadata)
    url = f"sqlite:///{tmp_path / 'out.db'}"
    metadata.create_all(create_engine(url))
    store = Store("exporter", metadata, url=url, create=False)
    envelopes = [env.make_envelope(event_type="criminal_referral.drafted.v1", source=SOURCE,
                                   subject=f"h{i}", sequence=1,
                                   data={"n": i, "text": "温州\t\"引号\"\n\\"})
                 for i in range(7)]
    with store.transaction() as s:
        stage_many(s, metadata, envelopes)
    after, raw_pages, parsed_pages = 0, [], []
    while page := export(store, after, 3, raw=True):
        raw_pages.append(page)
        parsed_pages.append(export(store, after, 3))
        after = page[-1]["id"]
    assert [len(p) for p in raw_pages] == [3, 3, 1]
    for raw, parsed in zip(raw_pages, parsed_pages, strict=True):
        assert [r["id"] for r in raw] == [p["id"] for p in parsed]
        assert all(isinstance(r["body"], str) for r in raw)
        assert [json.loads(r["body"]) for r in raw] == [p["envelope"] for p in parsed]
    exported = [json.loads(r["body"]) for page in raw_pages for r in page]
    assert [e["id"] for e in exported] == [e["id"] for e in envelopes]
    assert all(e["signature"] for e in exported)    # as signed when staged
    store.dispose()
