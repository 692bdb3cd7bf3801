#!/usr/bin/env node
// Browser tests of the web UI: playwright-core drives Debian's Chromium (headless) against a live
// ragserve gateway. Run by pytest (tests/ui/test_browser.py with a fake engine, tests/e2e/test_a_ui_live.py
// with the real one); by hand:
//
//   node ui/tests/browser/run.mjs --url http://127.0.0.1:8000 --scenario live --out var/test-artifacts/ui
//
// Prints one line per step ("ok - ..." / "not ok - ..."), screenshot paths ("screenshot: ..."), and a
// last line "RESULT <json>" with what the page showed, for the caller to check against the API.
// Exit status: 0 when every step passed. Requests to any other origin are blocked and fail the run.
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { execFileSync } from 'node:child_process'

import { chromium } from 'playwright-core'

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    scenario: { type: 'string', default: 'live' },
    out: { type: 'string', default: 'var/test-artifacts/ui' },
    key: { type: 'string', default: '' },
    collection: { type: 'string', default: 'default' },
    question: { type: 'string', default: 'What does exit code 137 mean for a pod?' },
    'max-tokens': { type: 'string', default: '48' },
    'alert-timeout': { type: 'string', default: '150' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '' },
  },
})
if (!opt.url) {
  console.error('usage: run.mjs --url http://HOST:PORT [--scenario live|fake] [--out DIR] [--key KEY]')
  process.exit(2)
}
const BASE = opt.url.replace(/\/$/, '')
const OUT = resolve(opt.out, opt.scenario)
rmSync(OUT, { recursive: true, force: true }) // this run's screenshots only
mkdirSync(OUT, { recursive: true })
const result = { scenario: opt.scenario, steps: [], screenshots: [], external_requests: [], page_errors: [] }

function chromiumPath() {
  if (opt.chromium) return opt.chromium
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim()
    } catch {
      // next
    }
  }
  throw new Error('chromium not found (apt-get install chromium, or pass --chromium PATH)')
}

function check(condition, message) {
  if (!condition) throw new Error(message)
}

