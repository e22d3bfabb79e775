"""Reports for people to look at, print and hand on: the device health report (``health_report``),
its SVG charts (``charts``) and its Jinja2 templates (``templates/``)."""
