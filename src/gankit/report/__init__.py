"""The static HTML report of a run (`gankit report RUN` -> RUN/report.html) and the
comparison page of several runs; `metrics` gathers and formats the numbers, `html` writes the
pages (offline: inlined CSS, no scripts, images by relative path or as data URIs)."""
