"""What people see of a round: text on one bounded line, the round's rows and numbers, one
submission's diagnostic, the run's report and the pictures. Read from stored documents; no
Dagster here (the pipeline wraps these as metadata)."""
