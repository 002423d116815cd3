"""The cytokine profile page: signed links on cards to a chart of their evidence.

links.py     signed, expiring tokens naming a stored assessment
snapshot.py  what is stored per assessment (no patient or resource ids)
charts.py    matplotlib SVG charts
page.py      HTML (Jinja templates in templates/)
"""
