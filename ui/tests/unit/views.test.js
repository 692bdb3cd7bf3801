import { flushPromises } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { ApiError } from '../../src/lib/api.js'
import { setLocale } from '../../src/lib/i18n.js'
import AlertsView from '../../src/views/AlertsView.vue'
import AnalysisView from '../../src/views/AnalysisView.vue'
import ChatView from '../../src/views/ChatView.vue'
import CollectionsView from '../../src/views/CollectionsView.vue'
import { CITATIONS, deferred, mountView, storedAnalysis } from './helpers.js'

afterEach(() => {
  vi.useRealTimers()
  setLocale('en')
  document.body.innerHTML = ''
})

describe('ChatView', () => {
  function client(overrides = {}) {
    return {
      listCollections: vi.fn(async () => [{ name: 'default', documents: 2, chunks: 5 }, { name: 'ops', documents: 1, chunks: 1 }]),
      documentPassages: vi.fn(async () => []),
      ...overrides,
    }
  }

  it('streams an answer into a busy log, then shows clickable citations', async () => {
    const gate = deferred()
    const chatStream = vi.fn(async ({ onDelta }) => {
      onDelta('Exit code ', 'Exit code ')
      await gate.promise
      onDelta('137 [1].', 'Exit code 137 [1].')
      return { content: 'Exit code 137 [1].', citations: CITATIONS, finishReason: 'stop' }
    })
    const { wrapper: w } = await mountView(ChatView, { props: { client: client({ chatStream }) }, route: '/chat' })
    expect(w.findAll('option').map((o) => o.text())).toEqual(['default (2 documents)', 'ops (1 documents)'])

    await w.find('[data-testid="chat-input"]').setValue('What does exit code 137 mean?')
    await w.find('form.ask').trigger('submit')
    await flushPromises()
    const answer = () => w.find('[data-testid="answer"]')
    expect(answer().attributes('aria-busy')).toBe('true')
    expect(answer().text()).toContain('Exit code')
    expect(w.find('[data-testid="chat-stop"]').exists()).toBe(true)
    expect(w.find('[data-testid="chat-status"]').text()).toBe('Answering…')
    expect(chatStream.mock.calls[0][0]).toMatchObject({ model: 'rag/default', maxTokens: 256, messages: [{ role: 'user', content: 'What does exit code 137 mean?' }] })

    gate.resolve()
    await flushPromises()
    expect(answer().attributes('aria-busy')).toBe('false')
    expect(answer().find('.answer-text').text()).toBe('Exit code 137 [1].')
    expect(w.find('[data-testid="chat-status"]').text()).toBe('Answer complete, 2 sources.')
    expect(answer().findAll('button.citation')).toHaveLength(2)

    await answer().find('button.inline-cite').trigger('click')
    await flushPromises()
    const dialog = w.find('dialog')
    expect(dialog.element.open).toBe(true)
    expect(dialog.find('[data-testid="passage-text"]').text()).toBe(CITATIONS[0].text)
  })

  it('sends on Enter, not on Shift+Enter, with the chosen collection and earlier turns', async () => {
    const chatStream = vi.fn(async () => ({ content: 'ok', citations: [], finishReason: 'stop' }))
    const { wrapper: w } = await mountView(ChatView, { props: { client: client({ chatStream }) }, route: '/chat' })
    await w.find('[data-testid="chat-collection"]').setValue('ops')
    const input = w.find('[data-testid="chat-input"]')
    await input.setValue('first')
    await input.trigger('keydown', { key: 'Enter', shiftKey: true })
    expect(chatStream).not.toHaveBeenCalled()
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    await input.setValue('second')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(chatStream).toHaveBeenCalledTimes(2)
    expect(chatStream.mock.calls[1][0].model).toBe('rag/ops')
    expect(chatStream.mock.calls[1][0].messages.map((m) => m.content)).toEqual(['first', 'ok', 'second'])
  })

  it('says what a follow-up searched with', async () => {
    const chatStream = vi.fn(async () => ({ content: 'Raise the limit [1].', citations: CITATIONS, finishReason: 'stop', retrievalQuery: 'What is exit code 137?\nAnd the fix?' }))
    const { wrapper: w } = await mountView(ChatView, { props: { client: client({ chatStream }) }, route: '/chat' })
    await w.find('[data-testid="chat-input"]').setValue('And the fix?')
    await w.find('form.ask').trigger('submit')
    await flushPromises()
    expect(w.find('[data-testid="retrieval-query"]').text()).toBe('Follow-up searched with the conversation: What is exit code 137? · And the fix?')
  })

  it('shows an error from the stream in an alert', async () => {
    const chatStream = vi.fn(async () => {
      throw new ApiError(503, { message: 'the engine is starting', code: 'engine_unavailable' })
    })
    const { wrapper: w } = await mountView(ChatView, { props: { client: client({ chatStream }) }, route: '/chat' })
    await w.find('[data-testid="chat-input"]').setValue('q')
    await w.find('form.ask').trigger('submit')
    await flushPromises()
    expect(w.find('[data-testid="answer"] [role="alert"]').text()).toBe('the engine is starting')
    expect(w.find('[data-testid="chat-send"]').attributes('disabled')).toBeDefined() // empty input again
  })
})