async function shot(page, name) {
  const path = join(OUT, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  result.screenshots.push(path)
  console.log(`screenshot: ${path}`)
  return path
}

async function step(page, name, fn) {
  const t0 = Date.now()
  try {
    await fn()
    result.steps.push({ name, ok: true, ms: Date.now() - t0 })
    console.log(`ok - ${name} (${Date.now() - t0} ms)`)
  } catch (e) {
    result.steps.push({ name, ok: false, ms: Date.now() - t0, error: String(e.message || e) })
    console.log(`not ok - ${name}: ${e.message || e}`)
    await shot(page, `failed-${name.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {})
    throw e
  }
}

const bearer = () => (opt.key ? { Authorization: `Bearer ${opt.key}` } : {})

// axe-core's WCAG 2 A/AA rules on the page as it is now; serious and critical findings fail the run.
// Evaluated through the DevTools protocol, so the page's own CSP stays in force for everything else.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
result.accessibility = []
async function audit(page, label) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(AXE_SOURCE)
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, target: v.nodes[0]?.target?.join(' ') }))
  })
  result.accessibility.push({ page: label, violations: found })
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  check(!bad.length, `accessibility (${label}): ${bad.map((v) => `${v.id} x${v.nodes} at ${v.target}`).join('; ')}`)
}

// -- shared flows ---------------------------------------------------------------------------------

/** Ask in the chat; check that the answer streamed in (seen partly, while busy) and has citations. */
async function askAndOpenCitation(page, name) {
  await page.goto(`${BASE}/ui/chat`)
  await page.getByTestId('chat-collection').selectOption(opt.collection)
  await page.getByTestId('chat-max-tokens').fill(opt['max-tokens'])
  await page.getByTestId('chat-input').fill(opt.question)
  // Record the answer's text on every change while the message is busy: proof it streamed in.
  await page.evaluate(() => {
    window.__partials = []
    new MutationObserver(() => {
      const a = document.querySelector('[data-testid="answer"]')
      if (a && a.getAttribute('aria-busy') === 'true') {
        const text = a.querySelector('.answer-text')?.textContent || ''
        if (text && window.__partials.at(-1) !== text) window.__partials.push(text)
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true })
  })
  await page.getByTestId('chat-input').press('Enter')
  const answer = page.getByTestId('answer').last()
  await answer.locator('xpath=self::*[@aria-busy="false"]').waitFor({ timeout: 120_000 })
  const text = (await answer.locator('.answer-text').textContent()) || ''
  const partials = await page.evaluate(() => window.__partials)
  const citations = await answer.locator('button.citation').count()
  const errorText = await answer.locator('[role="alert"]').allTextContents()
  check(!errorText.length, `the answer failed: ${errorText.join(' ')}`)
  check(text.trim().length > 0, 'the answer is empty')
  check(partials.length >= 2, `the answer did not stream (saw ${partials.length} partial states)`)
  check(citations >= 1, 'the answer has no citations')
  const status = await page.getByTestId('chat-status').textContent()
  result.chat = { answer: text, partial_states: partials.length, first_partial: partials[0], citations, status }
  await shot(page, `${name}-answer`)
  await audit(page, `${name} chat`)

  await answer.locator('button.citation').first().click()
  const dialog = page.locator('dialog[open]')
  await dialog.waitFor()
  const passage = (await dialog.getByTestId('passage-text').textContent()) || ''
  check(passage.trim().length > 0, 'the citation dialog shows no passage')
  await dialog.getByTestId('load-document').click()
  await dialog.locator('.document-passages li[aria-current="true"]').waitFor({ timeout: 30_000 })
  result.chat.citation = { title: await dialog.locator('h2').textContent(), passage, document_passages: await dialog.locator('.document-passages li').count() }
  await audit(page, `${name} citation dialog`)
  await shot(page, `${name}-citation`)
  await page.keyboard.press('Escape')
  await page.locator('dialog[open]').waitFor({ state: 'detached', timeout: 5000 }).catch(() => {})
  check(!(await page.locator('dialog[open]').count()), 'Escape did not close the dialog')
}

/** Post an alert through the webhook while the alert list is open; wait for its analysis to appear. */
async function alertToAnalysis(page, name, alertname) {
  await page.goto(`${BASE}/ui/alerts`)
  await page.getByRole('heading', { level: 1 }).waitFor()
  const startsAt = new Date().toISOString()
  const payload = {
    version: '4',
    groupKey: `{}:{alertname="${alertname}"}`,
    status: 'firing',
    receiver: 'ragserve',
    groupLabels: { alertname },
    commonLabels: { alertname },
    commonAnnotations: {},
    externalURL: 'http://alertmanager.example:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname, namespace: 'shop', pod: 'cart-7d9f', container: 'cart', severity: 'warning' },
        annotations: {
          summary: 'Container cart in pod shop/cart-7d9f was OOMKilled',
          description: 'The container was terminated with exit code 137 (OOMKilled) 3 times in 10 minutes.',
        },
        startsAt,
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus.example:9090/graph?g0.expr=kube_pod_container_status_last_terminated_reason',
        fingerprint: `ui${Date.now().toString(16)}`,
      },
    ],
  }
  const r = await page.request.post(`${BASE}/v1/alertmanager/webhook`, { data: payload, headers: bearer() })
  check(r.status() === 202, `webhook answered ${r.status()}: ${await r.text()}`)
  const body = await r.json()
  const id = body.alerts[0].analysis_id
  check(id, `webhook queued no analysis: ${JSON.stringify(body)}`)
  result.alert = { analysis_id: id, webhook_action: body.alerts[0].action }

  // The list refreshes by itself: the row appears, then its analysis completes.
  const row = page.locator(`tr[data-id="${id}"]`)
  await row.waitFor({ timeout: 20_000 })
  const timeout = Number(opt['alert-timeout']) * 1000
  await page.locator(`tr[data-id="${id}"][data-status="completed"], tr[data-id="${id}"][data-status="failed"]`).waitFor({ timeout })
  result.alert.list_status = await row.getAttribute('data-status')
  result.alert.row = (await row.innerText()).replace(/\s+/g, ' ').trim()
  await shot(page, `${name}-alerts`)
  await audit(page, `${name} alerts`)
  check(result.alert.list_status === 'completed', `the analysis failed: ${result.alert.row}`)

  await row.getByTestId('analysis-link').click()
  await page.waitForURL(`**/ui/alerts/${id}`)
  await page.getByTestId('analysis-summary').waitFor()
  const hypotheses = page.locator('[data-testid="hypotheses"] > li')
  result.alert.summary = await page.getByTestId('analysis-summary').textContent()
  result.alert.hypotheses = await hypotheses.count()
  result.alert.confidences = await page.getByTestId('confidence').allTextContents()
  result.alert.runbooks = await page.locator('[data-testid="runbooks"] button.citation').count()
  check(result.alert.hypotheses >= 1, 'the analysis shows no hypothesis')
  check(result.alert.runbooks >= 1, 'the analysis cites no runbook')
  await shot(page, `${name}-analysis`)
  await audit(page, `${name} analysis`)

  await page.locator('[data-testid="runbooks"] button.citation').first().click()
  const dialog = page.locator('dialog[open]')
  await dialog.waitFor()
  const passage = (await dialog.getByTestId('passage-text').textContent()) || ''
  check(passage.trim().length > 0, 'the runbook dialog shows no passage')
  await dialog.getByTestId('load-document').click()
  await dialog.locator('.document-passages li[aria-current="true"]').waitFor({ timeout: 30_000 })
  result.alert.runbook = { title: await dialog.locator('h2').textContent(), passage }
  await shot(page, `${name}-runbook`)
  await page.keyboard.press('Escape')
}

// -- scenarios ------------------------------------------------------------------------------------

const scenarios = {
  /** The real engine: alert -> analysis -> runbook passage; question -> streamed answer -> citation. */
  async live(page) {
    await step(page, 'page loads', async () => {
      await page.goto(`${BASE}/ui/`)
      await page.waitForURL('**/ui/alerts')
      await page.getByRole('heading', { level: 1 }).waitFor()
      check((await page.title()).includes('ragserve'), `title: ${await page.title()}`)
    })
    await step(page, 'webhook alert -> analysis with runbook citation', () => alertToAnalysis(page, 'live', 'KubePodOOMKilled'))
    await step(page, 'streamed answer with citations', () => askAndOpenCitation(page, 'live'))
  },

  /** A fake engine behind API keys: key prompt, keyboard, upload + job progress, chat, alerts, Chinese. */
  async fake(page) {
    await step(page, 'asks for the API key, then loads', async () => {
      await page.goto(`${BASE}/ui/`)
      const dialog = page.locator('dialog[open]')
      await dialog.waitFor()
      await shot(page, 'fake-api-key')
      await audit(page, 'api key dialog')
      check(await dialog.getByTestId('api-key-input').evaluate((el) => el === document.activeElement), 'the key field is not focused')
      await page.keyboard.type(opt.key)
      await page.keyboard.press('Enter')
      await dialog.waitFor({ state: 'detached' }).catch(() => {})
      check(!(await page.locator('dialog[open]').count()), 'the key dialog stayed open')
      await page.locator('[data-testid="alerts-empty"], [data-testid="alerts-table"]').first().waitFor()
      check(await page.evaluate(() => sessionStorage.getItem('ragserve.apiKey')) === opt.key, 'key not kept for the session')
    })

    await step(page, 'keyboard: skip link, nav, focus moves to the new page', async () => {
      await page.reload() // a fresh load, the key kept for the session: Tab starts at the top
      await page.locator('[data-testid="alerts-empty"], [data-testid="alerts-table"]').first().waitFor()
      await page.keyboard.press('Tab')
      const first = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120))
      check(first.includes('skip-link'), `first Tab is not the skip link but ${first}`)
      await page.keyboard.press('Tab') // brand
      await page.keyboard.press('Tab') // Alerts
      await page.keyboard.press('Tab') // Ask the knowledge base
      check((await page.evaluate(() => document.activeElement?.getAttribute('href'))) === '/ui/chat', 'Tab order: nav link to chat not reached')
      await page.keyboard.press('Enter')
      await page.waitForURL('**/ui/chat')
      await page.waitForFunction(() => document.activeElement?.tagName === 'H1')
      check((await page.evaluate(() => document.activeElement.textContent)) === 'Ask the knowledge base', 'focus did not move to the heading')
    })

    await step(page, 'streamed answer with citations', () => askAndOpenCitation(page, 'fake'))

    await step(page, 'create a collection, upload files, follow the job', async () => {
      await page.goto(`${BASE}/ui/collections`)
      await page.getByTestId('new-collection').fill('uploads')
      await page.getByTestId('new-collection').press('Enter')
      await page.waitForURL('**/ui/collections/uploads')
      await page.getByTestId('upload-input').setInputFiles([
        { name: 'disk-pressure.md', mimeType: 'text/markdown', buffer: Buffer.from('# Node disk pressure\n\nThe kubelet evicts pods when the node runs out of disk. Prune images with `crictl rmi --prune`.\n') },
        { name: 'cert-expiry.txt', mimeType: 'text/plain', buffer: Buffer.from('Certificates that expire within 7 days fire CertExpiringSoon. Renew them with cert-manager.\n') },
      ])
      await page.getByTestId('upload-button').click()
      const job = page.locator('[data-testid="jobs"] li').first()
      await job.waitFor()
      await page.locator('[data-testid="jobs"] li[data-status="succeeded"]').waitFor({ timeout: 60_000 })
      await page.locator('[data-testid="documents"] td', { hasText: 'cert-expiry.txt' }).waitFor()
      result.upload = {
        job: (await job.innerText()).replace(/\s+/g, ' ').trim(),
        documents: await page.locator('[data-testid="documents"] tbody tr td:first-child').allTextContents(),
        progress: await job.locator('progress').evaluate((p) => [p.value, p.max]),
      }
      await shot(page, 'fake-collections')
      await audit(page, 'collections')
    })

    await step(page, 'webhook alert -> analysis with runbook citation', () => alertToAnalysis(page, 'fake', 'KubePodOOMKilled'))

    await step(page, 'Chinese', async () => {
      await page.goto(`${BASE}/ui/alerts`)
      await page.getByTestId('language').selectOption('zh')
      await page.getByRole('link', { name: '告警', exact: true }).waitFor()
      check((await page.evaluate(() => document.documentElement.lang)) === 'zh-CN', 'html lang not zh-CN')
      await page.reload()
      await page.getByRole('heading', { name: '告警与分析' }).waitFor()
      result.zh = { heading: await page.getByRole('heading', { level: 1 }).textContent(), badges: await page.locator('tbody .badge').allTextContents() }
      await shot(page, 'fake-alerts-zh')
      await audit(page, 'alerts zh')
    })
  },
}

// -- main ------------------------------------------------------------------------------------------

const scenario = scenarios[opt.scenario]
if (!scenario) {
  console.error(`unknown scenario ${opt.scenario}; one of ${Object.keys(scenarios).join(', ')}`)
  process.exit(2)
}
const browser = await chromium.launch({
  executablePath: chromiumPath(),
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
})
let failed = false
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US', reducedMotion: 'reduce' })
  const origin = new URL(BASE).origin
  await context.route('**/*', (route) => {
    const url = route.request().url()
    if (url.startsWith(origin + '/') || url.startsWith('data:')) return route.continue()
    result.external_requests.push(url)
    return route.abort()
  })
  const page = await context.newPage()
  page.setDefaultTimeout(15_000)
  page.on('pageerror', (e) => result.page_errors.push(String(e)))
  await scenario(page)
  check(!result.external_requests.length, `requests left the origin: ${result.external_requests.join(', ')}`)
  check(!result.page_errors.length, `uncaught errors in the page: ${result.page_errors.join('; ')}`)
} catch (e) {
  failed = true
  if (!result.steps.some((s) => !s.ok)) console.log(`not ok - ${e.message || e}`)
} finally {
  await browser.close()
}
const passed = result.steps.filter((s) => s.ok).length
console.log(`RESULT ${JSON.stringify(result)}`)
console.log(`${passed} passed, ${result.steps.length - passed + (failed && result.steps.every((s) => s.ok) ? 1 : 0)} failed`)
process.exit(failed ? 1 : 0)
