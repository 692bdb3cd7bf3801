import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'

import AnswerText from '../../src/components/AnswerText.vue'
import Badge from '../../src/components/Badge.vue'
import CitationList from '../../src/components/CitationList.vue'
import PassageDialog from '../../src/components/PassageDialog.vue'
import { i18n, setLocale } from '../../src/lib/i18n.js'
import { CITATIONS } from './helpers.js'

const global = { plugins: [i18n] }
afterEach(() => {
  setLocale('en')
  document.body.innerHTML = ''
})

describe('AnswerText', () => {
  it('turns [n] into buttons only for citations that exist', async () => {
    const w = mount(AnswerText, { props: { text: 'Exit code 137 [1], see [2] and [7].', citations: CITATIONS }, global })
    const buttons = w.findAll('button')
    expect(buttons.map((b) => b.text())).toEqual(['[1]', '[2]'])
    expect(w.text()).toBe('Exit code 137 [1], see [2] and [7].')
    expect(buttons[0].attributes('aria-label')).toBe('Open source [1]: runbooks/oom.md')
    await buttons[1].trigger('click')
    expect(w.emitted('open')[0][0]).toBe(CITATIONS[1])
  })
})

describe('CitationList', () => {
  it('lists sources with page and cited mark, and opens one on click', async () => {
    const w = mount(CitationList, { props: { citations: CITATIONS, heading: 'Sources' }, global })
    expect(w.find('h3').text()).toBe('Sources')
    const items = w.findAll('button.citation')
    expect(items[0].text()).toContain('[1]')
    expect(items[0].text()).toContain('cited')
    expect(items[1].text()).toContain('runbooks/disk.md, p. 3')
    expect(items[1].text()).not.toContain('cited')
    await items[0].trigger('click')
    expect(w.emitted('open')[0][0].chunk_id).toBe('runbooks/oom.md#0')
  })

  it('renders nothing without citations', () => {
    const w = mount(CitationList, { props: { citations: [] }, global })
    expect(w.find('section').exists()).toBe(false)
  })
})

describe('Badge', () => {
  it('shows the word in the current language with a tone class', () => {
    setLocale('zh')
    const w = mount(Badge, { props: { kind: 'severity', value: 'critical' }, global })
    expect(w.text()).toBe('严重')
    expect(w.classes()).toContain('danger')
    const ok = mount(Badge, { props: { kind: 'status', value: 'completed' }, global })
    expect(ok.text()).toBe('已完成')
    expect(ok.classes()).toContain('ok')
  })

  it('shows unknown values as they are', () => {
    const w = mount(Badge, { props: { kind: 'severity', value: 'P1' }, global })
    expect(w.text()).toBe('P1')
    expect(w.classes()).toContain('neutral')
  })
})

describe('PassageDialog', () => {
  it('shows the cited passage and loads the whole document around it', async () => {
    const client = {
      documentPassages: vi.fn(async () => [
        { chunk_id: 'runbooks/oom.md#0', text: 'A container exceeded its memory limit (exit code 137).' },
        { chunk_id: 'runbooks/oom.md#1', text: 'Raise the limit or fix the leak.' },
      ]),
    }
    const w = mount(PassageDialog, { props: { open: true, citation: CITATIONS[0], collection: 'default', client }, global, attachTo: document.body })
    await flushPromises()
    const dialog = w.find('dialog')
    expect(dialog.element.open).toBe(true)
    expect(dialog.attributes('aria-labelledby')).toBe(w.find('h2').attributes('id'))
    expect(w.find('h2').text()).toBe('[1] runbooks/oom.md')
    expect(w.find('[data-testid="passage-text"]').text()).toBe(CITATIONS[0].text)
    await w.find('[data-testid="load-document"]').trigger('click')
    await flushPromises()
    expect(client.documentPassages).toHaveBeenCalledWith('default', 'runbooks/oom.md', { query: CITATIONS[0].text })
    const items = w.findAll('.document-passages li')
    expect(items).toHaveLength(2)
    expect(items[0].attributes('aria-current')).toBe('true')
    expect(items[1].attributes('aria-current')).toBeUndefined()
  })

  it('closes through its close button and reports it', async () => {
    const w = mount(PassageDialog, { props: { open: true, citation: CITATIONS[1], collection: '' }, global, attachTo: document.body })
    await flushPromises()
    expect(w.find('[data-testid="load-document"]').exists()).toBe(false) // no collection: nothing to load from
    await w.find('[data-testid="dialog-close"]').trigger('click')
    await flushPromises()
    expect(w.find('dialog').element.open).toBe(false)
    expect(w.emitted('update:open')?.[0]).toEqual([false])
  })
})
