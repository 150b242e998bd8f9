"""Ticket triage: read a user's ticket, find its jobs, diagnose, group, retrieve, route, draft.

Modules: ``text`` (cleaning, caps, tokens), ``extract`` (entities, patterns as data), ``link``
(jobs in the store), ``incidents`` (outages behind many tickets), ``similar`` (BM25 over past
tickets), ``catalog`` (known issues as data), ``route`` (team and severity), ``draft`` (templated
answer), ``triage`` (the pipeline), ``save``/``importers``/``ingest`` (the store and tracker
exports), ``kpis`` (ticket KPIs), ``rewrite`` (optional LLM wording). See docs/tickets.md.
"""
