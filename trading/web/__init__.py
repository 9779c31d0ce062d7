"""The trading app's browser pages: the margin dashboard, order form, simulations, leverage,
the accounts overview and the reports.

`figures` shapes selectors and simulation results as the page and its JSON
endpoints show them (reads only); `views`, `accounts`, `reports` and `linked` are the
thin HTTP views mounted by `trading.web_urls`.
"""
