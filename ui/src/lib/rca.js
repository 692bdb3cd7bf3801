// Helpers for the RCA views (contract: service/rca/models.py).

/** The analysis' judged severity once done, else the alert's own `severity` label. */
export function severityOf(stored) {
  return stored.result?.severity || stored.alert?.labels?.severity || 'unknown'
}

/** Labels worth showing beside the alert name (alertname and severity have their own columns). */
export function labelLine(labels = {}) {
  return Object.entries(labels)
    .filter(([k]) => k !== 'alertname' && k !== 'severity')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
}

/** The runbook citation an evidence item of kind `runbook` points at (`runbook:<index>`). */
export function runbookFor(evidence, runbooks = []) {
  if (evidence.kind !== 'runbook') return null
  return runbooks.find((r) => r.ref === evidence.ref) || null
}

export function isActive(stored) {
  return stored?.status === 'queued' || stored?.status === 'running'
}

export function percent(confidence) {
  return `${Math.round(Math.max(0, Math.min(1, Number(confidence) || 0)) * 100)}%`
}
