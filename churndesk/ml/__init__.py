"""Churn modelling: feature schema, training, evaluation, scoring maths and model artifacts."""
