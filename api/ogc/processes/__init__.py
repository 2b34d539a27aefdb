"""OGC API - Processes at /ogc/processes and /ogc/jobs (issue 7): hot-spot analyses, kernel
density, the index and patrol plans, as jobs owned by their caller (docs/processes.md).

Import ``routes`` and ``runner`` from their modules (this package is imported by
``api.ogc.config`` for the descriptions, before the OGC routes exist).
"""
