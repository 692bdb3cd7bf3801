import { afterEach, describe, expect, it } from 'vitest'

import { locale, MESSAGES, setLocale, t } from '../../src/lib/i18n.js'

afterEach(() => setLocale('en'))

describe('i18n', () => {
  it('has the same keys in English and Chinese, none empty', () => {
    const en = Object.keys(MESSAGES.en).sort()
    const zh = Object.keys(MESSAGES.zh).sort()
    expect(zh).toEqual(en)
    for (const [k, v] of Object.entries(MESSAGES.zh)) expect(v, k).not.toBe('')
  })

  it('uses the same placeholders in both languages', () => {
    const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
    for (const key of Object.keys(MESSAGES.en)) expect(names(MESSAGES.zh[key]), key).toEqual(names(MESSAGES.en[key]))
  })

  it('translates with placeholders and switches language', () => {
    expect(t('collections.filesDone', { done: 1, total: 3 })).toBe('1 of 3 files')
    setLocale('zh')
    expect(locale.value).toBe('zh')
    expect(document.documentElement.lang).toBe('zh-CN')
    expect(t('collections.filesDone', { done: 1, total: 3 })).toBe('1 / 3 个文件')
    expect(localStorage.getItem('ragserve.locale')).toBe('zh')
  })

  it('falls back to the key for unknown keys and ignores unknown locales', () => {
    expect(t('no.such.key')).toBe('no.such.key')
    setLocale('fr')
    expect(locale.value).toBe('en')
  })
})