describe('CollectionsView', () => {
  it('uploads files and follows the job to its end, then reloads the documents', async () => {
    vi.useFakeTimers()
    const jobStates = [
      { job_id: 'job-1', status: 'running', progress: { done: 0, total: 2 } },
      { job_id: 'job-1', status: 'succeeded', progress: { done: 2, total: 2 }, summary: { added: 2, updated: 0, unchanged: 0, failed: 0, chunks: 7 } },
    ]
    let docs = [{ document_id: 'old.md', chunks: 1, ingested_at: '2026-11-23T10:00:00Z' }]
    const c = {
      listCollections: vi.fn(async () => [{ name: 'ops', documents: docs.length, chunks: 1 }]),
      listDocuments: vi.fn(async () => docs),
      upload: vi.fn(async () => ({ job_id: 'job-1', status: 'queued', files: ['a.md', 'b.md'] })),
      job: vi.fn(async () => jobStates.shift()),
    }
    const { wrapper: w } = await mountView(CollectionsView, { props: { client: c, name: 'ops', pollMs: 100 }, route: '/collections/ops' })
    expect(c.listDocuments).toHaveBeenCalledWith('ops')
    expect(w.find('[data-testid="documents"]').text()).toContain('old.md')

    const input = w.find('[data-testid="upload-input"]')
    const files = [new File(['# A'], 'a.md'), new File(['# B'], 'b.md')]
    Object.defineProperty(input.element, 'files', { value: files, configurable: true })
    await input.trigger('change')
    await w.find('form.upload').trigger('submit')
    await flushPromises()
    expect(c.upload).toHaveBeenCalledWith('ops', files)
    const job = () => w.find('[data-testid="jobs"] li')
    expect(job().attributes('data-status')).toBe('queued')

    await vi.advanceTimersByTimeAsync(100)
    await flushPromises()
    expect(job().attributes('data-status')).toBe('running')
    expect(job().find('progress').attributes('max')).toBe('2')

    docs = [...docs, { document_id: 'a.md', chunks: 3, ingested_at: '2026-11-23T11:00:00Z' }, { document_id: 'b.md', chunks: 3, ingested_at: '2026-11-23T11:00:00Z' }]
    await vi.advanceTimersByTimeAsync(100)
    await flushPromises()
    expect(job().attributes('data-status')).toBe('succeeded')
    expect(job().find('progress').element.value).toBe(2)
    expect(job().text()).toContain('2 added, 0 updated, 0 unchanged, 0 failed, 7 passages')
    expect(w.findAll('[data-testid="documents"] tbody tr').map((r) => r.find('td').text())).toEqual(['old.md', 'a.md', 'b.md'])
    await vi.advanceTimersByTimeAsync(500)
    expect(c.job).toHaveBeenCalledTimes(2) // polling stopped once the job finished
  })

  it('asks to pick a collection when none is selected, and shows errors', async () => {
    const c = { listCollections: vi.fn(async () => { throw new ApiError(403, { message: 'forbidden' }) }), listDocuments: vi.fn() }
    const { wrapper: w } = await mountView(CollectionsView, { props: { client: c }, route: '/collections' })
    expect(w.find('[role="alert"]').text()).toBe('forbidden')
    expect(w.text()).toContain('Choose a collection')
    expect(c.listDocuments).not.toHaveBeenCalled()
  })
})

