"""A CDS Hooks 2.0 service for the triage: ``make cds`` (``python -m serve.cds``).

Research software trained on synthetic data; not a medical device.

- :mod:`serve.cds.app` - the FastAPI application (:func:`create_app`) and its settings;
- :mod:`serve.cds.hooks` - the services, their prefetch templates and request models;
- :mod:`serve.cds.cards` - pure card building: a prediction in, cards out;
- :mod:`serve.cds.prefetch` - prefetched data, and fetching what is missing from ``fhirServer``;
- :mod:`serve.cds.auth` - client JWTs from trusted issuers;
- :mod:`serve.cds.feedback` - the append-only feedback store;
- :mod:`serve.cds.errors` - OperationOutcome answers.
"""

from __future__ import annotations

__all__ = ["CdsSettings", "create_app"]

from serve.cds.app import CdsSettings, create_app
