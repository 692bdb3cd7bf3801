// Mount a component the way the app does: i18n and a router (in memory) installed.
import { flushPromises, mount } from '@vue/test-utils'
import { createMemoryHistory } from 'vue-router'

import { i18n, setLocale } from '../../src/lib/i18n.js'
import { makeRouter } from '../../src/router.js'

export async function mountView(component, { props = {}, route = '/', locale = 'en' } = {}) {
  setLocale(locale)
  const router = makeRouter(createMemoryHistory())
  router.push(route)
  await router.isReady()
  const wrapper = mount(component, {
    props,
    global: { plugins: [i18n, router] },
    attachTo: document.body,
  })
  await flushPromises()
  return { wrapper, router }
}

/** A promise with its resolve function, to hold a fake server's answer until the test says so. */
export function deferred() {
  let resolve
  let reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** A Response-like body streaming the given strings as bytes, one read per string. */
export function streamOf(pieces) {
  const enc = new TextEncoder()
  return new ReadableStream({
    start(controller) {
      for (const p of pieces) controller.enqueue(enc.encode(p))
      controller.close()
    },
  })
}

export const CITATIONS = [
  { index: 1, chunk_id: 'runbooks/oom.md#0', document_id: 'runbooks/oom.md', source: 'runbooks/oom.md', page: null, score: 1.25, text: 'A container exceeded its memory limit (exit code 137).', cited: true },
  { index: 2, chunk_id: 'runbooks/disk.md#1', document_id: 'runbooks/disk.md', source: 'runbooks/disk.md', page: 3, score: 0.5, text: 'Remove unused images.', cited: false },
]

export function storedAnalysis(overrides = {}) {
  return {
    id: 'rca_abc',
    object: 'rca.stored_analysis',
    status: 'completed',
    alert_status: 'firing',
    source: 'webhook',
    alertname: 'KubePodOOMKilled',
    fingerprint: 'f1',
    collection: 'default',
    alert: { alertname: 'KubePodOOMKilled', fingerprint: 'f1', status: 'firing', labels: { alertname: 'KubePodOOMKilled', namespace: 'shop', severity: 'warning' }, annotations: { summary: 'cart was OOMKilled' }, startsAt: '2026-11-23T10:00:00Z' },
    created_at: '2026-11-23T10:00:01Z',
    updated_at: '2026-11-23T10:00:05Z',
    result: {
      id: 'rca_abc', object: 'rca.analysis', created: 1795000000, model: 'm', collection: 'default', latency_ms: 1234.5,
      summary: 'The cart container ran out of memory.',
      severity: 'critical',
      hypotheses: [
        { title: 'Low memory limit', confidence: 0.3, reasoning: 'Limit is 128Mi.', evidence: [], checks: ['kubectl top pod'], remediation: 'Raise the limit.' },
        { title: 'Memory leak', confidence: 0.8, reasoning: 'Usage grows steadily.', evidence: [
          { kind: 'runbook', ref: 'runbook:1', excerpt: 'A container exceeded its memory limit.' },
          { kind: 'log', ref: 'log:0', excerpt: 'java.lang.OutOfMemoryError' },
        ], checks: ['kubectl describe pod cart'], remediation: 'Roll back.' },
      ],
      runbooks: [{ index: 1, ref: 'runbook:1', chunk_id: 'runbooks/oom.md#0', document_id: 'runbooks/oom.md', source: 'runbooks/oom.md', page: null, score: 2.5, text: 'A container exceeded its memory limit.' }],
      missing_data: ['no metrics supplied'],
      tool_calls: [],
      alert: {},
    },
    ...overrides,
  }
}