describe('AlertsView', () => {
  it('lists analyses with severity, alert and analysis status, linking to the detail', async () => {
    const running = storedAnalysis({ id: 'rca_2', status: 'running', result: null, alertname: 'DiskFull', alert: { labels: { alertname: 'DiskFull', severity: 'warning', node: 'n1' }, annotations: {} } })
    const c = { listAnalyses: vi.fn(async () => ({ data: [running, storedAnalysis()], total: 2, has_more: false })) }
    const { wrapper: w } = await mountView(AlertsView, { props: { client: c, refreshMs: 0 }, route: '/alerts' })
    const rows = w.findAll('[data-testid="alerts-table"] tbody tr')
    expect(rows).toHaveLength(2)
    expect(rows[0].find('th').text()).toContain('DiskFull')
    expect(rows[0].find('th').text()).toContain('node=n1')
    expect(rows[0].findAll('.badge').map((b) => b.text())).toEqual(['warning', 'firing', 'running']) // label severity until analysed
    expect(rows[1].findAll('.badge').map((b) => b.text())).toEqual(['critical', 'firing', 'completed'])
    expect(rows[1].find('td.summary').text()).toBe('The cart container ran out of memory.')
    expect(rows[1].find('a').attributes('href')).toBe('/alerts/rca_abc')
    expect(w.find('[data-testid="alerts-status"]').text()).toBe('2 analyses')

    await w.find('[data-testid="filter-status"]').setValue('completed')
    await flushPromises()
    expect(c.listAnalyses).toHaveBeenLastCalledWith({ status: 'completed', alert_status: '', alertname: '', limit: 50 })
    await w.find('[data-testid="filter-alert-status"]').setValue('resolved')
    await w.find('[data-testid="filter-alertname"]').setValue('DiskFull')
    await w.find('[data-testid="filter-alertname"]').trigger('change')
    await flushPromises()
    expect(c.listAnalyses).toHaveBeenLastCalledWith({ status: 'completed', alert_status: 'resolved', alertname: 'DiskFull', limit: 50 })
  })

  it('says so when the server has no RCA API', async () => {
    const c = { listAnalyses: vi.fn(async () => { throw new ApiError(404, { message: 'no such route; see /docs for the API' }) }) }
    const { wrapper: w } = await mountView(AlertsView, { props: { client: c, refreshMs: 0 }, route: '/alerts' })
    expect(w.find('[role="alert"]').text()).toContain('no root-cause-analysis API')
  })

  it('refreshes by itself so new analyses appear', async () => {
    vi.useFakeTimers()
    const pages = [{ data: [], total: 0 }, { data: [storedAnalysis()], total: 1 }]
    const c = { listAnalyses: vi.fn(async () => pages.shift() || { data: [storedAnalysis()], total: 1 }) }
    const { wrapper: w } = await mountView(AlertsView, { props: { client: c, refreshMs: 1000 }, route: '/alerts' })
    expect(w.find('[data-testid="alerts-empty"]').exists()).toBe(true)
    await vi.advanceTimersByTimeAsync(1000)
    await flushPromises()
    expect(w.findAll('[data-testid="alerts-table"] tbody tr')).toHaveLength(1)
    expect(w.find('[data-testid="alerts-status"]').text()).toBe('1 analyses')
    w.unmount()
  })
})

describe('AnalysisView', () => {
  it('shows hypotheses by confidence with evidence, checks and runbooks that open the passage', async () => {
    const c = { getAnalysis: vi.fn(async () => storedAnalysis()), documentPassages: vi.fn(async () => []) }
    const { wrapper: w } = await mountView(AnalysisView, { props: { client: c, id: 'rca_abc' }, route: '/alerts/rca_abc' })
    expect(c.getAnalysis).toHaveBeenCalledWith('rca_abc')
    expect(w.find('h1').text()).toBe('KubePodOOMKilled')
    expect(w.find('[data-testid="analysis-summary"]').text()).toBe('The cart container ran out of memory.')
    const hyps = w.findAll('[data-testid="hypotheses"] > li')
    expect(hyps.map((h) => h.find('h3').text())).toEqual(['Memory leak', 'Low memory limit'])
    expect(hyps[0].find('[data-testid="confidence"]').text()).toBe('80%')
    expect(hyps[0].find('meter').attributes('value')).toBe('0.8')
    expect(hyps[0].findAll('.evidence li').map((e) => e.find('.badge').text())).toEqual(['runbook', 'log'])
    expect(hyps[0].find('.checks code').text()).toBe('kubectl describe pod cart')
    expect(w.text()).toContain('no metrics supplied')

    await hyps[0].find('.evidence button.link').trigger('click')
    await flushPromises()
    expect(w.find('dialog').element.open).toBe(true)
    expect(w.find('[data-testid="passage-text"]').text()).toBe('A container exceeded its memory limit.')
    await w.find('[data-testid="dialog-close"]').trigger('click')

    await w.find('[data-testid="runbooks"] button.citation').trigger('click')
    await flushPromises()
    expect(w.find('dialog').element.open).toBe(true)
  })

  it('polls while the analysis runs and stops when it completes', async () => {
    vi.useFakeTimers()
    const answers = [storedAnalysis({ status: 'queued', result: null }), storedAnalysis({ status: 'running', result: null }), storedAnalysis()]
    const c = { getAnalysis: vi.fn(async () => answers.shift()) }
    const { wrapper: w } = await mountView(AnalysisView, { props: { client: c, id: 'rca_abc', pollMs: 500 }, route: '/alerts/rca_abc' })
    expect(w.find('[data-testid="analysis-status"]').text()).toContain('queued')
    await vi.advanceTimersByTimeAsync(500)
    await flushPromises()
    expect(w.find('[data-testid="analysis-status"]').text()).toContain('running')
    await vi.advanceTimersByTimeAsync(500)
    await flushPromises()
    expect(w.find('[data-testid="analysis-summary"]').exists()).toBe(true)
    await vi.advanceTimersByTimeAsync(2000)
    expect(c.getAnalysis).toHaveBeenCalledTimes(3)
  })

  it('in Chinese', async () => {
    const c = { getAnalysis: vi.fn(async () => storedAnalysis()) }
    const { wrapper: w } = await mountView(AnalysisView, { props: { client: c, id: 'rca_abc' }, route: '/alerts/rca_abc', locale: 'zh' })
    expect(w.findAll('h2').map((h) => h.text())).toContain('根因假设')
    expect(w.find('[data-testid="analysis-status"]').text()).toContain('严重')
  })
})
