"""Population screening: a whole census from a FHIR Bulk Data export, through the same decision
as a patient-view hook call, into a worklist (NDJSON, CSV or HTML).

source (read the export) -> local or spark (group by patient, in parallel) -> evaluate (one
patient: the decision, the row) -> writers. bulk runs a `$export`; census writes synthetic ones.
"""
