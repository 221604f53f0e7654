"""The Studio: the AI tools members run inside a workspace (Chat now; Image, Video, Speech and Music next).

Domain (usage layer): `models` (chat threads and turns), `providers` (the one provider interface and its
implementations, chosen per price), `services` (every write: a generation holds its estimate, runs, and captures or
releases through `usage.services`), `selectors` (reads), `pricing` (estimates), `tasks` (the Celery jobs).
Web layer: `views`, `forms`, `urls` (namespace `studio`). See docs/architecture.md "Studio".
"""
