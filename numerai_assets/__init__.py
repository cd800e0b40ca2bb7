"""Scoring pipeline of a weekly data-science tournament, built on Dagster."""
