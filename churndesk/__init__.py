"""churndesk: customer churn prediction and risk monitoring for retention analysts."""

__version__ = "0.1.0"
