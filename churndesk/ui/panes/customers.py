"""The Customers page: for now the database overview with a next step; the table comes next."""

from __future__ import annotations

from PySide6.QtWidgets import QStackedLayout, QWidget

from churndesk.services.overview import Overview
from churndesk.ui.panes.placeholder import MessagePage


class CustomersPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stack = QStackedLayout(self)
        self.loading = MessagePage("Loading…", "Counting the customers in this database.")
        self.empty = MessagePage(
            "No customers yet",
            "Import a CSV export from your CRM or billing system with "
            "`churndesk import customers FILE`, or create a demo database with "
            "`churndesk demo`.",
        )
        self.summary = MessagePage("", "")
        for page in (self.loading, self.empty, self.summary):
            self._stack.addWidget(page)

    def show_overview(self, overview: Overview) -> None:
        if overview.customers == 0:
            self._stack.setCurrentWidget(self.empty)
            return
        share = overview.churned / overview.customers
        steps = []
        if overview.models == 0:
            steps.append("Next step: train a churn model on the customers whose outcome is known.")
        elif overview.scoring_runs == 0:
            steps.append("Next step: score every customer with the active model.")
        self.summary.set_message(
            f"{overview.customers:,} customers",
            f"{overview.churned:,} have churned ({share:.1%}). "
            f"{overview.models} model version(s), {overview.scoring_runs} scoring run(s).\n\n"
            "The customer table with sorting, filters and risk scores is being built."
            + ("\n\n" + steps[0] if steps else ""),
        )
        self._stack.setCurrentWidget(self.summary)
